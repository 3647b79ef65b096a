// Runs the charlm executable on inputs that gave non-finite or impossible results, and on hostile paths and texts
// (issue 35): each is one error line with exit 1, or a result that says why it ended, never a silent success.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "test_util.h"
#include "util/utf8.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::Run;
using testing::RunResult;
using testing::RunShell;
using testing::TempDir;

// The tiny run trained in dir/run, with `more` arguments.
void TrainTiny(const TempDir& dir, const std::vector<std::string>& more = {}) {
  testing::WriteTinyRun(dir);
  std::vector<std::string> args = {"train", "--config", "tiny.json"};
  args.insert(args.end(), more.begin(), more.end());
  const RunResult trained = Run(dir, args);
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);
}

// dir/huge.ckpt: the tiny run's model with every weight 3e38 (finite, float32's largest is 3.4e38), made as a user
// would: export to safetensors, the data section rewritten, import.
void MakeHugeCheckpoint(const TempDir& dir) {
  REQUIRE(Run(dir, {"export", "--checkpoint", "run/best.ckpt", "--out", "model.safetensors"}).exit_code == 0);
  std::string bytes = testing::ReadFile(dir / "model.safetensors");
  REQUIRE(bytes.size() > 8);
  std::uint64_t header = 0;
  for (int k = 7; k >= 0; --k) header = header << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  const float huge = 3e38f;
  for (std::size_t at = 8 + header; at + 4 <= bytes.size(); at += 4) std::memcpy(&bytes[at], &huge, 4);
  testing::WriteFile(dir / "huge.safetensors", bytes);
  const RunResult imported = Run(dir, {"import", "--safetensors", "huge.safetensors", "--out", "huge.ckpt"});
  REQUIRE_MESSAGE(imported.exit_code == 0, imported.output);
}

TEST_CASE("results cli: weights that overflow float32 fail eval, generate and fine-tuning, blaming the weights") {
  TempDir dir;
  // An LSTM: its output tanh(c) stays finite and far from 0, so the logits overflow (a GRU's gates, all saturated at
  // 1, would keep its state at 0 and its logits at the finite bias).
  TrainTiny(dir, {"--set", "model.cell=lstm"});
  MakeHugeCheckpoint(dir);
  // Before: "perplexity -nan" (and null with --json) with exit 0, and a text of spaces.
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "huge.ckpt", "--split", "val"}),
                   "the weights of checkpoint huge.ckpt give a non-finite loss over the text");
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "huge.ckpt", "--split", "val", "--json"}),
                   "the weights of checkpoint huge.ckpt give a non-finite loss over the text");
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "huge.ckpt", "--prefix", "the", "--length", "20"}),
                   "the weights of checkpoint huge.ckpt give a non-finite logit");
  CHECK_USER_ERROR(Run(dir, {"score", "--checkpoint", "huge.ckpt", "--prefix", "the cat"}),
                   "the weights of checkpoint huge.ckpt give a non-finite log-probability at character 1");
  // Fine-tuning from them blamed the learning rate.
  const RunResult tuned = Run(dir, {"train", "--init-from", "huge.ckpt", "--corpus", "text.txt", "--out", "tuned",
                                    "--set", "train.batch_size=4", "--set", "train.num_steps=8"});
  CHECK_USER_ERROR(tuned, "fine-tuning diverged at its first step");
  CHECK_USER_ERROR(tuned, "the weights of huge.ckpt (train --init-from) are to blame, not train.optimizer.lr");
}

TEST_CASE("results cli: generate --no-repeat-ngram stops where no character is allowed, and --json says why") {
  TempDir dir;
  TrainTiny(dir);
  const RunResult result = testing::RunStdout(dir, {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the",
                                                    "--no-repeat-ngram", "1", "--length", "1000", "--json"});
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  const nlohmann::json line = nlohmann::json::parse(result.output);
  CHECK(line["stopped_by"] == "no-repeat-ngram");
  // "Never twice" holds: no character of prefix + text repeats, so the text is shorter than the vocabulary.
  const std::u32string text = DecodeUtf8("the" + line["text"].get<std::string>(), "text");
  for (std::size_t i = 0; i < text.size(); ++i) CHECK(text.find(text[i], i + 1) == std::u32string::npos);
  CHECK(testing::ReadFile(dir / "stderr.txt").find("no-repeat-ngram 1: every character the model knows would repeat") !=
        std::string::npos);
}

TEST_CASE("results cli: a prefix file's \\r\\n conditions on one line break, as the corpus and score --text read it") {
  TempDir dir;
  TrainTiny(dir);
  testing::WriteFile(dir / "crlf.txt", "the cat\r\nthe");
  const std::vector<std::string> common = {"generate", "--checkpoint", "run/best.ckpt", "--length", "40", "--seed", "3",
                                           "--json"};
  std::vector<std::string> from_file = common, from_text = common;
  from_file.insert(from_file.end(), {"--prefix-file", "crlf.txt"});
  from_text.insert(from_text.end(), {"--prefix", "the cat\nthe"});
  const RunResult a = testing::RunStdout(dir, from_file), b = testing::RunStdout(dir, from_text);
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(nlohmann::json::parse(a.output)["text"] == nlohmann::json::parse(b.output)["text"]);
}

TEST_CASE("results cli: bench --seconds that is not finite or too large is refused with the range") {
  TempDir dir;
  for (const char* seconds : {"nan", "inf", "1e300", "0"}) {
    CHECK_USER_ERROR(Run(dir, {"bench", "--seconds", seconds}),
                     "is out of range: expected seconds per measurement above 0 and at most 3600, e.g. --seconds 3");
  }
  CHECK_USER_ERROR(Run(dir, {"bench", "--seconds", "nan"}), "--seconds nan is out of range");
}

TEST_CASE("results cli: generate --interactive with a folder as standard input is an error, not an empty session") {
  TempDir dir;
  TrainTiny(dir);
  const RunResult result = RunShell("cd " + ShellQuote(dir.path().string()) + " && " +
                                    ShellQuote(testing::CharlmBinary().string()) +
                                    " generate --checkpoint run/best.ckpt --interactive < . 2>&1");
  CHECK_USER_ERROR(result, "--interactive reads prefixes from standard input, which is a directory");
}

TEST_CASE("results cli: a NUL byte in a path key and a path too long are refused for what they are") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=\"text.txt\\u0000.evil\""}),
                   "data.corpus = \"text.txt\\u0000.evil\" holds a NUL byte (\\u0000, at byte 8), which no path or "
                   "text can hold: remove it");
  // Before: "does not exist".
  const std::string long_path = std::string(5000, 'a') + ".txt";
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=" + long_path}),
                   "cannot be looked up: File name too long; shorten the path");
  CHECK_USER_ERROR(Run(dir, {"vocab", "--corpus", "text.txt", "--newline", "spaec"}), "did you mean \"space\"?");
}

}  // namespace
}  // namespace charlm
