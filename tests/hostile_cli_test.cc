// Runs the charlm executable on hostile inputs and faults: FIFOs and endless devices, deep nesting, checkpoints whose
// CRC is valid but whose contents are not, a full stdout. Each case must end in one error line, never a hang or crash.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace charlm
