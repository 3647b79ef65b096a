// train --init-from: fine-tuning on a second text keeps the checkpoint's vocabulary and model, lowers the second
// text's validation loss below the starting model's, and refuses what it cannot keep.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "format/checkpoint.h"
#include "test_util.h"

namespace charlm {
namespace {

using testing::RunResult;
using testing::TempDir;

// Lines of words from a few of WordText's letters in another order: a subset of its characters, whose frequency
// order (and so the order of a vocabulary built from it) differs from the first text's.
std::string SecondText(int lines) {
  const char* words[] = {"mat", "at", "a", "tam", "ma", "moat", "to"};
  std::uint32_t state = 777;
  std::string text;
  for (int line = 0; line < lines; ++line) {
    for (int w = 0; w < 6; ++w) {
      state = state * 1664525U + 1013904223U;
      text += words[(state >> 16) % 7];
      text += w == 5 ? '\n' : ' ';
    }
  }
  return text;
}

double Perplexity(const TempDir& dir, const std::vector<std::string>& args) {
  const RunResult result = testing::Run(dir, args);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  const std::size_t brace = result.output.rfind('{');
  REQUIRE(brace != std::string::npos);
  return nlohmann::json::parse(result.output.substr(brace))["perplexity"].get<double>();
}

TEST_CASE("fine-tune cli: --init-from trains a second text from the first one's weights and vocabulary") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string second = SecondText(120);
  testing::WriteFile(dir / "second.txt", second);
  // The second text's validation split is its last tenth (data.val_fraction 0.1, one byte a character here).
  const std::size_t val_chars = static_cast<std::size_t>(std::floor(static_cast<double>(second.size()) * 0.1));
  testing::WriteFile(dir / "second_val.txt", second.substr(second.size() - val_chars));
  const double before = Perplexity(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "second_val.txt", "--json"});

  const RunResult tuned = testing::Run(dir, {"train", "--init-from", "run/best.ckpt", "--corpus", "second.txt", "--out",
                                             "tuned", "--set", "train.epochs=6", "--set", "train.batch_size=4",
                                             "--set", "train.num_steps=8", "--set", "train.optimizer.lr=0.01",
                                             "--set", "generate.every=0"});
  REQUIRE_MESSAGE(tuned.exit_code == 0, tuned.output);
  CHECK(tuned.output.find("fine-tuning from run/best.ckpt") != std::string::npos);
  const double after = Perplexity(dir, {"eval", "--checkpoint", "tuned/best.ckpt", "--split", "val", "--json"});
  CHECK_MESSAGE(after < 0.9 * before, "before " << before << ", after " << after);
  // The same characters under the same ids: the vocabulary is the checkpoint's, not one rebuilt from the new text.
  CHECK(LoadCheckpoint((dir / "run" / "best.ckpt").string()).vocab ==
        LoadCheckpoint((dir / "tuned" / "best.ckpt").string()).vocab);
  CHECK(testing::ReadFile(dir / "tuned" / "metrics.jsonl").find(R"({"init_from":"run/best.ckpt","kind":"init"})") == 0);

  // A fine-tuning run resumes as one: its corpus is read with the checkpoint's vocabulary again.
  const RunResult resumed = testing::Run(dir, {"train", "--resume", "tuned/last.ckpt", "--set", "train.epochs=7"});
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(LoadCheckpoint((dir / "tuned" / "last.ckpt").string()).trainer_state["init_from"] == "run/best.ckpt");

  // What it cannot keep is refused, naming the key or the character.
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--init-from", "run/best.ckpt", "--corpus", "second.txt", "--set",
                                      "model.hidden_size=16"}),
                   "model.hidden_size = 16 differs from run/best.ckpt's 8: fine-tuning keeps the checkpoint's model");
  testing::WriteFile(dir / "other.txt", second + "xyz\n");
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--init-from", "run/best.ckpt", "--corpus", "other.txt"}),
                   "outside the model's vocabulary");
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--init-from", "run/best.ckpt", "--resume", "run/last.ckpt"}),
                   "give one of them");
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--init-from", "run/best.ckpt", "--corpus", "second.txt", "--minutes", "1"}),
                   "--set train.max_minutes=M");
}

TEST_CASE("fine-tune cli: the checkpoint's regularization is kept unless given, and the log says so") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json", "--set", "model.dropout=0.35", "--set",
                             "model.locked_dropout=true"}).exit_code == 0);
  testing::WriteFile(dir / "second.txt", SecondText(60));
  const std::vector<std::string> common = {"--set", "train.epochs=1", "--set", "train.batch_size=4", "--set",
                                           "train.num_steps=8", "--set", "generate.every=0", "--set", "train.report=false"};
  std::vector<std::string> kept = {"train", "--init-from", "run/best.ckpt", "--corpus", "second.txt", "--out", "kept"};
  kept.insert(kept.end(), common.begin(), common.end());
  const RunResult kept_run = testing::Run(dir, kept);
  REQUIRE_MESSAGE(kept_run.exit_code == 0, kept_run.output);
  CHECK_MESSAGE(kept_run.output.find("fine-tuning keeps run/best.ckpt's regularization: model.dropout=0.35, "
                                     "model.locked_dropout=true") != std::string::npos, kept_run.output);
  const nlohmann::json kept_config = LoadCheckpoint((dir / "kept" / "last.ckpt").string()).config;
  CHECK(kept_config["model"]["dropout"].get<double>() == doctest::Approx(0.35));
  CHECK(kept_config["model"]["locked_dropout"] == true);
  // A value the user gives wins, and is not reported as kept.
  std::vector<std::string> given = {"train", "--init-from", "run/best.ckpt", "--corpus", "second.txt", "--out",
                                    "given", "--set", "model.dropout=0.1"};
  given.insert(given.end(), common.begin(), common.end());
  const RunResult given_run = testing::Run(dir, given);
  REQUIRE_MESSAGE(given_run.exit_code == 0, given_run.output);
  CHECK(LoadCheckpoint((dir / "given" / "last.ckpt").string()).config["model"]["dropout"].get<double>() ==
        doctest::Approx(0.1));
  CHECK(given_run.output.find("model.dropout=0.35") == std::string::npos);
}

}  // namespace
}  // namespace charlm
