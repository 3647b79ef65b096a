// Runs the charlm executable on hostile inputs and faults: FIFOs and endless devices, deep nesting, checkpoints whose
// CRC is valid but whose contents are not, a full stdout. Each case must end in one error line, never a hang or crash.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>
#include <filesystem>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "util/shell_quote.h"
#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::Run;
using testing::RunResult;
using testing::TempDir;
using testing::WriteTinyRun;

// The run must end, and quickly: a reader blocked on a FIFO or draining /dev/zero would take for ever.
RunResult RunQuickly(const TempDir& dir, const std::vector<std::string>& args) {
  const auto start = std::chrono::steady_clock::now();
  RunResult result = Run(dir, args);
  CHECK_MESSAGE(std::chrono::steady_clock::now() - start < std::chrono::seconds(20), result.output);
  return result;
}

TEST_CASE("cli: a FIFO or an endless device as config, corpus or checkpoint is refused at once") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "fifo"}),
                   "fifo: not a regular file (a FIFO (named pipe)), so not a usable config file");
  CHECK_USER_ERROR(RunQuickly(dir, {"summary", "--config", "fifo"}), "not a usable config file");
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=fifo"}),
                   "fifo: not a regular file (a FIFO (named pipe)), so not a usable corpus file");
  CHECK_USER_ERROR(RunQuickly(dir, {"vocab", "--corpus", "fifo"}), "not a usable corpus file");
  CHECK_USER_ERROR(RunQuickly(dir, {"generate", "--checkpoint", "fifo", "--prefix", "a"}),
                   "fifo: not a regular file (a FIFO (named pipe)), so not a usable checkpoint");
  CHECK_USER_ERROR(RunQuickly(dir, {"import", "--safetensors", "fifo", "--out", "x.ckpt"}),
                   "fifo: not a regular file (a FIFO (named pipe)), so not a usable safetensors file");
  CHECK_USER_ERROR(RunQuickly(dir, {"import", "--safetensors", "/dev/zero", "--out", "x.ckpt"}),
                   "/dev/zero: not a regular file (a character device), so not a usable safetensors file");
  for (const char* device : {"/dev/zero", "/dev/urandom"}) {
    CAPTURE(device);
    CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", std::string("data.corpus=") + device}),
                     std::string(device) + ": not a regular file (a character device), so not a usable corpus file");
    CHECK_USER_ERROR(RunQuickly(dir, {"vocab", "--corpus", device}), "not a regular file (a character device)");
    CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", device}), "not a usable config file");
    CHECK_USER_ERROR(RunQuickly(dir, {"eval", "--checkpoint", device, "--text", "text.txt"}),
                     "not a usable checkpoint");
  }
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  CHECK_USER_ERROR(RunQuickly(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "/dev/zero"}),
                   "/dev/zero: not a regular file (a character device), so not a usable text file");
}

// A checkpoint's bytes with one section's payload replaced and the CRC recomputed, as a hostile writer would make
// it: everything behind the CRC check is reached. Layout: docs/checkpoint-format.md.
std::string WithSection(const std::string& bytes, std::string_view tag, const std::string& payload) {
  auto u64_at = [&](std::size_t offset) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
    return value;
  };
  std::string out = bytes.substr(0, 16);
  for (std::size_t offset = 16; offset + 4 < bytes.size();) {
    const std::string section_tag = bytes.substr(offset, 4);
    const std::uint64_t size = u64_at(offset + 4);
    const std::string body = section_tag == tag ? payload : bytes.substr(offset + 12, size);
    out += section_tag;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((std::uint64_t{body.size()} >> (8 * i)) & 0xFFU));
    out += body;
    offset += 12 + size;
  }
  const std::uint32_t crc = Crc32(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFU));
  return out;
}

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST_CASE("cli: JSON nested 60000 deep in a config, a --set value or a checkpoint is one error line, not a crash") {
  TempDir dir;
  WriteTinyRun(dir);
  testing::WriteFile(dir / "deep.json", Nested(60000));
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "deep.json"}),
                   "deep.json: JSON nested more than 64 levels deep (arrays or objects inside each other)");
  CHECK_USER_ERROR(RunQuickly(dir, {"summary", "--config", "deep.json"}), "JSON nested more than 64 levels deep");
  const RunResult deep_set =
      RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "generate.prefixes=" + Nested(60000)});
  CHECK_USER_ERROR(deep_set, "--set generate.prefixes=[[[[");
  CHECK_USER_ERROR(deep_set, "JSON nested more than 64 levels deep");
  CHECK(testing::ErrorLine(deep_set).size() < 600);  // the quoted value is cut short

  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string good = testing::ReadFile(dir / "run" / "last.ckpt");
  testing::WriteFile(dir / "deep.ckpt", WithSection(good, "CONF", Nested(60000)));
  CHECK_USER_ERROR(RunQuickly(dir, {"generate", "--checkpoint", "deep.ckpt", "--prefix", "the"}),
                   "deep.ckpt (section CONF): JSON nested more than 64 levels deep");
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--resume", "deep.ckpt"}), "JSON nested more than 64 levels deep");
  testing::WriteFile(dir / "deep_vocab.ckpt", WithSection(good, "VOCB", Nested(60000)));
  CHECK_USER_ERROR(RunQuickly(dir, {"eval", "--checkpoint", "deep_vocab.ckpt", "--text", "text.txt"}),
                   "(section VOCB): JSON nested more than 64 levels deep");
}

TEST_CASE("cli: a checkpoint whose valid-CRC config gives absurd sizes is refused before anything is allocated") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string good = testing::ReadFile(dir / "run" / "last.ckpt");
  const CheckpointData data = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  for (const auto& [key, value] : {std::pair{"hidden_size", 2000000000}, {"num_layers", 2147483647},
                                   {"embedding_size", 2000000000}}) {
    CAPTURE(key);
    nlohmann::json config = data.config;
    config["model"][key] = value;
    testing::WriteFile(dir / "huge.ckpt", WithSection(good, "CONF", config.dump()));
    CHECK_USER_ERROR(RunQuickly(dir, {"generate", "--checkpoint", "huge.ckpt", "--prefix", "the"}),
                     "huge.ckpt: holds " + std::to_string(data.params.size()) +
                         " parameters but its config and vocabulary describe ");
    CHECK_USER_ERROR(RunQuickly(dir, {"eval", "--checkpoint", "huge.ckpt", "--text", "text.txt"}),
                     "the file is inconsistent");
  }
}

TEST_CASE("cli: a checkpoint whose valid-CRC trainer state is out of range or inconsistent is refused on resume") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json", "--set", "train.checkpoint_every_steps=3", "--set",
                    "train.max_steps=3"}).exit_code == 0);
  const std::string good = testing::ReadFile(dir / "run" / "last.ckpt");
  const nlohmann::json state = LoadCheckpoint((dir / "run" / "last.ckpt").string()).trainer_state;
  REQUIRE(state["next_batch"] == 3);  // mid-epoch, so the partial sums are in use
  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"epochs_since_best", -1},        {"partial_loss_sum", -1.0},    {"partial_loss_sum", nullptr},
      {"best_score", 0.5},              {"best_score", -1e300},        {"elapsed_seconds", -2.0},
      {"next_batch", 1000000000000LL},  {"partial_tokens", 5},         {"global_step", -1},
      {"epochs_completed", 4294967297LL},  // 2^32 + 1, which a cast to int reads as epoch 1
  };
  for (const auto& [field, value] : cases) {
    CAPTURE(field);
    CAPTURE(value.dump());
    nlohmann::json changed = state;
    changed[field] = value;
    testing::WriteFile(dir / "bad.ckpt", WithSection(good, "TRST", changed.dump()));
    const RunResult r = RunQuickly(dir, {"train", "--resume", "bad.ckpt", "--set", "train.out_dir=resumed", "--set",
                                         "train.max_steps=0"});
    CHECK_USER_ERROR(r, "bad.ckpt");
    CHECK_USER_ERROR(r, "it cannot be resumed; start a new run or use another checkpoint");
  }
  // Unchanged, the same bytes resume: the cases above fail for their field alone.
  testing::WriteFile(dir / "same.ckpt", WithSection(good, "TRST", state.dump()));
  const RunResult same = RunQuickly(dir, {"train", "--resume", "same.ckpt", "--set", "train.out_dir=resumed", "--set",
                                          "train.max_steps=0"});
  CHECK_MESSAGE(same.exit_code == 0, same.output);
}

TEST_CASE("cli: model.num_layers 2147483647 is refused at once, before anything is allocated") {
  TempDir dir;
  WriteTinyRun(dir);
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "model.num_layers=2147483647"}),
                   "parameters, which with gradients and optimizer state need");
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "model.hidden_size=2147483647"}),
                   "parameters, which with gradients and optimizer state need");
}

TEST_CASE("cli: train.batch_size has an upper end, and a step too large for memory is refused before it is built") {
  TempDir dir;
  WriteTinyRun(dir);
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "train.batch_size=4097"}),
                   "train.batch_size = 4097 is out of range: expected an integer in [1, 4096]; set it within that "
                   "range, e.g. the default 32");
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "train.batch_size=2147483647"}),
                   "train.batch_size = 2147483647 is out of range: expected an integer in [1, 4096]");
  // 4096 x 90 rows of 4 layers of 1024: about 96 GB of activations for a model of 0.4 GB, refused from the sizes.
  testing::WriteFile(dir / "long.txt", testing::WordText(15000));
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=long.txt", "--set",
                                    "model.hidden_size=1024", "--set", "model.num_layers=4", "--set",
                                    "train.batch_size=4096", "--set", "train.num_steps=90"}),
                   "train.batch_size 4096 x train.num_steps 90 = 368640 characters a step, whose activations need up to");
  CHECK(!fs::exists(dir / "run"));  // refused before out_dir is made
}

TEST_CASE("cli: an error quoting a 100,000-character prefix stays short") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  std::string prefix;
  for (int i = 0; i < 30000; ++i) prefix += "龙";
  const RunResult r = RunQuickly(dir, {"generate", "--checkpoint", "run/last.ckpt", "--prefix", prefix});
  CHECK_USER_ERROR(r, "prefix \"龙龙龙");
  CHECK_USER_ERROR(r, "\u2026\" has 1 character(s) outside the model's vocabulary: U+9F99");
  CHECK(testing::ErrorLine(r).size() < 1000);
}

// `charlm ARGS` with standard output on `target` (/dev/full: every write fails with ENOSPC); stderr is the output.
RunResult RunWithStdoutTo(const TempDir& dir, const std::string& target, const std::vector<std::string>& args) {
  std::string command = "cd " + ShellQuote(dir.path().string()) + " && " + ShellQuote(testing::CharlmBinary().string());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  command += " </dev/null 2>&1 >" + ShellQuote(target);
  RunResult result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (std::size_t count = 0; (count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, count);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

TEST_CASE("cli: every command whose standard output is a full device exits 1 saying so, never 0") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::vector<std::vector<std::string>> commands = {
      {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "20"},
      {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "100000"},  // past stdio's buffer
      {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--json"},
      {"eval", "--checkpoint", "run/best.ckpt", "--text", "text.txt"},
      {"vocab", "--corpus", "text.txt"},
      {"score", "--checkpoint", "run/best.ckpt", "--prefix", "the cat"},
      {"summary", "--config", "tiny.json"},
      {"baseline", "--corpus", "text.txt"},
      {"export", "--checkpoint", "run/best.ckpt", "--out", "model.safetensors"},
      {"report", "run"},
      {"train", "--config", "tiny.json", "--set", "train.out_dir=run2"},
  };
  for (const auto& args : commands) {
    std::string shown;
    for (const auto& arg : args) shown += arg + " ";
    CAPTURE(shown);
    const RunResult ok = RunWithStdoutTo(dir, "/dev/null", args);  // the same command succeeds when it can write
    CHECK_MESSAGE(ok.exit_code == 0, ok.output);
    CHECK_USER_ERROR(RunWithStdoutTo(dir, "/dev/full", args),
                     "charlm: error: standard output could not be written (No space left on device): the output is "
                     "incomplete");
  }
}

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Validation of a split nine times the training split's size: the run spends most of its time validating.
void WriteValidationHeavyRun(const TempDir& dir) {
  testing::WriteFile(dir / "text.txt", testing::WordText(2500));
  testing::WriteFile(dir / "val.json", R"({
  "data": {"corpus": "text.txt", "val_fraction": 0.9},
  "model": {"cell": "gru", "hidden_size": 256},
  "train": {"batch_size": 8, "num_steps": 16, "epochs": 1000, "patience": 0, "out_dir": "run", "threads": 1, "report": false},
  "generate": {"every": 0}
})");
}

TEST_CASE("cli: a signal during validation stops at once, says so at once, and the resume validates that epoch") {
  TempDir dir;
  WriteValidationHeavyRun(dir);
  testing::BackgroundRun run(dir, {"train", "--config", "val.json"});
  const auto start = Clock::now();
  REQUIRE_MESSAGE(testing::WaitFor([&] { return run.Log().find("epoch 1/1000") != std::string::npos; }, 60), run.Log());
  const double first_epoch = SecondsSince(start);  // start-up, a short epoch of training, a long validation
  REQUIRE_MESSAGE(testing::WaitFor([&] { return run.Log().find("epoch 2/1000") != std::string::npos; }, 60), run.Log());
  const double epoch = SecondsSince(start) - first_epoch;
  CAPTURE(epoch);
  REQUIRE(epoch > 0.4);  // long enough for "at once" to mean something
  std::this_thread::sleep_for(std::chrono::duration<double>(epoch / 3));  // inside epoch 3's validation
  run.Signal(SIGINT);
  const auto signalled = Clock::now();
  CHECK(run.Wait() == 130);
  const double stop_seconds = SecondsSince(signalled);
  const std::string log = run.Log();
  // Left alone, the validation would run for about two thirds of an epoch more; stopping (save included, which
  // took a third of an epoch on a loaded machine) must come well before that, and epoch 3 must never finish.
  CHECK_MESSAGE(stop_seconds < epoch * 0.6, stop_seconds, " s to stop, an epoch takes ", epoch, " s: ", log);
  CHECK_MESSAGE(log.find("charlm: SIGINT: stopping; last.ckpt is saved first") != std::string::npos, log);
  CHECK_MESSAGE(log.find("epoch 3/1000") == std::string::npos, log);  // epoch 3 was not finished
  // The checkpoint holds epoch 3's training but not its validation, which the resume does first.
  const CheckpointData saved = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(saved.trainer_state["epochs_completed"] == 2);
  const RunResult resumed = Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK_MESSAGE(resumed.output.find("epoch 3/3  train perplexity ") != std::string::npos, resumed.output);
  const std::string metrics = testing::ReadFile(dir / "run" / "metrics.jsonl");
  const std::size_t row = metrics.find("\"epoch\":3,");
  REQUIRE_MESSAGE(row != std::string::npos, metrics);
  CHECK(metrics.find("\"val_perplexity\":null", row) == std::string::npos);
  CHECK(LoadCheckpoint((dir / "run" / "last.ckpt").string()).trainer_state["global_step"] ==
        saved.trainer_state["global_step"]);  // no step was trained twice or skipped
}

TEST_CASE("cli: a signal during a long in-training sample stops at once, the epoch already saved") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  testing::BackgroundRun run(dir, {"train", "--config", "tiny.json", "--set", "train.epochs=1000", "--set",
                                   "generate.every=1", "--set", "generate.length=10000000", "--set",
                                   "generate.prefixes=[\"the\"]"});
  REQUIRE_MESSAGE(testing::WaitFor([&] { return run.Log().find("epoch 1/1000") != std::string::npos; }, 60), run.Log());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // sampling (10 million characters take seconds)
  run.Signal(SIGINT);
  const auto signalled = Clock::now();
  CHECK(run.Wait() == 130);
  const double stop_seconds = SecondsSince(signalled);
  CHECK_MESSAGE(stop_seconds < 2.0, stop_seconds, " s to stop: ", run.Log());
  CHECK(LoadCheckpoint((dir / "run" / "last.ckpt").string()).trainer_state["epochs_completed"] == 1);
  CHECK(testing::ReadFile(dir / "run" / "samples.jsonl").empty());  // no cut-short sample stands for epoch 1
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("cli: a run folder for a checkpoint, and a checkpoint and a safetensors file mixed up, name the right file") {
  TempDir dir;
  WriteTinyRun(dir);
  REQUIRE(Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "run", "--prefix", "the"}),
                   "run: not a regular file (a directory), so not a usable checkpoint: give a file in it, e.g. run/best.ckpt");
  CHECK_USER_ERROR(Run(dir, {"train", "--resume", "run"}), "give a file in it, e.g. run/best.ckpt");
  CHECK_USER_ERROR(Run(dir, {"import", "--safetensors", "run/last.ckpt", "--out", "x.ckpt"}),
                   "run/last.ckpt: this is a charlm checkpoint, not a safetensors file");
  REQUIRE(Run(dir, {"export", "--checkpoint", "run/best.ckpt", "--out", "m.safetensors"}).exit_code == 0);
  CHECK_USER_ERROR(Run(dir, {"generate", "--checkpoint", "m.safetensors", "--prefix", "the"}),
                   "m.safetensors: this is a safetensors file, not a charlm checkpoint: make a checkpoint of it with "
                   "charlm import --safetensors m.safetensors --out model.ckpt");
  CHECK_USER_ERROR(Run(dir, {"report", "run", "--out", "nothere/page.html"}),
                   "cannot write HTML page 'nothere/page.html': creating 'nothere/page.html.tmp.");
  CHECK_USER_ERROR(Run(dir, {"report", "run", "--out", "nothere/page.html"}),
                   ": No such file or directory; the folder nothere does not exist; create it, or give a path in an "
                   "existing folder");
}

}  // namespace
}  // namespace charlm
