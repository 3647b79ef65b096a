// Tests for lib/cli/'s registry and what is generated from it: --help, docs/cli.md, man pages, bash completion,
// `charlm help`, and the lines that end a training run.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <set>

#include "cli/commands.h"
#include "cli/docs_writer.h"
#include "cli/registry.h"
#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

std::string Shell(const std::string& command) { return testing::RunShell(command).output; }

TEST_CASE("registry: every option CLI11 parses is in the spec the docs are written from, and no other") {
  CLI::App app;
  CommandRegistry registry(app);
  RegisterAllCommands(registry);
  CHECK(registry.Visible().size() == 12);
  for (const auto& spec : registry.commands()) {
    std::set<std::string> parsed, declared;
    for (const CLI::Option* option : app.get_subcommand(spec->name)->get_options()) {
      if (option->get_name() != "--help") parsed.insert(option->get_name());
    }
    for (const OptionSpec& option : spec->options) declared.insert(option.name);
    CHECK_MESSAGE(parsed == declared, spec->name);
  }
}

TEST_CASE("registry: --precision lists every precision the code takes") {
  const std::string help = testing::Run(testing::TempDir(), {"eval", "--help"}).output;
  for (const std::string_view name : EnumNames<Precision>::kNames) CHECK(help.find(std::string(name)) != std::string::npos);
}

TEST_CASE("registry: docs/cli.md is what the registry generates") {
  CLI::App app;
  CommandRegistry registry(app);
  RegisterAllCommands(registry);
  const std::string fresh = CliMarkdown(registry.Visible());
  const std::string page = testing::ReadFile(testing::SourceDir() / "docs" / "cli.md");
  if (page != fresh) {
    testing::TempDir dir;
    testing::WriteFile(dir / "cli.md", fresh);
    FAIL_CHECK("docs/cli.md is out of date: run build/charlm write-docs --markdown docs/cli.md");
  }
}

TEST_CASE("registry: charlm help COMMAND prints its options; an unknown one gets the nearest name") {
  testing::TempDir dir;
  const testing::RunResult all = testing::Run(dir, {"help"});
  CHECK(all.exit_code == 0);
  CHECK(all.output.find("  vocab ") != std::string::npos);
  CHECK(all.output.find("  bench ") != std::string::npos);
  CHECK(all.output.find("write-docs") == std::string::npos);
  const testing::RunResult train = testing::Run(dir, {"help", "train"});
  CHECK(train.exit_code == 0);
  CHECK(train.output.find("--resume") != std::string::npos);
  const testing::RunResult wrong = testing::Run(dir, {"help", "trian"});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.output.find("did you mean train?") != std::string::npos);
}

TEST_CASE("registry: the man pages render, charlm-train(1) with the config keys") {
  testing::TempDir dir;
  const testing::RunResult written =
      testing::Run(dir, {"write-docs", "--man-dir", "man", "--completion", "charlm.bash"});
  REQUIRE(written.exit_code == 0);
  const std::string page = testing::ReadFile(dir / "man" / "charlm-train.1");
  CHECK(page.find(".SH CONFIG KEYS") != std::string::npos);
  CHECK(page.find("train.optimizer.lr") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "man" / "charlm.1"));
  if (Shell("command -v man >/dev/null && echo yes").empty()) {
    std::printf("SKIPPED: registry man page rendering: no man command (apt-get install man-db)\n");
    return;
  }
  const std::string rendered = Shell("MANWIDTH=100 man -l " + ShellQuote((dir / "man" / "charlm-train.1").string()) + " 2>&1");
  CHECK(rendered.find("CONFIG KEYS") != std::string::npos);
  CHECK(rendered.find("data.corpus") != std::string::npos);
  CHECK(rendered.find("warning") == std::string::npos);
}

TEST_CASE("registry: bash completion completes commands, options, --set keys and their values") {
  testing::TempDir dir;
  REQUIRE(testing::Run(dir, {"write-docs", "--completion", "charlm.bash"}).exit_code == 0);
  // COMP_WORDS as bash splits the line for completion: at blanks, and '=' as a word of its own.
  testing::WriteFile(dir / "complete.sh", R"(source "$1"
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
spaced=${COMP_LINE//=/ = }
read -ra COMP_WORDS <<< "$spaced"
[[ $COMP_LINE == *" " || $COMP_LINE == *"=" ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMPREPLY=()
_charlm
printf '%s\n' "${COMPREPLY[@]}"
)");
  const auto complete = [&](const std::string& line) {
    return Shell("cd " + ShellQuote(dir.path().string()) + " && bash complete.sh charlm.bash " + ShellQuote(line));
  };
  CHECK(complete("charlm tr") == "train\n");
  const std::string keys = complete("charlm train --set model.c");
  CHECK(keys.find("model.cell=\n") != std::string::npos);
  CHECK(keys.find("data.") == std::string::npos);
  CHECK(complete("charlm train --set model.cell=l") == "lstm\n");
  CHECK(complete("charlm eval --split ") == "val\ntest\n");
  CHECK(complete("charlm generate --precision fp32_") == "fp32_packed\n");
  CHECK(complete("charlm eval --chec") == "--checkpoint\n");
  testing::WriteFile(dir / "model.ckpt", "x");
  CHECK(complete("charlm eval --checkpoint mod") == "model.ckpt\n");
  testing::WriteFile(dir / "my file.txt", "x");
  CHECK(complete("charlm eval --checkpoint my") == "my file.txt\n");  // one word, space and all
  CHECK(complete("charlm help tr") == "train\n");
  CHECK(complete("charlm generate --prefix ") == "\n");  // a value of the user's: no option names
}

TEST_CASE("train: the lines that end a run name the resume command, the budget's fix and what to do next") {
  Config config;
  config.train.out_dir = "runs/x";
  TrainOutcome stopped;
  stopped.interrupted = true;
  stopped.last_checkpoint = "runs/x/last.ckpt";
  const TrainEndLines signal = EndOfTrainLines(stopped, config, {"charlm", 2, 15});
  REQUIRE(signal.notices.size() == 1);
  CHECK(signal.notices[0] == "charlm: stopped by SIGTERM; saved runs/x/last.ckpt. Resume with: mpirun -np 2 charlm "
                             "train --resume runs/x/last.ckpt");
  CHECK(signal.exit_code == 128 + 15);

  TrainOutcome budget;
  budget.budget_reached = true;
  budget.budget = "train.max_steps 500";
  config.train.max_steps = 500;
  budget.last_checkpoint = "runs/x/last.ckpt";
  const TrainEndLines steps = EndOfTrainLines(budget, config, {"charlm", 1, 0});
  REQUIRE(steps.notices.size() == 1);
  CHECK(steps.notices[0].find("--set train.max_steps=1000 (the whole run's steps") != std::string::npos);
  CHECK(steps.exit_code == 0);
  // Under mpirun the budget's resume hint keeps the launcher, as the signal's does.
  budget.budget = "train.max_minutes 2.5";
  config.train.max_steps = 0;
  config.train.max_minutes = 2.5;
  const TrainEndLines minutes = EndOfTrainLines(budget, config, {"charlm", 2, 0});
  REQUIRE(minutes.notices.size() == 1);
  CHECK(minutes.notices[0] == "charlm: stopped at train.max_minutes 2.5; saved runs/x/last.ckpt. Resume with: "
                              "mpirun -np 2 charlm train --resume runs/x/last.ckpt --set train.max_minutes=3 (minutes more; "
                              "the run's epochs and patience still apply)");

  TrainOutcome done;
  done.epochs_completed = 3;
  done.best_val_perplexity = 8.0;
  done.best_checkpoint = "runs/x/best.ckpt";
  done.last_checkpoint = "runs/x/last.ckpt";
  done.sample_prefix = "分开";
  const TrainEndLines finished = EndOfTrainLines(done, config, {"charlm", 1, 0});
  REQUIRE(finished.logs.size() >= 4);
  CHECK(finished.logs[0] == "done after 3 epochs: best validation perplexity 8.000 (3.000 bits per character), saved in "
                            "runs/x/best.ckpt");
  CHECK(finished.logs[1].starts_with("validation was still improving at the end"));
  CHECK(finished.logs[2] == "next: charlm generate --checkpoint runs/x/best.ckpt --prefix '分开' --length 100");
  CHECK(finished.logs[3] == "      charlm eval --checkpoint runs/x/best.ckpt --split val");
}

TEST_CASE("train: the end of a run says whether the network beat the 5-gram and whether it was still improving") {
  Config config;
  config.train.out_dir = "runs/x";
  TrainOutcome outcome;
  outcome.epochs_completed = 20;
  outcome.best_checkpoint = "runs/x/best.ckpt";
  outcome.last_checkpoint = "runs/x/last.ckpt";
  auto lines = [&] { return EndOfTrainLines(outcome, config, {"charlm", 1, 0}).logs; };
  auto has = [](const std::vector<std::string>& logs, const std::string& text) {
    for (const std::string& line : logs) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  };
  // Beaten: 4 bits against the 5-gram's 5, 20 % fewer; still improving.
  outcome.best_val_perplexity = 16.0;
  outcome.baseline_val_perplexity = 32.0;
  outcome.best_epoch = 20;
  CHECK(has(lines(), "the network beats the Kneser-Ney 5-gram printed at the start (perplexity 32.000) by 20.0 % in "
                     "bits per character (4.000 against 5.000)"));
  CHECK(has(lines(), "still improving at the end: more epochs (train.epochs) or more time"));
  CHECK_FALSE(has(lines(), "overfitting"));
  config.train.max_minutes = 3;  // a budget ends by time: no epochs advised
  CHECK(has(lines(), "still improving at the end: more time (--minutes, train.max_minutes)"));
  config.train.max_minutes = 0;
  // Lost: 5 bits against 4, 25 % more; best at epoch 6 and 14 validations since.
  outcome.best_val_perplexity = 32.0;
  outcome.baseline_val_perplexity = 16.0;
  outcome.best_epoch = 6;
  outcome.validations_since_best = 14;
  CHECK(has(lines(), "the network loses to the Kneser-Ney 5-gram printed at the start (perplexity 16.000) by 25.0 %"));
  CHECK(has(lines(), "(5.000 against 4.000): on a small text, try train --corpus FILE --minutes M"));
  // A run that had a time budget is not told to try one: overfitting, it is pointed at the trend's advice.
  config.train.max_minutes = 3;
  CHECK(has(lines(), "(5.000 against 4.000): it overfits (below); dynamic evaluation, which adapts to the text as it "
                     "scores, often closes the gap: charlm eval --checkpoint runs/x/best.ckpt --split val --dynamic "
                     "--mix-ngram"));
  // Still improving, it is told to give more time; a fine-tuning run, which refuses --minutes, by its key alone.
  outcome.validations_since_best = 0;
  CHECK(has(lines(), "(5.000 against 4.000): try more time (--minutes, train.max_minutes)"));
  config.train.max_minutes = 0;
  const auto tuned = EndOfTrainLines(outcome, config, {"charlm", 1, 0, /*fine_tuned=*/true}).logs;
  CHECK(has(tuned, "(5.000 against 4.000): try more time (train.max_minutes) or epochs (train.epochs)"));
  for (const std::string& line : tuned) CHECK_MESSAGE(line.find("--minutes") == std::string::npos, line);
  outcome.validations_since_best = 14;
  CHECK(has(lines(), "validation has not improved for the last 14 validations (the best was epoch 6): the model is "
                     "overfitting"));
  CHECK_FALSE(has(lines(), "still improving"));
  outcome.validations_since_best = 1;
  CHECK(has(lines(), "the last validation did not improve on the best (the best was epoch 6)"));
  // No baseline over the same characters (a split over the start's limit): no comparison is made.
  outcome.baseline_val_perplexity.reset();
  CHECK_FALSE(has(lines(), "5-gram"));
}

TEST_CASE("train: a real run ends with the 5-gram comparison and the trend, the best epoch named") {
  testing::TempDir dir;
  testing::WriteTinyRun(dir);
  const testing::RunResult run =
      testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=4", "--set", "model.dropout=0"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  CHECK_MESSAGE(run.output.find("the Kneser-Ney 5-gram printed at the start (perplexity ") != std::string::npos, run.output);
  const bool improving = run.output.find("validation was still improving at the end") != std::string::npos;
  const bool named = run.output.find("(the best was epoch ") != std::string::npos;
  CHECK_MESSAGE(improving != named, run.output);
}

}  // namespace
}  // namespace charlm
