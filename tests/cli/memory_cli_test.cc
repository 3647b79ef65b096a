// Runs the charlm executable under memory limits (ulimit -v): each command estimates its peak from its inputs and
// refuses up front naming its own option, an allocation failure is one error line (never an abort or a spin), and
// score's memory does not grow with the characters it prints.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
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
using testing::TempDir;

// The sanitizer build's charlm cannot start under `ulimit -v` (ASan maps terabytes of shadow address space) and
// its peak RSS is ASan's: these tests say so and return there; the release build runs them.
bool SkippedUnderSanitizer(const char* test) {
#ifdef CHARLM_SANITIZED_BUILD
  std::printf("SKIPPED: %s: the sanitizer build cannot run under ulimit -v nor measure charlm's own memory\n", test);
  return true;
#else
  (void)test;
  return false;
#endif
}

// `charlm ARGS` inside dir under `ulimit -v kilobytes`, stopped after `seconds` (exit 124 then).
RunResult RunLimited(const TempDir& dir, long kilobytes, const std::vector<std::string>& args, int seconds = 60) {
  std::string command = "cd " + ShellQuote(dir.path().string()) + " && ulimit -v " + std::to_string(kilobytes) +
                        " && timeout -s KILL " + std::to_string(seconds) + " " +
                        ShellQuote(testing::CharlmBinary().string());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  RunResult result = testing::RunShell("(" + command + " </dev/null 2>&1 >/dev/null); echo \"exit $?\"");
  // The subshell's own exit status is the echo's: read charlm's from the last line.
  const std::size_t at = result.output.rfind("exit ");
  REQUIRE(at != std::string::npos);
  result.exit_code = std::stoi(result.output.substr(at + 5));
  result.output.erase(at);
  return result;
}

// A trained tiny model as dir/model.ckpt.
void TrainTinyModel(const TempDir& dir) {
  testing::WriteTinyRun(dir);
  const RunResult trained = Run(dir, {"train", "--config", "tiny.json"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);
  fs::copy_file(dir / "run" / "best.ckpt", dir / "model.ckpt");
}

// The peak resident memory, in kB, of `charlm ARGS` run in dir with its standard output discarded.
long PeakKilobytes(const TempDir& dir, const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::chdir(dir.path().c_str()) != 0) ::_exit(127);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    testing::ExecCharlm(args);
  }
  int status = 0;
  struct rusage usage {};
  REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return usage.ru_maxrss;
}

TEST_CASE("cli: score streams its per-character output, so its memory does not grow with what it prints") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  TrainTinyModel(dir);
  testing::WriteFile(dir / "short.txt", testing::WordText(2'500));   // ~100,000 characters
  testing::WriteFile(dir / "long.txt", testing::WordText(25'000));   // ~1,000,000 characters
  for (const char* view : {"--json", "--tsv"}) {
    const long short_kb = PeakKilobytes(dir, {"score", "--checkpoint", "model.ckpt", "--text", "short.txt", view});
    const long long_kb = PeakKilobytes(dir, {"score", "--checkpoint", "model.ckpt", "--text", "long.txt", view});
    // The ids (2 bytes a character as read, 4 as scored) are all that grows: under 16 bytes a character, where
    // the JSON held whole took about 235.
    const double per_char = static_cast<double>(long_kb - short_kb) * 1024.0 / 900'000.0;
    CHECK_MESSAGE(per_char < 16, view << ": " << short_kb << " kB, then " << long_kb << " kB");
  }
}

TEST_CASE("cli: a text too large for score under ulimit -v is refused up front, naming the text and the fix") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  TrainTinyModel(dir);
  // A sparse file: 1 GB on paper, nothing on disk; the estimate (8 bytes a character) is checked before reading.
  {
    const int fd = ::open((dir / "huge.txt").c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 1'000'000'000) == 0);
    ::close(fd);
  }
  const RunResult result =
      RunLimited(dir, 2'000'000, {"score", "--checkpoint", "model.ckpt", "--text", "huge.txt", "--json"});
  CHECK_USER_ERROR(result, "the ids of text 'huge.txt' (1.0 GB) would take about 8.0 GB");
  CHECK(testing::ErrorLine(result).find("ulimit -v") != std::string::npos);
  CHECK(testing::ErrorLine(result).find("score it in parts") != std::string::npos);
}

TEST_CASE("cli: under tight memory limits score --json ends with one error line or its output, never an abort or a "
          "spin") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  TrainTinyModel(dir);
  testing::WriteFile(dir / "text.txt", testing::WordText(5'000));  // ~200,000 characters
  int refused = 0, scored = 0;
  // From limits where the program cannot even load its libraries up to ones where it scores: OpenBLAS's buffers
  // (128 MB of address space a thread) fail somewhere in between, where OpenBLAS used to retry for ever.
  for (long megabytes = 100; megabytes <= 600; megabytes += 50) {
    const RunResult result =
        RunLimited(dir, megabytes * 1000, {"score", "--checkpoint", "model.ckpt", "--text", "text.txt", "--json"}, 30);
    CAPTURE(megabytes);
    CAPTURE(result.output);
    if (result.output.find("error while loading shared libraries") != std::string::npos) continue;
    CHECK(result.exit_code != 124);  // timeout: a spin
    CHECK(result.exit_code != 137);
    CHECK(result.exit_code != 134);  // abort: std::bad_alloc escaping
    if (result.exit_code == 1) {
      CHECK(testing::ErrorLine(result).find("charlm: error: ") == 0);
      ++refused;
    } else {
      CHECK(result.exit_code == 0);
      ++scored;
    }
  }
  CHECK(refused > 0);
  CHECK(scored > 0);
}

TEST_CASE("cli: generate --length too large for memory is refused up front naming --length, and training's "
          "generate.length naming that key") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  TrainTinyModel(dir);
  const RunResult json = RunLimited(
      dir, 4'000'000, {"generate", "--checkpoint", "model.ckpt", "--prefix", "the", "--length", "2147483647", "--json"});
  CHECK_USER_ERROR(json, "the generation of --length 2147483647 characters as JSON");
  CHECK(testing::ErrorLine(json).find("give a smaller --length") != std::string::npos);
  const RunResult plain =
      RunLimited(dir, 4'000'000, {"generate", "--checkpoint", "model.ckpt", "--prefix", "the", "--length", "2147483647"});
  CHECK_USER_ERROR(plain, "give a smaller --length");
  const RunResult train = RunLimited(dir, 4'000'000,
                                     {"train", "--config", "tiny.json", "--set", "train.out_dir=run2", "--set",
                                      "generate.every=1", "--set", "generate.length=2147483647"});
  CHECK_USER_ERROR(train, "1 x generate.length 2147483647 characters");
  CHECK(testing::ErrorLine(train).find("give a smaller generate.length") != std::string::npos);
}

TEST_CASE("cli: baseline --order too large for memory is refused up front naming --order") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  // 1,000,000 characters drawn from 500: nearly every n-gram above 2 is new, the estimate's worst case.
  std::u32string text;
  std::uint32_t state = 7;
  for (int k = 0; k < 1'000'000; ++k) {
    state = state * 1664525U + 1013904223U;
    text += static_cast<char32_t>(0x4E00 + (state >> 16) % 500);
  }
  testing::WriteFile(dir / "wide.txt", EncodeUtf8(text));
  const RunResult result = RunLimited(dir, 1'000'000, {"baseline", "--corpus", "wide.txt", "--order", "10"});
  CHECK_USER_ERROR(result, "the Kneser-Ney model of --order 10");
  CHECK(testing::ErrorLine(result).find("lower --order") != std::string::npos);
  CHECK(testing::ErrorLine(result).find("train.") == std::string::npos);
}

TEST_CASE("cli: a decompression bomb without data.max_chars is refused from memory while it is read, in one line") {
  if (SkippedUnderSanitizer("memory cli test")) return;
  const TempDir dir;
  // 400 M characters that zstd packs into kilobytes: nothing before the stream says how long it is.
  const RunResult made = testing::RunShell("cd " + ShellQuote(dir.path().string()) +
                                           " && head -c 400000000 /dev/zero | tr '\\0' a | zstd -q -1 -o bomb.zst");
  REQUIRE_MESSAGE(made.exit_code == 0, made.output);
  REQUIRE(fs::file_size(dir / "bomb.zst") < 1'000'000);
  // Under 600 MB the ids of 400 M characters (800 MB) cannot fit in half of it: the reader stops at its budget.
  const RunResult result = RunLimited(dir, 600'000, {"vocab", "--corpus", "bomb.zst"});
  CHECK_USER_ERROR(result, "corpus 'bomb.zst' holds more than ");
  CHECK(testing::ErrorLine(result).find("--set data.max_chars=") != std::string::npos);
}

}  // namespace
}  // namespace charlm
