// Runs the charlm executable on hostile inputs and faults: FIFOs and endless devices, deep nesting, checkpoints whose
// CRC is valid but whose contents are not, a full stdout. Each case must end in one error line, never a hang or crash.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint.h"
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
                   "/dev/zero: not a regular file (a character device), so not a usable corpus file");
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

TEST_CASE("cli: model.num_layers 2147483647 is refused at once, before anything is allocated") {
  TempDir dir;
  WriteTinyRun(dir);
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "model.num_layers=2147483647"}),
                   "parameters, which with gradients and optimizer state need");
  CHECK_USER_ERROR(RunQuickly(dir, {"train", "--config", "tiny.json", "--set", "model.hidden_size=2147483647"}),
                   "parameters, which with gradients and optimizer state need");
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

}  // namespace
}  // namespace charlm
