// Runs the charlm executable on every bad input a user can cause and checks the exit code and the one-line message;
// sends real SIGINT/SIGTERM to a training run and resumes from what it saved. docs/errors.md lists these cases.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/checkpoint.h"
#include "util/shell_quote.h"
#include "eval/evaluate.h"
#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::BackgroundRun;
using testing::ErrorLine;
using testing::Run;
using testing::RunResult;
using testing::TempDir;
using testing::WaitFor;
using testing::WordText;
using testing::WriteLongRun;
using testing::WriteTinyRun;

TEST_CASE("cli: --version prints the version and exits 0") {
  TempDir dir;
  const RunResult r = Run(dir, {"--version"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(r.output.starts_with("charlm "), r.output);
}

TEST_CASE("cli: a tiny training run succeeds, so the error cases below fail for their own reason") {
  TempDir dir;
  WriteTinyRun(dir);
  const RunResult r = Run(dir, {"train", "--config", "tiny.json"});
  CHECK_MESSAGE(r.exit_code == 0, r.output);
  CHECK(fs::exists(dir / "run" / "last.ckpt"));
  CHECK(r.output.find("charlm: error") == std::string::npos);
  // The run ends by saying where the model is and which commands use it; the suggested prefix must be one this
  // English text can encode: without generate.prefixes, the first words of the validation split.
  CHECK_MESSAGE(r.output.find("done after 2 epochs: best validation perplexity ") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find(" generate --checkpoint run/best.ckpt --prefix 'away the from' --length 100") != std::string::npos,
                r.output);
  CHECK_MESSAGE(r.output.find(" eval --checkpoint run/best.ckpt --split val") != std::string::npos, r.output);
  const RunResult generated = Run(dir, {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "a", "--length", "5"});
  CHECK_MESSAGE(generated.exit_code == 0, generated.output);
}

TEST_CASE("cli: malformed JSON config is reported as file:line:column") {
  TempDir dir;
  WriteTinyRun(dir);
  testing::WriteFile(dir / "bad.json", "{\n  \"data\": {\"corpus\": \"text.txt\",}\n}\n");
  const RunResult r = Run(dir, {"train", "--config", "bad.json"});
  CHECK_USER_ERROR(r, "charlm: error: bad.json:2:");
  CHECK_USER_ERROR(r, "malformed JSON");
}

TEST_CASE("cli: missing config file, a folder as config, no config at all") {
  TempDir dir;
  WriteTinyRun(dir);
  // The message names the folder it looked in and the way to train without a config.
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "nope.json"}),
                   "config file \"nope.json\" not found in " + std::filesystem::canonical(dir.path()).string() +
                       ": check the path (relative to that folder), or train without a config: charlm train --corpus "
                       "FILE (the built-in defaults)");
  fs::create_directories(dir / "folder");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "folder"}), "config file \"folder\" is a directory");
  CHECK_USER_ERROR(Run(dir, {"train"}), "train needs a text: --corpus FILE (e.g. charlm train --corpus notes.txt --minutes 15), or --config FILE, or --resume CKPT");
}

TEST_CASE("cli: an unknown key is named with the nearest known key") {
  TempDir dir;
  WriteTinyRun(dir);
  testing::WriteFile(dir / "typo.json", R"({"data": {"corpus": "text.txt"}, "model": {"hiden_size": 8}})");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "typo.json"}),
                   "unknown key \"model.hiden_size\": did you mean \"model.hidden_size\"?");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.epoch=3"}),
                   "did you mean \"train.epochs\"");
  // Every unknown key in one line, not the first alone.
  const RunResult two = Run(dir, {"train", "--config", "typo.json", "--set", "train.epoch=3"});
  CHECK(ErrorLine(two) == "charlm: error: typo.json with --set overrides: 2 unknown keys: \"model.hiden_size\": did you "
                          "mean \"model.hidden_size\"?; \"train.epoch\": did you mean \"train.epochs\"?");
}

TEST_CASE("cli: a value of the wrong type names the key, the expected type and an example") {
  TempDir dir;
  WriteTinyRun(dir);
  testing::WriteFile(dir / "type.json", R"({"data": {"corpus": "text.txt"}, "model": {"hidden_size": "big"}})");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "type.json"}),
                   "model.hidden_size: expected an integer, got \"big\" (string); write e.g. \"hidden_size\": 256");
  // Given with --set, the example is a --set too, not the JSON form.
  CHECK(ErrorLine(Run(dir, {"train", "--config", "tiny.json", "--set", "train.batch_size=abc"})) ==
        "charlm: error: tiny.json with --set overrides: train.batch_size: expected an integer, got \"abc\" (string); "
        "write e.g. --set train.batch_size=32");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=3"}),
                   "train.out_dir: expected a string, got 3 (number); write e.g. --set train.out_dir=runs/default");
  testing::WriteFile(dir / "enum.json", R"({"data": {"corpus": "text.txt"}, "model": {"cell": "transformer"}})");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "enum.json"}),
                   "model.cell: expected one of \"rnn\" | \"gru\" | \"lstm\", got \"transformer\"");
  CHECK(ErrorLine(Run(dir, {"train", "--config", "enum.json"})).find("did you mean") == std::string::npos);
  // A misspelt value is named with the nearest spelling, as a misspelt key is.
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "model.cell=lsmt"}),
                   "model.cell: expected one of \"rnn\" | \"gru\" | \"lstm\", got \"lsmt\" (string): did you mean \"lstm\"?");
}

TEST_CASE("cli: out-of-range values name the key, the value and the accepted range") {
  TempDir dir;
  WriteTinyRun(dir);
  const std::vector<std::string> train = {"train", "--config", "tiny.json"};
  auto with = [&](std::vector<std::string> sets) {
    std::vector<std::string> args = train;
    for (auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    return Run(dir, args);
  };
  CHECK_USER_ERROR(with({"model.hidden_size=0"}), "model.hidden_size = 0 is out of range: expected an integer >= 1");
  CHECK_USER_ERROR(with({"train.optimizer.lr=0"}), "train.optimizer.lr = 0.0 is out of range: expected a number > 0");
  CHECK_USER_ERROR(with({"train.optimizer.lr=-1"}), "train.optimizer.lr = -1.0 is out of range: expected a number > 0");
  CHECK_USER_ERROR(with({"model.dropout=1.0"}), "model.dropout = 1.0 is out of range: expected a number in [0, 1)");
  CHECK_USER_ERROR(with({"train.batch_size=64", "train.num_steps=64"}),
                   "but train.batch_size 64 x train.num_steps 64 needs at least 4160: lower train.batch_size or "
                   "train.num_steps");
  CHECK_FALSE(fs::exists(dir / "run"));  // every check runs before the first file is written
}

TEST_CASE("cli: the AWD-LSTM keys are range-checked, and tied embeddings need embedding_size == hidden_size") {
  TempDir dir;
  WriteTinyRun(dir);
  auto with = [&](std::vector<std::string> sets) {
    std::vector<std::string> args = {"train", "--config", "tiny.json"};
    for (auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    return Run(dir, args);
  };
  CHECK_USER_ERROR(with({"model.weight_drop=1"}),
                   "tiny.json with --set overrides: model.weight_drop = 1.0 is out of range: expected a number in "
                   "[0, 1); set it within that range, e.g. the default 0.0");
  CHECK_USER_ERROR(with({"model.embedding_dropout=-0.1"}),
                   "model.embedding_dropout = -0.1 is out of range: expected a number in [0, 1)");
  CHECK_USER_ERROR(with({"model.tie_embeddings=true", "model.embedding_size=4"}),
                   "tiny.json with --set overrides: model.tie_embeddings = true needs model.embedding_size == "
                   "model.hidden_size, got 4 and 8: set model.embedding_size to 8, or model.tie_embeddings to false");
  CHECK_FALSE(fs::exists(dir / "run"));  // every check runs before the first file is written
}

TEST_CASE("cli: missing, empty, non-UTF-8 and too-short corpora") {
  TempDir dir;
  WriteTinyRun(dir);
  auto train_on = [&](const std::string& corpus) {
    return Run(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=" + corpus});
  };
  CHECK_USER_ERROR(train_on("nope.txt"), "corpus file 'nope.txt' does not exist (relative paths are read from the "
                                         "current folder, " + fs::canonical(dir.path()).string() + ")");
  testing::WriteFile(dir / "empty.txt", "");
  CHECK_USER_ERROR(train_on("empty.txt"), "corpus file 'empty.txt' is empty");
  testing::WriteFile(dir / "latin1.txt", "caf\xE9 au lait");
  CHECK_USER_ERROR(train_on("latin1.txt"), "latin1.txt: invalid UTF-8 at byte offset 3");
  CHECK_USER_ERROR(train_on("latin1.txt"), "save the file as UTF-8");
  testing::WriteFile(dir / "short.txt", "abcabc");
  CHECK_USER_ERROR(train_on("short.txt"), "the training split of short.txt has 6 characters");
  CHECK_FALSE(fs::exists(dir / "run"));
}

TEST_CASE("cli: missing, foreign, empty, truncated and corrupted checkpoints") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string good = testing::ReadFile(dir / "run" / "last.ckpt");
  auto generate_from = [&](const std::string& checkpoint) {
    return Run(dir, {"generate", "--checkpoint", checkpoint, "--prefix", "the"});
  };
  CHECK_USER_ERROR(generate_from("nope.ckpt"), "nope.ckpt: cannot open checkpoint: No such file or directory");
  CHECK_USER_ERROR(generate_from("text.txt"), "text.txt: not a charlm checkpoint");
  testing::WriteFile(dir / "empty.ckpt", "");
  CHECK_USER_ERROR(generate_from("empty.ckpt"), "empty.ckpt: file is empty, not a charlm checkpoint");
  CHECK_USER_ERROR(generate_from("run"), "run: not a regular file");
  testing::WriteFile(dir / "truncated.ckpt", good.substr(0, good.size() / 2));
  CHECK_USER_ERROR(generate_from("truncated.ckpt"), "truncated.ckpt: checkpoint is truncated");
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  testing::WriteFile(dir / "flipped.ckpt", flipped);
  CHECK_USER_ERROR(generate_from("flipped.ckpt"), "flipped.ckpt: checkpoint is corrupted (CRC32 is 0x");
  // The same defects stop `train --resume` and `eval` before they do anything.
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--resume", "flipped.ckpt"}), "checkpoint is corrupted");
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "truncated.ckpt", "--text", "text.txt"}),
                   "checkpoint is truncated");
}

TEST_CASE("cli: eval scores with full context whatever --streams, and --streams, --burn-in and --threads are range-checked") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const RunResult one = Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--streams", "1"});
  const RunResult batched = Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json"});
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  REQUIRE_MESSAGE(batched.exit_code == 0, batched.output);
  CHECK(nlohmann::json::parse(one.output)["tokens"] == nlohmann::json::parse(batched.output)["tokens"]);
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--streams", "0"}),
                   "--streams 0 is below 1: give 1 (one stream) or more");
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--burn-in", "-1"}),
                   "--burn-in -1 is negative: give 0 or more characters");
  // The top ends: the most streams, and a burn-in longer than the text (one stream, full context), give the same
  // perplexity; one past them is refused with the range.
  const auto perplexity = [](const RunResult& r) { return nlohmann::json::parse(r.output)["perplexity"].get<double>(); };
  const RunResult most = Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--streams",
                                   std::to_string(kMaxEvalStreams)});
  const RunResult longest = Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--burn-in",
                                      "2147483647"});
  REQUIRE_MESSAGE(most.exit_code == 0, most.output);
  REQUIRE_MESSAGE(longest.exit_code == 0, longest.output);
  CHECK(perplexity(most) == doctest::Approx(perplexity(one)).epsilon(1e-5));
  CHECK(perplexity(longest) == doctest::Approx(perplexity(one)).epsilon(1e-5));
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--streams",
                             std::to_string(kMaxEvalStreams + 1)}),
                   "--streams 4097 is above 4096: give 1 to 4096");
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--burn-in", "2147483648"}),
                   "--burn-in 2147483648 is out of range: expected an integer from 0 to 2147483647 (characters)");
  // --threads: 0 (all cores) and the most give the same figure as one thread (the splits are bit-identical).
  for (const std::string& threads : std::vector<std::string>{"0", "1", "3", std::to_string(kMaxEvalThreads)}) {
    CAPTURE(threads);
    const RunResult threaded =
        Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--threads", threads});
    REQUIRE_MESSAGE(threaded.exit_code == 0, threaded.output);
    CHECK(perplexity(threaded) == perplexity(batched));
  }
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--threads", "-1"}),
                   "--threads -1 is out of range: give 1 to 256, or 0 for all cores");
  CHECK_USER_ERROR(Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--threads",
                             std::to_string(kMaxEvalThreads + 1)}),
                   "--threads 257 is out of range: give 1 to 256, or 0 for all cores");
}

TEST_CASE("cli: generate's whole-number options past int and --length-penalty past 10 are one-line errors") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const auto generate = [&](std::vector<std::string> options) {
    std::vector<std::string> args = {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "4"};
    args.insert(args.end(), options.begin(), options.end());
    return Run(dir, args);
  };
  CHECK_USER_ERROR(generate({"--beam", "99999999999"}),
                   "--beam 99999999999 is out of range: expected an integer from 0 to 64 (0 = no beam search)");
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "2147483648"}),
                   "--length 2147483648 is out of range: expected an integer from 0 to 2147483647");
  CHECK_USER_ERROR(generate({"--top-k", "-2147483649"}), "--top-k -2147483649 is out of range: expected an integer from 0");
  CHECK_USER_ERROR(generate({"--repetition-window", "2147483648"}),
                   "--repetition-window 2147483648 is out of range: expected an integer from 1 to 2147483647");
  CHECK_USER_ERROR(generate({"--no-repeat-ngram", "4294967296"}), "--no-repeat-ngram 4294967296 is out of range");
  CHECK_USER_ERROR(generate({"--beam", "2", "--length-penalty", "10.5"}),
                   "--length-penalty 10.5 is out of range: expected a number from 0 to 10");
  for (const char* end : {"0", "10"}) {
    const RunResult r = generate({"--beam", "2", "--length-penalty", end, "--json"});
    CHECK_MESSAGE(r.exit_code == 0, r.output);
  }
  const RunResult widest =
      generate({"--repetition-window", "2147483647", "--no-repeat-ngram", "2147483647", "--seed", "3"});
  const RunResult plain = generate({"--seed", "3"});
  REQUIRE_MESSAGE(widest.exit_code == 0, widest.output);
  CHECK(widest.output == plain.output);  // an n-gram longer than any text never repeats: the defaults' draw
  const RunResult all = generate({"--top-k", "2147483647", "--seed", "3"});
  CHECK_MESSAGE(all.exit_code == 0, all.output);
}

TEST_CASE("cli: baseline prints the n-gram's validation perplexity, and its bad inputs are one-line errors") {
  TempDir dir;
  WriteTinyRun(dir);
  const RunResult r = Run(dir, {"baseline", "--config", "tiny.json", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const nlohmann::json j = nlohmann::json::parse(r.output);
  CHECK(j["order"] == 5);
  CHECK(j["val_perplexity"].get<double>() > 1);
  CHECK(j["val_bpc"].get<double>() == doctest::Approx(std::log2(j["val_perplexity"].get<double>())));
  const RunResult text = Run(dir, {"baseline", "--corpus", "text.txt", "--order", "1"});
  CHECK_MESSAGE(text.output.find("add-one unigram 1-gram baseline (fitted on ") != std::string::npos, text.output);
  CHECK_USER_ERROR(Run(dir, {"baseline", "--corpus", "text.txt", "--order", "0"}),
                   "--order 0 is out of range: expected 1 to 10, e.g. the default 5");
  CHECK_USER_ERROR(Run(dir, {"baseline"}), "baseline needs --corpus FILE (or --config FILE naming data.corpus)");
  CHECK_USER_ERROR(Run(dir, {"baseline", "--corpus", "text.txt", "--set", "data.val_fraction=0"}),
                   "the validation split of text.txt has 0 characters (data.val_fraction is 0.0)");
}

TEST_CASE("cli: a checkpoint of another format version names both versions") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  std::string bytes = testing::ReadFile(dir / "run" / "last.ckpt");
  // The u32 version sits after the 8-byte magic (docs/checkpoint-format.md). The CRC is recomputed so that only the
  // version is wrong, as in a file written by a future charlm.
  REQUIRE(bytes.size() > 20);
  const std::uint32_t future = kCheckpointFormatVersion + 1;
  for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<char>((future >> (8 * i)) & 0xFFU);
  bytes.resize(bytes.size() - 4);
  const std::uint32_t crc = Crc32(bytes);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFU));
  testing::WriteFile(dir / "future.ckpt", bytes);
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "future.ckpt", "--prefix", "the"}),
                   "future.ckpt: checkpoint format version " + std::to_string(future) + ", this charlm reads version " +
                       std::to_string(kCheckpointFormatVersion));
}

TEST_CASE("cli: prefix characters outside the vocabulary are named, and --unknown skip drops them") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the龙"}),
                   "prefix \"the龙\" has 1 character(s) outside the model's vocabulary: U+9F99 '龙'; remove them, or "
                   "pass --unknown skip");
  const RunResult skipped = Run(
      dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the龙", "--unknown", "skip", "--length", "5"});
  CHECK_MESSAGE(skipped.exit_code == 0, skipped.output);
  // Said on stderr, never silent; the text (stdout) starts from what is left.
  const std::string said = "charlm: warning: --unknown skip: left out 1 of the 4 characters of prefix \"the龙\", which are "
                           "outside the model's vocabulary: U+9F99 '龙'\n";
  REQUIRE_MESSAGE(skipped.output.starts_with(said), skipped.output);
  CHECK(skipped.output.substr(said.size()).starts_with("the"));
  CHECK(skipped.output.substr(said.size()).find("龙") == std::string::npos);
  // A text with a thousand unknown characters does not list them all on its one line: the first 20, then a count.
  const RunResult many = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the0123456789ABCDEFGHIJKLMNO"});
  CHECK_USER_ERROR(many, "has 25 character(s) outside the model's vocabulary: U+0030 '0', U+0031 '1', ");
  CHECK_USER_ERROR(many, ", U+0049 'I', U+004A 'J' and 5 more; remove them, or pass --unknown skip");
  CHECK(testing::ErrorLine(many).find("'K'") == std::string::npos);
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--unknown", "maybe"}),
                   "--unknown \"maybe\" is not a policy");
  // A control character in the prefix is quoted as an escape, so the error stays one line.
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "th\te"}),
                   "prefix \"th\\te\" has 1 character(s) outside the model's vocabulary: U+0009");
  // train has no --unknown: its fix is the config's prefixes.
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "generate.every=1", "--set",
                             "generate.prefixes=[\"the龙\"]"}),
                   "generate.prefixes entry \"the龙\" has 1 character(s) outside the model's vocabulary: U+9F99 '龙'; "
                   "change generate.prefixes in the config");
}

TEST_CASE("cli: generate's and score's contradictory or empty requests are one-line errors, and their warnings show") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string warning = "charlm: warning: ";
  const RunResult never_stops = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length",
                                          "5", "--stop", "龙"});
  CHECK_MESSAGE(never_stops.exit_code == 0, never_stops.output);
  CHECK(never_stops.output.find(warning + "--stop \"龙\" has a character the model never writes (outside its "
                                          "vocabulary), so it never stops generation") != std::string::npos);
  const RunResult beam = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length", "5",
                                   "--beam", "2", "--temperature", "0.5"});
  CHECK_MESSAGE(beam.exit_code == 0, beam.output);
  CHECK(beam.output.find(warning + "beam search is deterministic and ignores --temperature/--top-k/--top-p/--seed/"
                                   "--sample/--greedy (--beam 1 is greedy decoding)") != std::string::npos);
  const RunResult beam_greedy = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length",
                                          "5", "--beam", "2", "--greedy"});
  CHECK_MESSAGE(beam_greedy.output.find(warning + "beam search is deterministic and ignores") != std::string::npos,
                beam_greedy.output);
  const RunResult greedy_top_k = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length",
                                           "5", "--greedy", "--top-k", "5"});
  CHECK_MESSAGE(greedy_top_k.exit_code == 0, greedy_top_k.output);
  CHECK_MESSAGE(greedy_top_k.output.find(warning + "--greedy decodes the most likely character at every step and "
                                                   "ignores --temperature/--top-k/--top-p/--seed") != std::string::npos,
                greedy_top_k.output);
  // A --set key given twice would silently keep the last value.
  CHECK_USER_ERROR(Run(dir, {"baseline", "--config", "tiny.json", "--set", "data.val_fraction=0.1", "--set",
                             "data.val_fraction=0.2"}),
                   "--set data.val_fraction is given twice (data.val_fraction=0.1 and data.val_fraction=0.2): give "
                   "each key once");
  // An option that sets a key, and --set of that key, would keep one silently too.
  CHECK_USER_ERROR(Run(dir, {"train", "--corpus", "a.txt", "--set", "data.corpus=b.txt"}),
                   "--corpus and --set data.corpus=b.txt both set data.corpus: give one of them");
  CHECK_USER_ERROR(Run(dir, {"train", "--corpus", "a.txt", "--out", "x", "--set", "train.out_dir=y"}),
                   "--out and --set train.out_dir=y both set train.out_dir: give one of them");
  CHECK_USER_ERROR(Run(dir, {"vocab", "--corpus", "a.txt", "--newline", "space", "--set", "data.newline=keep"}),
                   "--newline and --set data.newline=keep both set data.newline: give one of them");
  CHECK_USER_ERROR(Run(dir, {"baseline", "--corpus", "a.txt", "--set", "data.corpus=b.txt"}),
                   "--corpus and --set data.corpus=b.txt both set data.corpus: give one of them");
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix-file", "-", "--interactive"}),
                   "--prefix-file - and --interactive both read standard input: give the prefix file by its path");
  // Without a prefix, and none in the checkpoint, generate samples from the start of a line, as char-rnn does.
  const RunResult unprimed = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--length", "20", "--json"});
  REQUIRE_MESSAGE(unprimed.exit_code == 0, unprimed.output);
  CHECK(unprimed.output.find("sampling from the start of a line (--prefix '')") != std::string::npos);

  CHECK_USER_ERROR(Run(dir, {"score", "--checkpoint", "run/last.ckpt"}),
                   "score needs exactly one of --text FILE or --prefix TEXT");
  CHECK_USER_ERROR(Run(dir, {"score", "--checkpoint", "run/last.ckpt", "--text", "text.txt", "--prefix", "the"}),
                   "score needs exactly one of --text FILE or --prefix TEXT");
  CHECK_USER_ERROR(Run(dir, {"score", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--json", "--tsv"}),
                   "--json, --tsv and --color each choose the output: give one of them");
  CHECK_USER_ERROR(Run(dir, {"score", "--checkpoint", "run/last.ckpt", "--prefix", "t"}),
                   "prefix \"t\" has 1 known character(s): the first is context only, so nothing is scored; give at "
                   "least 2");

  testing::WriteFile(dir / "odd.txt", "the cat 龙 sat 龙");  // 15 characters, 2 outside the vocabulary
  const RunResult skipped = Run(dir, {"eval", "--checkpoint", "run/last.ckpt", "--text", "odd.txt", "--unknown", "skip"});
  CHECK_MESSAGE(skipped.exit_code == 0, skipped.output);
  CHECK(skipped.output.find(warning + "--unknown skip: left out 2 of the 15 characters of odd.txt, which are outside "
                                      "the model's vocabulary (the figures below cover the other 13)") !=
        std::string::npos);
  CHECK(skipped.output.find("odd.txt: perplexity ") != std::string::npos);
  CHECK(skipped.output.find("12 characters predicted") != std::string::npos);
  const RunResult scored = Run(dir, {"score", "--checkpoint", "run/last.ckpt", "--text", "odd.txt", "--unknown", "skip"});
  CHECK_MESSAGE(scored.exit_code == 0, scored.output);
  CHECK_MESSAGE(scored.output.find(warning + "--unknown skip: left out 2 of the 15 characters of odd.txt, which are "
                                             "outside the model's vocabulary (the figures below cover the other 13): "
                                             "U+9F99 '龙'") != std::string::npos,
                scored.output);
}

TEST_CASE("cli: generate without --prefix continues the checkpoint's generate.prefixes, and says so") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "generate.prefixes=[\"the\", \"a cat\"]"}).exit_code == 0);
  const RunResult r = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--length", "5", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string said = "charlm: info: no --prefix given: continuing the checkpoint's generate.prefixes, \"the\", \"a cat\"\n";
  REQUIRE_MESSAGE(r.output.starts_with(said), r.output);
  std::istringstream lines(r.output.substr(said.size()));
  std::vector<std::string> prefixes;
  for (std::string line; std::getline(lines, line);) prefixes.push_back(nlohmann::json::parse(line).at("prefix"));
  CHECK(prefixes == std::vector<std::string>{"the", "a cat"});
  // Given prefixes replace them, silently.
  const RunResult given = Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--length", "5", "--prefix", "dog"});
  CHECK(given.output.starts_with("dog"));
  CHECK(given.output.find("generate.prefixes") == std::string::npos);
}

TEST_CASE("cli: eval and score --text name a missing or empty text as a text file, with the relative-path hint only for relative paths") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string absolute = (fs::canonical(dir.path()) / "nope.txt").string();
  for (const std::string command : {"eval", "score"}) {
    const RunResult missing = Run(dir, {command, "--checkpoint", "run/last.ckpt", "--text", absolute});
    CHECK_USER_ERROR(missing, "text file '" + absolute + "' does not exist: check the path");
    CHECK(ErrorLine(missing).find("relative") == std::string::npos);
    CHECK(ErrorLine(missing).find("corpus") == std::string::npos);
    CHECK_USER_ERROR(Run(dir, {command, "--checkpoint", "run/last.ckpt", "--text", "nope.txt"}),
                     "text file 'nope.txt' does not exist (relative paths are read from the current folder, " +
                         fs::canonical(dir.path()).string() + "): check the path, or run from the folder it is relative to");
    testing::WriteFile(dir / "empty.txt", "");
    CHECK_USER_ERROR(Run(dir, {command, "--checkpoint", "run/last.ckpt", "--text", "empty.txt"}),
                     "text file 'empty.txt' is empty: give a UTF-8 text file with some text");
    fs::create_directories(dir / "no_text");
    CHECK_USER_ERROR(Run(dir, {command, "--checkpoint", "run/last.ckpt", "--text", "no_text"}),
                     "text 'no_text' has no text: no documents were found; check the path");
  }
  // A corpus keeps its name, and an absolute one gets no relative-path hint either.
  const RunResult corpus = Run(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=" + absolute});
  CHECK_USER_ERROR(corpus, "corpus file '" + absolute + "' does not exist: check the path");
  CHECK(ErrorLine(corpus).find("relative") == std::string::npos);
}

TEST_CASE("cli: --seed takes 0 to 2^64-1 only, --sample overrides a greedy checkpoint, --greedy with it is an error") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "generate.greedy=true"}).exit_code == 0);
  const std::vector<std::string> generate = {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length",
                                             "40"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = generate;
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(dir, args);
  };
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "x"}) {
    CAPTURE(bad);
    CHECK_USER_ERROR(with({"--seed", bad}), "--seed " + std::string(bad) + " is not a whole number from 0 to");
  }
  CHECK(with({"--seed", "18446744073709551615"}).exit_code == 0);
  CHECK_USER_ERROR(with({"--greedy", "--sample"}), "--greedy and --sample contradict each other");
  // A range error names the option that set the value.
  const RunResult negative_length =
      Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the", "--length", "-5"});
  CHECK_USER_ERROR(negative_length, "generate.length = -5 is out of range");
  CHECK_USER_ERROR(negative_length, "(given as --length)");
  CHECK_USER_ERROR(with({"--top-p", "2"}), "(given as --top-p)");
  CHECK_USER_ERROR(with({"--temperature", "nan"}), "generate.temperature = nan is out of range");
  // The checkpoint decodes greedily: seeds change nothing, and the log says why; --sample draws.
  const RunResult greedy_a = with({"--seed", "1"}), greedy_b = with({"--seed", "2"});
  CHECK(greedy_a.output.find("add --sample to draw from the softmax") != std::string::npos);
  const RunResult sampled_a = with({"--sample", "--seed", "1"}), sampled_b = with({"--sample", "--seed", "2"});
  CHECK_MESSAGE(sampled_a.exit_code == 0, sampled_a.output);
  CHECK(sampled_a.output.find("add --sample") == std::string::npos);
  CHECK(sampled_a.output != sampled_b.output);
  CHECK(greedy_a.output == greedy_b.output);
}

TEST_CASE("cli: a model larger than the machine's memory is a one-line error before anything is allocated") {
  TempDir dir;
  WriteTinyRun(dir);
  // 3 x 2,000,000 x 2,000,000 GRU weights: about 1.2e13 parameters, far beyond any machine this runs on.
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "model.hidden_size=2000000"}),
                   "parameters, which with gradients and optimizer state need");
}

TEST_CASE("cli: generate applies the checkpoint's newline policy to the prefix") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "data.newline=space"}).exit_code == 0);
  const RunResult with_newline =
      Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the\ncat", "--length", "20", "--seed", "4"});
  const RunResult with_space =
      Run(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", "the cat", "--length", "20", "--seed", "4"});
  CHECK_MESSAGE(with_newline.exit_code == 0, with_newline.output);
  CHECK(with_newline.output == with_space.output);
}

TEST_CASE("cli: an out_dir that cannot be created or written stops training before it starts") {
  TempDir dir;
  WriteTinyRun(dir);
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=text.txt/run"}),
                   "train.out_dir \"text.txt/run\" cannot be created (Not a directory)");
  // /proc/self is a folder nobody, not even root, can create files in; chmod would not stop a test run as root.
  if (fs::is_directory("/proc/self")) {
    CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=/proc/self"}),
                     "train.out_dir \"/proc/self\" is not writable: choose a writable folder");
  }
  if (::geteuid() != 0) {
    fs::create_directories(dir / "locked");
    fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=locked"}),
                     "train.out_dir \"locked\" is not writable");
    CHECK(fs::is_empty(dir / "locked"));
    fs::permissions(dir / "locked", fs::perms::owner_all);
  }
}

TEST_CASE("cli: resuming a finished run is an error that says how to go on, and writes nothing anywhere") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string report = testing::ReadFile(dir / "run" / "report.html");
  const RunResult again = Run(dir, {"train", "--resume", "run/last.ckpt"});
  CHECK_USER_ERROR(again, "--resume run/last.ckpt: the run is already complete (2 epochs done, train.epochs is 2), so "
                          "nothing was trained or written: to train on, resume with --set train.epochs=N for an N above 2");
  CHECK(again.output.find("saved in") == std::string::npos);  // no claim of a save that did not happen
  CHECK(testing::ReadFile(dir / "run" / "report.html") == report);
  // Into a new folder: not even the folder is made, so nothing there pretends to be a run.
  const RunResult copy = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.out_dir=copyto"});
  CHECK_USER_ERROR(copy, "the run is already complete (2 epochs done, train.epochs is 2)");
  CHECK_FALSE(fs::exists(dir / "copyto"));
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=1", "--set", "train.out_dir=one"}).exit_code == 0);
  CHECK_USER_ERROR(Run(dir, {"train", "--resume", "one/last.ckpt"}), "the run is already complete (1 epoch done, train.epochs is 1)");
  const RunResult steps = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=5", "--set",
                                    "train.max_steps=3", "--set", "train.out_dir=steps"});
  CHECK_USER_ERROR(steps, "steps and train.max_steps is 3, so nothing was trained or written: to train on, resume "
                          "with --set train.max_steps=N for an N above ");
  CHECK_FALSE(fs::exists(dir / "steps"));
  const RunResult more = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"});
  CHECK_MESSAGE(more.exit_code == 0, more.output);
  CHECK_MESSAGE(more.output.find("epoch 3/3") != std::string::npos, more.output);
}

TEST_CASE("cli: divergence stops with the epoch, the batch and the fixes, keeping the last good checkpoint") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string good = testing::ReadFile(dir / "run" / "last.ckpt");
  const RunResult r = Run(dir, {"train", "--config", "tiny.json", "--set", "train.optimizer.name=sgd", "--set",
                                "train.optimizer.lr=1e30", "--set", "train.clip_norm=0"});
  CHECK_USER_ERROR(r, "training diverged at epoch 1, batch ");
  CHECK_USER_ERROR(r, "lower train.optimizer.lr (now 1e+30) or set/lower train.clip_norm (now 0)");
  CHECK(r.output.find("run held an earlier run; its files are now in run/previous") != std::string::npos);
  // The earlier run's last.ckpt is kept, moved aside, and the message says where.
  CHECK_USER_ERROR(r, "no checkpoint of this run was saved (the earlier run's checkpoints are in run/previous)");
  CHECK(testing::ReadFile(dir / "run" / "previous" / "last.ckpt") == good);
  CHECK_FALSE(fs::exists(dir / "run" / "last.ckpt"));
  // Tried again: the earlier run is now the diverged one, which saved no checkpoint; the message must not say it did.
  const RunResult again = Run(dir, {"train", "--config", "tiny.json", "--set", "train.optimizer.name=sgd", "--set",
                                    "train.optimizer.lr=1e30", "--set", "train.clip_norm=0"});
  CHECK_USER_ERROR(again, "no checkpoint of this run was saved (the earlier run's files, none of them a checkpoint, "
                          "are in run/previous.2)");
  CHECK_FALSE(fs::exists(dir / "run" / "previous.2" / "last.ckpt"));

  for (const auto& entry : fs::directory_iterator(dir / "run")) {
    CHECK_MESSAGE(entry.path().filename().string().find(".tmp.") == std::string::npos, entry.path());
  }
}

TEST_CASE("cli: resuming with a changed model key or a changed corpus names the difference") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "model.hidden_size=16", "--resume",
                             "run/last.ckpt"}),
                   "--resume run/last.ckpt: model.hidden_size is 8 in the checkpoint but 16 in the config");
  testing::WriteFile(dir / "text.txt", WordText(60) + "zebra quiz\n");
  CHECK_USER_ERROR(Run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=3", "--resume", "run/last.ckpt"}),
                   "--resume run/last.ckpt: the vocabulary of text.txt differs from the checkpoint's");
}

TEST_CASE("cli: bad command-line flags exit 2 with a pointer to --help") {
  TempDir dir;
  WriteTinyRun(dir);
  const RunResult unknown_flag = Run(dir, {"train", "--config", "tiny.json", "--bogus"});
  CHECK(unknown_flag.exit_code == 2);
  CHECK(ErrorLine(unknown_flag) == "charlm: error: train has no option --bogus (charlm train --help lists its options)");
  const RunResult stray_word = Run(dir, {"train", "--config", "tiny.json", "stray"});
  CHECK(stray_word.exit_code == 2);
  CHECK(ErrorLine(stray_word) ==
        "charlm: error: The following argument was not expected: stray: see charlm --help, or charlm COMMAND --help");
  const RunResult no_command = Run(dir, {});
  CHECK(no_command.exit_code == 2);
  CHECK(ErrorLine(no_command).find("A subcommand is required") != std::string::npos);
  const RunResult not_a_number = Run(dir, {"generate", "--checkpoint", "x", "--prefix", "a", "--length", "abc"});
  CHECK(not_a_number.exit_code == 2);
  CHECK(ErrorLine(not_a_number) == "charlm: error: --length abc is not a whole number: generate --length takes an "
                                   "integer (characters to generate); e.g. --length 1");
  const RunResult too_large = Run(dir, {"baseline", "--order", "99999999999"});
  CHECK(too_large.exit_code == 2);
  CHECK(ErrorLine(too_large) == "charlm: error: --order 99999999999 is out of range: baseline --order takes an integer "
                                "(n-gram order, 1 (add-one unigram) to 10); e.g. --order 5");
}

TEST_CASE("cli: every numeric option of every command refuses a non-number in the project's one line, exit 2") {
  TempDir dir;
  int numeric = 0;
  for (const std::string command : {"vocab", "train", "generate", "score", "eval", "baseline", "summary", "export",
                                    "import", "report", "bench"}) {
    // The options --help shows with a numeric type: a new one is covered without being listed here.
    std::istringstream help(Run(dir, {command, "--help"}).output);
    for (std::string line; std::getline(help, line);) {
      std::istringstream words(line);
      std::string option, type;
      words >> option >> type;
      const bool integer = type.starts_with("INT") || type.starts_with("UINT");
      if (!option.starts_with("--") || (!integer && !type.starts_with("FLOAT"))) continue;
      ++numeric;
      for (const std::string value : {"abc", "1.5"}) {
        if (value == "1.5" && !integer) continue;
        CAPTURE(command);
        CAPTURE(option);
        const RunResult r = Run(dir, {command, option, value});
        CHECK(r.exit_code == 2);
        CHECK(ErrorLine(r).starts_with("charlm: error: " + option + " " + value + " is not a " +
                                       (integer ? "whole number" : "number") + ": " + command + " " + option + " takes " +
                                       (integer ? "an integer (" : "a number (")));
        CHECK(ErrorLine(r).find("; e.g. " + option + " ") != std::string::npos);
      }
    }
  }
  CHECK(numeric >= 17);  // vocab 2, generate 9, eval 3, baseline 1, bench 2
}

TEST_CASE("cli: a mistyped option of every command, or a mistyped command, exits 2 naming the nearest one") {
  TempDir dir;
  const std::vector<std::vector<std::string>> typos = {
      {"vocab", "--corpos", "--corpus"},           {"train", "--confg", "--config"},
      {"generate", "--prefx", "--prefix"},          {"score", "--checkpiont", "--checkpoint"},
      {"eval", "--splt", "--split"},                {"baseline", "--ordr", "--order"},
      {"summary", "--confg", "--config"},           {"export", "--ot", "--out"},
      {"import", "--safetensor", "--safetensors"}, {"report", "--ot", "--out"},
      {"bench", "--secnds", "--seconds"}};
  for (const std::vector<std::string>& typo : typos) {
    CAPTURE(typo[1]);
    const RunResult r = Run(dir, {typo[0], typo[1], "分开"});
    CHECK(r.exit_code == 2);
    CHECK(ErrorLine(r) == "charlm: error: " + typo[0] + " has no option " + typo[1] + ": did you mean " + typo[2] +
                              "? (charlm " + typo[0] + " --help lists its options)");
  }
  // Written with '=', after a valid option: the same line.
  const RunResult with_value = Run(dir, {"generate", "--checkpoint", "x.ckpt", "--prefx=分开"});
  CHECK(ErrorLine(with_value) ==
        "charlm: error: generate has no option --prefx: did you mean --prefix? (charlm generate --help lists its options)");
  const RunResult command = Run(dir, {"genrate", "--checkpoint", "x.ckpt"});
  CHECK(command.exit_code == 2);
  CHECK(ErrorLine(command) == "charlm: error: genrate is not a command: did you mean generate? (charlm --help lists the commands)");
}

void CheckStopAndResume(int signal_number, const std::string& signal_name) {
  TempDir dir;
  WriteLongRun(dir);
  // With a --set of a key the checkpoint locks: the printed resume command must carry it.
  BackgroundRun run(dir, {"train", "--config", "long.json", "--set", "model.hidden_size=24"});
  // After the first epoch's metrics line there is a last.ckpt from before the signal, and training is mid-stride.
  REQUIRE_MESSAGE(WaitFor([&] { return !testing::ReadFile(dir / "run" / "metrics.jsonl").empty(); }, 60), run.Log());
  run.Signal(signal_number);
  const int exit_code = run.Wait();
  const std::string log = run.Log();
  CHECK_MESSAGE(exit_code == 128 + signal_number, log);
  CHECK_MESSAGE(log.find("charlm: stopped by " + signal_name + "; saved run/last.ckpt. Resume with: ") !=
                    std::string::npos, log);
  CHECK_MESSAGE(log.find(" train --resume run/last.ckpt\n") != std::string::npos, log);

  const CheckpointData saved = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  const int epochs_completed = saved.trainer_state.at("epochs_completed").get<int>();
  CHECK(epochs_completed >= 1);
  // Finish the interrupted epoch and one more, then stop normally.
  // The printed command, with only the number of epochs raised so that the run ends.
  const RunResult resumed = Run(dir, {"train", "--resume", "run/last.ckpt", "--set",
                                      "train.epochs=" + std::to_string(epochs_completed + 2)});
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("resuming run/last.ckpt at epoch " + std::to_string(epochs_completed + 1)) !=
        std::string::npos);
  CHECK(resumed.output.find("epoch " + std::to_string(epochs_completed + 2) + "/" +
                            std::to_string(epochs_completed + 2)) != std::string::npos);
  const CheckpointData finished = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(finished.trainer_state.at("epochs_completed").get<int>() == epochs_completed + 2);
}

TEST_CASE("cli: SIGINT during training saves last.ckpt, says how to resume, exits 130, and --resume continues") {
  CheckStopAndResume(SIGINT, "SIGINT");
}

TEST_CASE("cli: SIGTERM during training saves last.ckpt, says how to resume, exits 143, and --resume continues") {
  CheckStopAndResume(SIGTERM, "SIGTERM");
}

TEST_CASE("cli: SIGHUP (terminal closed) during training saves last.ckpt like SIGTERM and exits 129") {
  CheckStopAndResume(SIGHUP, "SIGHUP");
}

TEST_CASE("cli: training piped into head (SIGPIPE) saves last.ckpt, says so on stderr and exits 141") {
  TempDir dir;
  WriteLongRun(dir);
  // head leaves after the first line; charlm's next line to the closed pipe raises SIGPIPE, then every later
  // write does again (those must not count as a second signal). timeout: a run that ignored it would go on.
  const std::string command = "cd " + ShellQuote(dir.path().string()) + " && bash -c " +
                              ShellQuote("timeout 120 " + ShellQuote(testing::CharlmBinary().string()) +
                                         " train --config long.json 2>err.txt | head -n 1 >/dev/null; "
                                         "echo ${PIPESTATUS[0]} >status.txt");
  REQUIRE(std::system(command.c_str()) == 0);
  const std::string err = testing::ReadFile(dir / "err.txt");
  CHECK_MESSAGE(testing::ReadFile(dir / "status.txt") == "141\n", err);
  CHECK_MESSAGE(err.find("charlm: stopped by SIGPIPE (standard output closed); saved run/last.ckpt. Resume with: ") !=
                    std::string::npos, err);
  CHECK_MESSAGE(err.find("the program reading it exited early") != std::string::npos, err);
  const CheckpointData saved = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(saved.trainer_state.at("global_step").get<long>() >= 1);
}

TEST_CASE("cli: a second signal exits at once without writing a checkpoint") {
  // Steps of ~0.1 s, so the second signal lands while the first is still waiting for its step to finish.
  TempDir dir;
  WriteLongRun(dir);
  testing::WriteFile(dir / "slow.json", R"({
  "data": {"corpus": "text.txt"},
  "model": {"cell": "gru", "hidden_size": 256},
  "train": {"batch_size": 32, "num_steps": 35, "epochs": 100000, "patience": 0, "out_dir": "run", "threads": 1},
  "generate": {"every": 0}
})");
  BackgroundRun run(dir, {"train", "--config", "slow.json"});
  // metrics.jsonl is created after the handlers are installed and before the first step.
  REQUIRE_MESSAGE(WaitFor([&] { return fs::exists(dir / "run" / "metrics.jsonl"); }, 60), run.Log());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::map<std::string, std::string> before;
  for (const auto& entry : fs::directory_iterator(dir / "run")) {
    before[entry.path().filename().string()] = testing::ReadFile(entry.path());
  }
  // Back to back, so both arrive within one step. Which handler runs first is up to the kernel when the run has
  // several threads, so the exit code is 128 + whichever came second; the graceful path would print its message.
  run.Signal(SIGINT);
  run.Signal(SIGTERM);
  const int exit_code = run.Wait();
  CHECK_MESSAGE((exit_code == 130 || exit_code == 143), run.Log());
  CHECK(run.Log().find("stopped by") == std::string::npos);
  std::map<std::string, std::string> after;
  for (const auto& entry : fs::directory_iterator(dir / "run")) {
    after[entry.path().filename().string()] = testing::ReadFile(entry.path());
  }
  CHECK(after == before);  // no checkpoint written or replaced, no temp file left
}

}  // namespace
}  // namespace charlm
