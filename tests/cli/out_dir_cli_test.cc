// Runs the charlm executable against the work already in train.out_dir: a second concurrent run, an earlier run,
// kill -9 during saves, and a checkpoint resumed from another folder. Nothing a user made may be lost.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/checkpoint.h"
#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::BackgroundRun;
using testing::Run;
using testing::RunResult;
using testing::TempDir;
using testing::WaitFor;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The names of out_dir's temporary files ("last.ckpt.tmp.1234"), which only a save in progress may own.
std::vector<std::string> TempFiles(const fs::path& out_dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    if (Contains(entry.path().filename().string(), ".tmp.")) names.push_back(entry.path().filename().string());
  }
  return names;
}

TEST_CASE("cli: a second run on an out_dir in use is refused, naming the process that holds it") {
  TempDir dir;
  testing::WriteLongRun(dir);
  BackgroundRun first(dir, {"train", "--config", "long.json"});
  REQUIRE_MESSAGE(WaitFor([&] { return fs::exists(dir / "run" / "metrics.jsonl"); }, 30), first.Log());
  const RunResult second = Run(dir, {"train", "--config", "long.json", "--set", "train.epochs=1"});
  CHECK_USER_ERROR(second, "train.out_dir \"run\" is in use by another training run (process " +
                               std::to_string(first.pid()) + "; lock file run/train.lock): wait for it to end");
  CHECK_MESSAGE(second.output.starts_with("charlm: error: "), second.output);  // no log line of a run that never ran
  CHECK(first.Running());
  CHECK(!fs::exists(dir / "run" / "previous"));  // the refused run touched nothing
  first.Signal(SIGINT);
  CHECK(first.Wait() == 130);
  // The lock went with its process: the next run may start (and moves the stopped run aside).
  const RunResult third = Run(dir, {"train", "--config", "long.json", "--set", "train.epochs=1"});
  CHECK_MESSAGE(third.exit_code == 0, third.output);
}

TEST_CASE("cli: a run that cannot start prints its error line alone, with no log line before it") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  const RunResult missing = Run(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=nope.txt"});
  CHECK_USER_ERROR(missing, "corpus file 'nope.txt' does not exist");
  CHECK_MESSAGE(missing.output.starts_with("charlm: error: "), missing.output);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  fs::create_directories(dir / "copy");
  fs::copy_file(dir / "run" / "last.ckpt", dir / "copy" / "last.ckpt");
  const RunResult changed = Run(dir, {"train", "--resume", "copy/last.ckpt", "--set", "model.hidden_size=9"});
  CHECK_USER_ERROR(changed, "model.hidden_size is 8 in the checkpoint but 9 in the config");
  CHECK_MESSAGE(changed.output.starts_with("charlm: error: "), changed.output);
}

TEST_CASE("cli: a new run into an out_dir holding an earlier run moves that run to previous/, never over it") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string first_metrics = testing::ReadFile(dir / "run" / "metrics.jsonl");
  const std::string first_checkpoint = testing::ReadFile(dir / "run" / "last.ckpt");
  const RunResult second = Run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=1"});
  REQUIRE_MESSAGE(second.exit_code == 0, second.output);
  CHECK_MESSAGE(Contains(second.output, "run held an earlier run; its files are now in run/previous"), second.output);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "metrics.jsonl") == first_metrics);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "last.ckpt") == first_checkpoint);
  CHECK(fs::exists(dir / "run" / "previous" / "best.ckpt"));
  CHECK(LoadCheckpoint((dir / "run" / "last.ckpt").string()).trainer_state["epochs_completed"] == 1);
  // A third run keeps both earlier ones.
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "last.ckpt") == first_checkpoint);
  CHECK(LoadCheckpoint((dir / "run" / "previous.2" / "last.ckpt").string()).trainer_state["epochs_completed"] == 1);
  // Resuming in place moves nothing.
  REQUIRE(Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"}).exit_code == 0);
  CHECK(!fs::exists(dir / "run" / "previous.3"));
}

TEST_CASE("cli: resuming an earlier checkpoint of the same folder keeps the later last.ckpt and metrics first") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=1"}).exit_code == 0);
  fs::copy_file(dir / "run" / "last.ckpt", dir / "run" / "epoch1.ckpt");
  REQUIRE(Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"}).exit_code == 0);
  const std::string later_checkpoint = testing::ReadFile(dir / "run" / "last.ckpt");
  const std::string later_metrics = testing::ReadFile(dir / "run" / "metrics.jsonl");
  // Back to epoch 1: the run would rewrite last.ckpt and drop the metrics rows of epochs 2 and 3.
  const RunResult back = Run(dir, {"train", "--resume", "run/epoch1.ckpt", "--set", "train.epochs=2"});
  REQUIRE_MESSAGE(back.exit_code == 0, back.output);
  CHECK_MESSAGE(Contains(back.output, "resuming run/epoch1.ckpt, not run/last.ckpt: the run goes on from there and "
                                      "rewrites last.ckpt, metrics.jsonl and samples.jsonl, so the folder's files as "
                                      "they were are copied to run/previous first"), back.output);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "last.ckpt") == later_checkpoint);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "metrics.jsonl") == later_metrics);
  CHECK(LoadCheckpoint((dir / "run" / "last.ckpt").string()).trainer_state["epochs_completed"] == 2);
  // Resuming the folder's own last.ckpt, or a checkpoint no earlier than it, copies nothing.
  REQUIRE(Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"}).exit_code == 0);
  fs::copy_file(dir / "run" / "last.ckpt", dir / "run" / "same.ckpt");
  const RunResult same = Run(dir, {"train", "--resume", "run/same.ckpt", "--set", "train.epochs=4"});
  REQUIRE_MESSAGE(same.exit_code == 0, same.output);
  CHECK_MESSAGE(!Contains(same.output, "copied to"), same.output);
  CHECK(!fs::exists(dir / "run" / "previous.2"));
}

TEST_CASE("cli: kill -9 during saves, again and again: every checkpoint left loads, no temporary file survives a restart") {
  TempDir dir;
  testing::WriteLongRun(dir);
  const fs::path out_dir = dir / "run";
  std::vector<std::string> args = {"train", "--config", "long.json", "--set", "train.checkpoint_every_steps=1"};
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    fs::remove(dir / "train.log");  // the previous round's log must not satisfy this round's wait
    BackgroundRun run(dir, args);
    // Started: past the lock, the clean-up and the earlier rounds' resume (it wrote its metrics file).
    if (round == 0) {
      REQUIRE_MESSAGE(WaitFor([&] { return fs::exists(out_dir / "metrics.jsonl"); }, 30), run.Log());
    } else {
      REQUIRE_MESSAGE(WaitFor([&] { return Contains(run.Log(), "temporary file"); }, 30), run.Log());
      // The killed round's temporary files are gone; only this process's own save may be in progress.
      for (const std::string& name : TempFiles(out_dir)) {
        CHECK_MESSAGE(name.ends_with(".tmp." + std::to_string(run.pid())), name);
      }
    }
    // Saves every step (a few ms each): a kill 150 to 400 ms in lands on one of them often.
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 60 * round));
    REQUIRE_MESSAGE(run.Running(), run.Log());
    run.Signal(SIGKILL);
    CHECK(run.Wait() == -1);
    for (const char* name : {"last.ckpt", "best.ckpt"}) {
      if (fs::exists(out_dir / name)) CHECK_NOTHROW(LoadCheckpoint((out_dir / name).string()));
    }
    // What a kill in the middle of writing leaves, whether or not this kill hit a save.
    REQUIRE(fs::exists(out_dir / "last.ckpt"));
    const std::string half = testing::ReadFile(out_dir / "last.ckpt");
    testing::WriteFile(out_dir / ("last.ckpt.tmp." + std::to_string(run.pid())), half.substr(0, half.size() / 2));
    args = {"train", "--resume", "run/last.ckpt"};
  }
  fs::remove(dir / "train.log");
  BackgroundRun last(dir, args);
  REQUIRE_MESSAGE(WaitFor([&] { return Contains(last.Log(), "temporary file"); }, 30), last.Log());
  last.Signal(SIGINT);
  CHECK(last.Wait() == 130);
  CHECK(TempFiles(out_dir).empty());
  CHECK_NOTHROW(LoadCheckpoint((out_dir / "last.ckpt").string()));
}

TEST_CASE("cli: a checkpoint copied to another folder resumes there, and --set train.out_dir elsewhere is said") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string original = testing::ReadFile(dir / "run" / "last.ckpt");
  fs::create_directories(dir / "copy");
  fs::copy_file(dir / "run" / "last.ckpt", dir / "copy" / "last.ckpt");
  const RunResult resumed = Run(dir, {"train", "--resume", "copy/last.ckpt", "--set", "train.epochs=3"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK_MESSAGE(Contains(resumed.output, "resuming copy/last.ckpt: writing into its folder copy (it was saved into run;"),
                resumed.output);
  CHECK(testing::ReadFile(dir / "run" / "last.ckpt") == original);  // the original run is untouched
  CHECK(LoadCheckpoint((dir / "copy" / "last.ckpt").string()).trainer_state["epochs_completed"] == 3);
  CHECK(fs::exists(dir / "copy" / "metrics.jsonl"));

  const RunResult elsewhere =
      Run(dir, {"train", "--resume", "copy/last.ckpt", "--set", "train.epochs=4", "--set", "train.out_dir=third"});
  REQUIRE_MESSAGE(elsewhere.exit_code == 0, elsewhere.output);
  CHECK_MESSAGE(Contains(elsewhere.output, "this run writes into train.out_dir third, not into the checkpoint's folder"),
                elsewhere.output);
  CHECK(LoadCheckpoint((dir / "third" / "last.ckpt").string()).trainer_state["epochs_completed"] == 4);
}

// The JSON rows of a .jsonl file.
std::vector<nlohmann::json> JsonLines(const fs::path& path) {
  std::vector<nlohmann::json> rows;
  std::istringstream lines(testing::ReadFile(path));
  for (std::string line; std::getline(lines, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST_CASE("cli: a run resumed into another folder starts its metrics and samples with the earlier run's, up to the checkpoint") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "generate.every=1", "--set", "generate.length=3"}).exit_code == 0);
  const std::vector<nlohmann::json> earlier = JsonLines(dir / "run" / "metrics.jsonl");
  REQUIRE(earlier.size() == 2);
  const std::int64_t step = earlier.back()["step"].get<std::int64_t>();
  // A row past the checkpoint (training the resumed run does again) is not copied.
  testing::WriteFile(dir / "run" / "metrics.jsonl", testing::ReadFile(dir / "run" / "metrics.jsonl") +
                                                        "{\"kind\":\"log\",\"epoch\":3,\"step\":" +
                                                        std::to_string(step + 1) + "}\n");
  const std::string earlier_text = testing::ReadFile(dir / "run" / "metrics.jsonl");
  const RunResult resumed = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3", "--set",
                                      "train.out_dir=next"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK_MESSAGE(Contains(resumed.output, "resuming run/last.ckpt: copied the 2 rows of run/metrics.jsonl up to step " +
                                             std::to_string(step) + " into next/metrics.jsonl"),
                resumed.output);
  const std::vector<nlohmann::json> rows = JsonLines(dir / "next" / "metrics.jsonl");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == earlier[0]);
  CHECK(rows[1] == earlier[1]);
  CHECK(rows[2]["epoch"] == 3);
  const std::vector<nlohmann::json> samples = JsonLines(dir / "next" / "samples.jsonl");
  REQUIRE(samples.size() == 3);
  CHECK(samples[0]["epoch"] == 1);
  CHECK(samples[2]["epoch"] == 3);
  CHECK(testing::ReadFile(dir / "run" / "metrics.jsonl") == earlier_text);  // only read
  CHECK(Contains(testing::ReadFile(dir / "next" / "report.html"), "<h3>epoch 1</h3>"));

  // A checkpoint copied alone: the run says its curves start at the checkpoint.
  fs::create_directories(dir / "alone");
  fs::copy_file(dir / "run" / "last.ckpt", dir / "alone" / "last.ckpt");
  const RunResult alone = Run(dir, {"train", "--resume", "alone/last.ckpt", "--set", "train.epochs=3"});
  REQUIRE_MESSAGE(alone.exit_code == 0, alone.output);
  CHECK_MESSAGE(Contains(alone.output, "resuming alone/last.ckpt: there is no alone/metrics.jsonl beside it, so "
                                       "alone/metrics.jsonl (and report.html's curves) start at step " +
                                           std::to_string(step)),
                alone.output);
  CHECK(JsonLines(dir / "alone" / "metrics.jsonl").size() == 1);
}

// Re-saves the checkpoint at `path` with its trainer state's `field` set to `value` (a valid CRC, as a run writes).
void SetTrainerState(const fs::path& path, const std::string& field, const nlohmann::json& value) {
  CheckpointData data = LoadCheckpoint(path.string());
  data.trainer_state[field] = value;
  SaveCheckpoint(path.string(), data);
}

// The checkpoint files a run's closing lines name ("saved in X", "--checkpoint X"): each must be on disk.
std::vector<std::string> NamedCheckpoints(const std::string& output) {
  std::vector<std::string> named;
  for (const std::string marker : {"saved in ", "best model in ", "--checkpoint ", "use "}) {
    for (std::size_t at = output.find(marker); at != std::string::npos; at = output.find(marker, at + 1)) {
      const std::size_t start = at + marker.size();
      const std::size_t end = output.find_first_of(" \n", start);
      const std::string word = output.substr(start, end - start);
      if (word.ends_with(".ckpt")) named.push_back(word);
    }
  }
  return named;
}

TEST_CASE("cli: a run resumed into another folder brings its best.ckpt along, and never names a checkpoint it lacks") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  // The run's best so far came before its checkpoint and no later epoch beats it: perplexity 1 is the floor.
  SetTrainerState(dir / "run" / "last.ckpt", "best_score", 1.0);
  SetTrainerState(dir / "run" / "best.ckpt", "best_score", 1.0);
  const std::string best = testing::ReadFile(dir / "run" / "best.ckpt");
  const std::vector<std::string> resume = {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"};
  auto into = [&](const std::string& out_dir) {
    std::vector<std::string> args = resume;
    args.insert(args.end(), {"--set", "train.out_dir=" + out_dir});
    return Run(dir, args);
  };

  const RunResult copied = into("next");
  REQUIRE_MESSAGE(copied.exit_code == 0, copied.output);
  CHECK_MESSAGE(Contains(copied.output, "resuming run/last.ckpt: copied run/best.ckpt (the run's best so far, validation "
                                        "perplexity 1.000 (0.000 bpc)) into next/best.ckpt"),
                copied.output);
  CHECK(testing::ReadFile(dir / "next" / "best.ckpt") == best);
  CHECK_MESSAGE(Contains(copied.output, "best validation perplexity 1.000 (0.000 bits per character), saved in next/best.ckpt"),
                copied.output);
  CHECK(TempFiles(dir / "next").empty());
  CHECK(testing::ReadFile(dir / "run" / "best.ckpt") == best);  // only read

  // A best.ckpt of a later run in that folder (saved after the checkpoint) is not this run's best: not copied.
  SetTrainerState(dir / "run" / "best.ckpt", "global_step", 1000000);
  const RunResult later = into("later");
  REQUIRE_MESSAGE(later.exit_code == 0, later.output);
  CHECK_MESSAGE(Contains(later.output, "resuming run/last.ckpt: run/best.ckpt is not copied: it was saved at step 1000000, "
                                       "after the checkpoint's step"),
                later.output);
  CHECK(!fs::exists(dir / "later" / "best.ckpt"));

  // No best.ckpt beside the checkpoint: said at the start, and the closing lines name last.ckpt instead.
  fs::remove(dir / "run" / "best.ckpt");
  const RunResult alone = into("alone");
  REQUIRE_MESSAGE(alone.exit_code == 0, alone.output);
  CHECK_MESSAGE(Contains(alone.output, "resuming run/last.ckpt: there is no run/best.ckpt beside it, so alone/best.ckpt "
                                       "is written when validation perplexity improves on 1.000 (0.000 bpc), the best "
                                       "before the checkpoint"),
                alone.output);
  CHECK(!fs::exists(dir / "alone" / "best.ckpt"));
  CHECK_MESSAGE(Contains(alone.output, "best validation perplexity 1.000 (0.000 bits per character), reached before the "
                                       "resumed checkpoint; alone has no best.ckpt of it (see the warning at the start), "
                                       "so the commands below use alone/last.ckpt"),
                alone.output);
  CHECK(!Contains(testing::ReadFile(dir / "alone" / "report.html"), "best.ckpt 1.0"));
  for (const RunResult* result : {&copied, &later, &alone}) {
    const std::vector<std::string> named = NamedCheckpoints(result->output);
    CHECK(!named.empty());
    for (const std::string& path : named) CHECK_MESSAGE(fs::exists(dir / path), (path + " named in: " + result->output));
  }
}

TEST_CASE("cli: an imported checkpoint fine-tunes as a new run beside itself, says so, and moves an earlier run aside") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  REQUIRE(Run(dir, {"export", "--checkpoint", "run/last.ckpt", "--out", "model.safetensors"}).exit_code == 0);
  const RunResult imported = Run(dir, {"import", "--safetensors", "model.safetensors", "--out", "model.ckpt"});
  REQUIRE_MESSAGE(imported.exit_code == 0, imported.output);
  const std::string here = fs::weakly_canonical(dir.path()).string();
  CHECK_MESSAGE(Contains(imported.output, "charlm train --resume model.ckpt --set train.epochs=N --set train.out_dir=DIR "
                                          "(without train.out_dir the run writes into " + here + ", the checkpoint's folder)"),
                imported.output);
  CHECK(LoadCheckpoint((dir / "model.ckpt").string()).trainer_state["imported_from"] == "model.safetensors");

  // In the current folder: said with its absolute path, as fine-tuning rather than a resume.
  const RunResult tuned = Run(dir, {"train", "--resume", "model.ckpt", "--set", "train.epochs=1"});
  REQUIRE_MESSAGE(tuned.exit_code == 0, tuned.output);
  CHECK_MESSAGE(Contains(tuned.output, "fine-tuning model.ckpt: its weights were imported from model.safetensors with no "
                                       "training state, so this is a new run from epoch 1 with fresh optimizer moments"),
                tuned.output);
  CHECK_MESSAGE(Contains(tuned.output, "fine-tuning model.ckpt: the run writes into " + here +
                                           " (the checkpoint's folder; --set train.out_dir=PATH to choose another)"),
                tuned.output);
  CHECK(!Contains(tuned.output, "resuming model.ckpt"));
  CHECK(!Contains(tuned.output, "it was saved into run"));  // the exporting run's folder is not this run's
  CHECK(LoadCheckpoint((dir / "last.ckpt").string()).trainer_state["epochs_completed"] == 1);

  // Beside an earlier run: that run is moved aside, as for any new run, not overwritten.
  const std::string earlier_metrics = testing::ReadFile(dir / "run" / "metrics.jsonl");
  const std::string earlier_checkpoint = testing::ReadFile(dir / "run" / "last.ckpt");
  fs::copy_file(dir / "model.ckpt", dir / "run" / "model.ckpt");
  const RunResult beside = Run(dir, {"train", "--resume", "run/model.ckpt", "--set", "train.epochs=1"});
  REQUIRE_MESSAGE(beside.exit_code == 0, beside.output);
  CHECK_MESSAGE(Contains(beside.output, "run held an earlier run; its files are now in run/previous"), beside.output);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "metrics.jsonl") == earlier_metrics);
  CHECK(testing::ReadFile(dir / "run" / "previous" / "last.ckpt") == earlier_checkpoint);
  CHECK(JsonLines(dir / "run" / "metrics.jsonl").size() == 1);

  // The fine-tuned run's own checkpoint resumes as any run's does.
  const RunResult resumed = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=2"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK_MESSAGE(Contains(resumed.output, "resuming run/last.ckpt at epoch 2, batch 0"), resumed.output);
  CHECK(!fs::exists(dir / "run" / "previous.2"));
}

TEST_CASE("cli: the end of a run names report.html only when it was written, and a retry hint only when it can work") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  const RunResult first = Run(dir, {"train", "--config", "tiny.json"});
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  CHECK(Contains(first.output, "report: run/report.html (learning curves and samples; open it in a browser)"));

  // A folder where the page goes: the write fails with its real reason, the page is not advertised, and the hint
  // (charlm report, once the folder is gone) works.
  fs::remove(dir / "run" / "report.html");
  fs::create_directory(dir / "run" / "report.html");
  const RunResult blocked = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"});
  REQUIRE_MESSAGE(blocked.exit_code == 0, blocked.output);
  CHECK_MESSAGE(Contains(blocked.output, "cannot write report page 'run/report.html': renaming 'run/report.html.tmp."),
                blocked.output);
  CHECK_MESSAGE(Contains(blocked.output, ": Is a directory; remove the folder at that path or give another path; "
                                         "training goes on without a page (after fixing that, charlm report run "
                                         "writes it)"),
                blocked.output);
  CHECK_MESSAGE(!Contains(blocked.output, "Success"), blocked.output);
  CHECK_MESSAGE(!Contains(blocked.output, "report: run/report.html"), blocked.output);
  const RunResult refused = Run(dir, {"report", "run"});
  CHECK_USER_ERROR(refused, "' over it: Is a directory; remove the folder at that path or give another path");
  fs::remove(dir / "run" / "report.html");
  const RunResult retried = Run(dir, {"report", "run"});
  CHECK_MESSAGE(retried.exit_code == 0, retried.output);

  // Run files that `report` cannot read (here a metrics.jsonl that is not a regular file): no page can be made,
  // by the run or by `charlm report`, so the warning names no retry and the end names no page.
  fs::remove(dir / "run" / "report.html");
  fs::remove(dir / "run" / "metrics.jsonl");
  fs::create_symlink("/dev/null", dir / "run" / "metrics.jsonl");
  const RunResult unreadable = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=4"});
  REQUIRE_MESSAGE(unreadable.exit_code == 0, unreadable.output);
  CHECK_MESSAGE(Contains(unreadable.output, "run/report.html not written: report: run holds no metrics.jsonl"),
                unreadable.output);
  CHECK_MESSAGE(Contains(unreadable.output, "training goes on without a page (charlm report reads the same files, so "
                                            "it cannot write one either)"),
                unreadable.output);
  CHECK_MESSAGE(!Contains(unreadable.output, "retries"), unreadable.output);
  CHECK_MESSAGE(!Contains(unreadable.output, "report: run/report.html"), unreadable.output);
  CHECK_USER_ERROR(Run(dir, {"report", "run"}), "run holds no metrics.jsonl");
}

}  // namespace
}  // namespace charlm
