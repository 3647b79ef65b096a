// Long runs, run as a user would: kill -9 between two step checkpoints of a multi-megabyte text and resume to the
// same weights as an uninterrupted run; progress lines at the configured interval with stdout redirected; budgets.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "util/shell_quote.h"
#include "cli_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::BackgroundRun;
using testing::Run;
using testing::TempDir;

std::vector<nlohmann::json> MetricsRows(const fs::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// About 3 MB of words and a model small enough for ~1,000 steps per tenth of a second; the budget ends the run
// inside its first epoch, so every checkpoint is mid-epoch.
void WriteStepRun(const TempDir& dir) {
  testing::WriteFile(dir / "big.txt", testing::WordText(90000));
  testing::WriteFile(dir / "steps.json", R"({
  "data": {"corpus": "big.txt"},
  "model": {"cell": "gru", "hidden_size": 16, "dropout": 0.1},
  "train": {"batch_size": 8, "num_steps": 16, "epochs": 2, "threads": 1, "out_dir": "run",
            "checkpoint_every_steps": 1500, "max_steps": 12000, "eval_every_steps": 4000, "eval_max_chars": 5000},
  "generate": {"every": 0}
})");
}

TEST_CASE("long run: kill -9 between two step checkpoints, resume, and the weights equal an uninterrupted run's") {
  TempDir dir;
  WriteStepRun(dir);
  REQUIRE(fs::file_size(dir / "big.txt") > 2'000'000);
  const testing::RunResult whole = Run(dir, {"train", "--config", "steps.json", "--set", "train.out_dir=whole"});
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);
  CHECK_MESSAGE(whole.output.find("charlm: stopped at train.max_steps 12000; saved whole/last.ckpt. Resume with: ") !=
                    std::string::npos, whole.output);

  std::int64_t killed_at = 0;
  {
    BackgroundRun run(dir, {"train", "--config", "steps.json"});
    // The first step checkpoint is there (renamed into place whole): kill the run before it ends.
    REQUIRE_MESSAGE(testing::WaitFor([&] { return fs::exists(dir / "run" / "last.ckpt"); }, 60), run.Log());
    run.Signal(SIGKILL);
    CHECK(run.Wait() == -1);  // killed, not finished
    const CheckpointData saved = LoadCheckpoint((dir / "run" / "last.ckpt").string());
    killed_at = saved.trainer_state.at("global_step").get<std::int64_t>();
    CHECK(killed_at % 1500 == 0);
    CHECK(killed_at < 12000);
    CHECK(saved.trainer_state.at("next_batch").get<std::int64_t>() > 0);  // mid-epoch
  }
  const testing::RunResult resumed = Run(dir, {"train", "--resume", "run/last.ckpt"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("resuming run/last.ckpt at epoch 1, batch " + std::to_string(killed_at)) !=
        std::string::npos);

  const CheckpointData a = LoadCheckpoint((dir / "whole" / "last.ckpt").string());
  const CheckpointData b = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(a.trainer_state.at("global_step") == 12000);
  CHECK(b.trainer_state.at("global_step") == 12000);
  CHECK(a.params == b.params);
  CHECK(a.optimizer_state == b.optimizer_state);
  CHECK(a.carried_state == b.carried_state);
  CHECK(a.trainer_state.at("partial_loss_sum") == b.trainer_state.at("partial_loss_sum"));

  // metrics.jsonl: the rows of the killed part after its checkpoint are gone; the eval rows match the whole run's.
  const auto whole_rows = MetricsRows(dir / "whole" / "metrics.jsonl"), rows = MetricsRows(dir / "run" / "metrics.jsonl");
  std::vector<nlohmann::json> whole_evals, evals;
  std::int64_t previous = 0;
  for (const auto& row : rows) {
    CHECK(row.at("step").get<std::int64_t>() >= previous);
    previous = row.at("step").get<std::int64_t>();
    if (row.at("kind") == "eval") evals.push_back(row.at("val_perplexity"));
  }
  for (const auto& row : whole_rows) {
    if (row.at("kind") == "eval") whole_evals.push_back(row.at("val_perplexity"));
  }
  // Steps 4000, 8000 and 12000 on the first 5,000 characters, then the budget's end on the same 5,000
  // (train.eval_max_chars caps the stop's validation too).
  REQUIRE(whole_evals.size() == 4);
  const nlohmann::json& budget_end = whole_rows.back().at("kind") == "eval" ? whole_rows.back() : whole_rows.front();
  CHECK(budget_end.at("step") == 12000);
  CHECK(budget_end.at("val_chars").get<std::int64_t>() == 5000);
  CHECK(evals == whole_evals);
}

TEST_CASE("long run: with stdout redirected, progress lines with an ETA come at train.log_every_seconds") {
  TempDir dir;
  WriteStepRun(dir);
  // ~3 s of training at most: max_minutes 0.05 ends it whatever the machine's speed.
  BackgroundRun run(dir, {"train", "--config", "steps.json", "--set", "train.max_steps=0", "--set",
                          "train.max_minutes=0.05", "--set", "train.log_every_seconds=0.4", "--set",
                          "train.epochs=1000", "--set", "train.patience=0"});  // 2 epochs of steps.json: < 3 s
  const int exit_code = run.Wait();
  const std::string log = run.Log();
  REQUIRE_MESSAGE(exit_code == 0, log);
  CHECK_MESSAGE(log.find("charlm: stopped at train.max_minutes 0.05; saved run/last.ckpt") != std::string::npos, log);
  std::vector<double> times;
  for (const auto& row : MetricsRows(dir / "run" / "metrics.jsonl")) {
    if (row.at("kind") != "log") continue;
    times.push_back(row.at("elapsed_s").get<double>());
    CHECK(row.at("eta_epoch_s").get<double>() > 0);
    CHECK(row.at("tokens_per_s").get<double>() > 0);
    CHECK(row.at("epoch_fraction").get<double>() > 0);
  }
  // 3 s at 0.4 s: up to seven lines; at least two even when a loaded machine (load 10 seen) stretches the start
  // and the steps; never two within the interval.
  CHECK_MESSAGE(times.size() >= 2, log);
  CHECK(times.size() <= 8);
  for (std::size_t k = 1; k < times.size(); ++k) CHECK(times[k] - times[k - 1] >= 0.4);
  std::istringstream lines(log);
  int console_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("% of the epoch)") == std::string::npos) continue;
    ++console_lines;
    CHECK_MESSAGE(line.find(" tokens/s  ETA epoch ") != std::string::npos, line);
    CHECK_MESSAGE(line.find(", run ") != std::string::npos, line);
  }
  CHECK(console_lines == static_cast<int>(times.size()));
}

TEST_CASE("long run: the log interval defaults to 30 s when stdout is not a terminal, and config.json holds every key") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  const testing::RunResult r = Run(dir, {"train", "--config", "tiny.json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find("a progress line every 30 s (stdout is not a terminal; set train.log_every_seconds to change it)") != std::string::npos, r.output);
  // The start of the run shows only what differs from the defaults.
  CHECK_MESSAGE(r.output.find("config: data.corpus=\"text.txt\", generate.every=0, model.cell=\"gru\", "
                              "model.hidden_size=8, train.batch_size=4, train.epochs=2, train.num_steps=8, "
                              "train.out_dir=\"run\", train.threads=1 (all keys: run/config.json)") != std::string::npos,
                r.output);
  const auto config = nlohmann::json::parse(testing::ReadFile(dir / "run" / "config.json"));
  CHECK(config["train"]["log_every_seconds"] == -1);
  CHECK(config["model"]["num_layers"] == 1);
  const testing::RunResult quiet = Run(dir, {"train", "--config", "tiny.json", "--set", "train.log_every_seconds=0"});
  CHECK(quiet.output.find("a progress line every") == std::string::npos);
}

TEST_CASE("long run: the new keys are range-checked with the key, the value and the range") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  auto with = [&](const std::string& set) { return Run(dir, {"train", "--config", "tiny.json", "--set", set}); };
  CHECK_USER_ERROR(with("train.checkpoint_every_steps=-1"),
                   "train.checkpoint_every_steps = -1 is out of range: expected an integer >= 0");
  CHECK_USER_ERROR(with("train.eval_every_steps=-5"), "train.eval_every_steps = -5 is out of range");
  CHECK_USER_ERROR(with("train.eval_max_chars=-1"), "train.eval_max_chars = -1 is out of range");
  CHECK_USER_ERROR(with("train.max_steps=-1"), "train.max_steps = -1 is out of range");
  CHECK_USER_ERROR(with("train.max_minutes=-0.5"), "train.max_minutes = -0.5 is out of range: expected a number >= 0");
  CHECK_USER_ERROR(with("train.log_every_seconds=-0.5"),
                   "train.log_every_seconds = -0.5 is out of range: expected -1 (the default: 30 when stdout is not a "
                   "terminal) or a number >= 0");
  CHECK_USER_ERROR(with("train.log_every_seconds=-2"), "train.log_every_seconds = -2.0 is out of range");
  CHECK_FALSE(fs::exists(dir / "run"));
}

TEST_CASE("long run: eval shows its progress on a terminal and nothing when its output is redirected") {
  if (std::system("command -v script >/dev/null 2>&1") != 0) {
    MESSAGE("SKIPPED: script (package bsdutils), which gives eval a terminal, is not installed");
    return;
  }
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  testing::WriteFile(dir / "long.txt", testing::WordText(3000));
  const std::string eval = ShellQuote(testing::CharlmBinary().string()) + " eval --checkpoint run/last.ckpt --text long.txt";
  const std::string command = "cd " + ShellQuote(dir.path().string()) + " && script -qec " + ShellQuote(eval) +
                              " /dev/null </dev/null 2>&1";
  std::string terminal;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (std::size_t count; (count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) terminal.append(buffer, count);
  CHECK(::pclose(pipe) == 0);
  CHECK_MESSAGE(terminal.find("\revaluating long.txt: ") != std::string::npos, terminal);
  CHECK_MESSAGE(terminal.find(" characters), ETA ") != std::string::npos, terminal);
  CHECK_MESSAGE(terminal.find("long.txt: perplexity ") != std::string::npos, terminal);
  const testing::RunResult redirected = Run(dir, {"eval", "--checkpoint", "run/last.ckpt", "--text", "long.txt"});
  CHECK(redirected.exit_code == 0);
  CHECK_MESSAGE(redirected.output.find("evaluating") == std::string::npos, redirected.output);
}

TEST_CASE("long run: the baseline at the start scores at most 2,000,000 validation characters") {
  TempDir dir;
  WriteStepRun(dir);  // ~3 MB, of which 80 % is validation here: 2.4 M characters
  const testing::RunResult r = Run(dir, {"train", "--config", "steps.json", "--set", "data.val_fraction=0.8", "--set",
                                         "train.max_steps=1", "--set", "train.checkpoint_every_steps=0"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find("bits per character (1999999 characters predicted)") != std::string::npos, r.output);
}

}  // namespace
}  // namespace charlm
