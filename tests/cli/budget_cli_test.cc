// `train --corpus FILE --minutes M`: the plan's model and schedule, the budget's final validation, --out, the errors.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::Run;
using testing::RunResult;
using testing::TempDir;

std::vector<nlohmann::json> Rows(const fs::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST_CASE("budget cli: train --corpus FILE --minutes M picks a model, anneals over the time and validates at the end") {
  TempDir dir;
  testing::WriteFile(dir / "notes.txt", testing::WordText(400));  // ~17 k characters
  const auto started = std::chrono::steady_clock::now();
  const RunResult result = Run(dir, {"train", "--corpus", "notes.txt", "--minutes", "0.2", "--set", "train.threads=1",
                                     "--set", "generate.every=0"});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  CHECK_MESSAGE(result.output.find("model: LSTM ") != std::string::npos, result.output);
  CHECK(result.output.find("schedule: Adam lr") != std::string::npos);
  // Loose on purpose (sanitizer builds, a busy machine): the point is that the budget is the stop, not epochs.
  CHECK_MESSAGE(wall < 0.2 * 60 * 2, wall);
  const fs::path out = dir / "runs" / "notes";  // the corpus file's stem
  REQUIRE(fs::is_regular_file(out / "best.ckpt"));
  const nlohmann::json config = ReadJson(out / "config.json");
  CHECK(config["model"]["locked_dropout"] == true);
  CHECK(config["model"]["embedding_size"] == 64);
  CHECK(config["train"]["lr_schedule"]["name"] == "cosine");
  CHECK(config["train"]["threads"] == 1);  // --set wins over the plan
  CHECK(config["train"]["max_minutes"].get<double>() < 0.2);
  // The last row is the budget's validation of the whole split, after the last epoch row's step.
  const std::vector<nlohmann::json> rows = Rows(out / "metrics.jsonl");
  REQUIRE(!rows.empty());
  const auto val_split = static_cast<std::int64_t>(static_cast<double>(fs::file_size(dir / "notes.txt")) * 0.1);
  const nlohmann::json& last = rows.back();
  CHECK_MESSAGE(last["kind"] == "eval", last.dump());
  CHECK(last["val_chars"].get<std::int64_t>() >= val_split - 1);  // every transition of the split
  CHECK(last["step"].get<std::int64_t>() > 0);
  CHECK(result.output.find("Resume with:") != std::string::npos);
  CHECK(result.output.find("--set train.max_minutes=1 (minutes more") != std::string::npos);  // a number, as pasted
  CHECK(result.output.find("next: ") != std::string::npos);  // what a finished run says, too
  // The clock ends the run: its epoch lines do not count towards the million epochs the plan sets as a ceiling.
  CHECK_MESSAGE(result.output.find("epoch 1  train perplexity") != std::string::npos, result.output);
  CHECK(result.output.find("/1000000") == std::string::npos);
}

TEST_CASE("budget cli: with --config, --minutes sets the schedule and the stop and keeps the config's model") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  const RunResult result = Run(dir, {"train", "--config", "tiny.json", "--minutes", "0.1", "--out", "timed"});
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  const nlohmann::json config = ReadJson(dir / "timed" / "config.json");
  CHECK(config["model"]["cell"] == "gru");
  CHECK(config["model"]["hidden_size"] == 8);
  CHECK(config["train"]["lr_schedule"]["name"] == "cosine");
  CHECK(config["train"]["max_minutes"].get<double>() > 0);
  CHECK(config["train"]["max_minutes"].get<double>() < 0.1);
  CHECK(fs::is_regular_file(dir / "timed" / "best.ckpt"));
  // --out names the folder of a resumed run too (ResolveTrainConfig's train.out_dir, as --set would).
  const RunResult resumed = Run(dir, {"train", "--resume", "timed/last.ckpt", "--set", "train.max_minutes=0.01",
                                      "--out", "resumed"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(fs::is_regular_file(dir / "resumed" / "last.ckpt"));
}

TEST_CASE("budget cli: the errors name the value and the fix") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  CHECK_USER_ERROR(Run(dir, {"train", "--corpus", "text.txt", "--minutes", "0.01"}),
                   "--minutes 0.01: expected a budget of 0.1 to 10080 minutes");
  CHECK_USER_ERROR(Run(dir, {"train", "--corpus", "text.txt", "--minutes", "-5"}), "--minutes -5: expected");
  CHECK_USER_ERROR(Run(dir, {"train", "--resume", "run/last.ckpt", "--minutes", "1"}),
                   "--minutes starts a new run, and --resume run/last.ckpt continues one");
  CHECK_USER_ERROR(Run(dir, {"train", "--corpus", "missing.txt", "--minutes", "1"}), "missing.txt");
}

}  // namespace
TEST_CASE("budget cli: a warning about the corpus is said once per run, though --minutes reads the text twice") {
  TempDir dir;
  std::string text = testing::WordText(200);
  for (std::size_t at = 40; at < text.size(); at += 400) text[at] = '\x01';
  testing::WriteFile(dir / "ctl.txt", text);
  const RunResult result = Run(dir, {"train", "--corpus", "ctl.txt", "--minutes", "0.1", "--set", "train.threads=1",
                                     "--set", "generate.every=0", "--set", "train.report=false"});
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  std::size_t said = 0;
  for (std::size_t at = result.output.find("control characters"); at != std::string::npos;
       at = result.output.find("control characters", at + 1)) {
    ++said;
  }
  CHECK_MESSAGE(said == 1, result.output);
}

}  // namespace charlm
