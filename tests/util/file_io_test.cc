// Tests of the safe file reader: regular files read whole, FIFOs and devices refused at once, sizes limited.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdlib>
#include <string>

#include "util/errors.h"
#include "util/file_io.h"
#include "test_util.h"

namespace charlm {
namespace {

using testing::TempDir;

FileRole TestRole(std::uint64_t max_bytes = 1000) {
  return FileRole{"test file", "check the path", max_bytes, "use a smaller file"};
}

std::string ErrorOf(const std::string& path, const FileRole& role) {
  try {
    ReadRegularFile(path, role);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs ReadRegularFile in a child with an alarm, so a reader that blocks fails the test instead of hanging it.
// Returns the child's exit code: 0 = refused with the expected message, 1 = another outcome, -1 = killed (hung).
int RefusedWithinSeconds(const std::string& path, const std::string& expected, unsigned seconds) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(seconds);
    const std::string error = ErrorOf(path, TestRole());
    ::_exit(error.find(expected) != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE("file_io: a regular file is read whole, byte for byte") {
  TempDir dir;
  std::string bytes;
  for (int i = 0; i < 300000; ++i) bytes.push_back(static_cast<char>(i * 7));  // several read() calls' worth
  testing::WriteFile(dir / "data.bin", bytes);
  CHECK(ReadRegularFile((dir / "data.bin").string(), TestRole(bytes.size())) == bytes);
  testing::WriteFile(dir / "empty.bin", "");
  CHECK(ReadRegularFile((dir / "empty.bin").string(), TestRole()).empty());
}

TEST_CASE("file_io: a missing file names the path, the reason and the fix") {
  TempDir dir;
  CHECK(ErrorOf((dir / "nope").string(), TestRole()) ==
        (dir / "nope").string() + ": cannot open test file: No such file or directory; check the path");
}

TEST_CASE("file_io: a FIFO without a writer is refused at once instead of blocking") {
  TempDir dir;
  const std::string fifo = (dir / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto start = std::chrono::steady_clock::now();
  CHECK(RefusedWithinSeconds(fifo, "fifo: not a regular file (a FIFO (named pipe)), so not a usable test file", 5) ==
        0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("file_io: endless devices and directories are refused before any byte is read") {
  TempDir dir;
  for (const char* device : {"/dev/zero", "/dev/urandom"}) {
    CAPTURE(device);
    CHECK(RefusedWithinSeconds(device, "not a regular file (a character device)", 5) == 0);
  }
  CHECK(ErrorOf(dir.path().string(), TestRole()).find("not a regular file (a directory)") != std::string::npos);
}

TEST_CASE("file_io: a file above the limit is refused with its size, the limit and the fix") {
  TempDir dir;
  testing::WriteFile(dir / "big.bin", std::string(1500, 'x'));
  CHECK(ErrorOf((dir / "big.bin").string(), TestRole(1000)) ==
        (dir / "big.bin").string() + ": test file is 1.5 kB, more than the 1.0 kB charlm reads: use a smaller file");
  testing::WriteFile(dir / "edge.bin", std::string(1000, 'x'));
  CHECK(ReadRegularFile((dir / "edge.bin").string(), TestRole(1000)).size() == 1000);
}

TEST_CASE("file_io: a stream is read up to its limit and refused beyond it") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], "hello", 5) == 5);
  ::close(fds[1]);
  CHECK(ReadStreamLimited(fds[0], "stdin", TestRole()) == "hello");
  ::close(fds[0]);

  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], "0123456789", 10) == 10);
  ::close(fds[1]);
  try {
    ReadStreamLimited(fds[0], "stdin", TestRole(4));
    FAIL("a stream above the limit was accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("stdin: test file is over 4 bytes") != std::string::npos);
  }
  ::close(fds[0]);
}

TEST_CASE("file_io: byte counts and file types read as a user would write them") {
  CHECK(FormatBytes(17) == "17 bytes");
  CHECK(FormatBytes(1500) == "1.5 kB");
  CHECK(FormatBytes(2'500'000'000ULL) == "2.5 GB");
  CHECK(DescribeFileType(S_IFIFO) == "a FIFO (named pipe)");
  CHECK(PhysicalMemoryBytes() > 0);
}

// The id of a process that has exited and been reaped: what a writer killed with SIGKILL leaves in its temp name.
long DeadProcessId() {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

std::string AtomicWriteErrorOf(const std::string& path) {
  try {
    WriteFileAtomically(path, "new", "test page");
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("file_io: an atomic write removes the temp files that killed writes of the same path left") {
  TempDir dir;
  const std::string target = (dir / "model.bin").string();
  const std::string dead = target + ".tmp." + std::to_string(DeadProcessId());
  const std::string live = target + ".tmp." + std::to_string(::getppid());  // a writer that still runs
  const std::string other = (dir / "other.bin").string() + ".tmp." + std::to_string(DeadProcessId());
  for (const std::string& path : {dead, live, other}) testing::WriteFile(path, "half a file");
  WriteFileAtomically(target, "whole file", "test file");
  CHECK(testing::ReadFile(target) == "whole file");
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(live));   // its writer may still rename it
  CHECK(std::filesystem::exists(other));  // another path's, removed when that path is written
  CHECK(AtomicTempFileOwner("model.bin.tmp.123") == 123);
  CHECK(AtomicTempFileOwner("model.bin.tmp.12x") == 0);
  CHECK(AtomicTempFileOwner(".tmp.5") == 0);
}

TEST_CASE("file_io: a failed atomic write names the error of the call that failed, and leaves no temp file") {
  TempDir dir;
  std::filesystem::create_directory(dir / "page.html");
  const std::string folder_error = AtomicWriteErrorOf((dir / "page.html").string());
  CHECK_MESSAGE(folder_error.find("cannot write test page '" + (dir / "page.html").string() + "': renaming '") !=
                    std::string::npos, folder_error);
  CHECK_MESSAGE(folder_error.find(": Is a directory; remove the folder at that path or give another path") !=
                    std::string::npos, folder_error);
  CHECK(folder_error.find("Success") == std::string::npos);
  const std::string missing_error = AtomicWriteErrorOf((dir / "nothere" / "page.html").string());
  CHECK_MESSAGE(missing_error.find(": No such file or directory; the folder " + (dir / "nothere").string() +
                                   " does not exist; create it") != std::string::npos,
                missing_error);
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);  // the folder alone: no temp file stayed
  // An injected failure mid-write fails as a full disk does, and the earlier file stays whole.
  const std::string target = (dir / "kept.txt").string();
  WriteFileAtomically(target, "old", "test file");
  try {
    WriteFileAtomically(target, "newer", "test file", 2);
    FAIL("the injected failure was not reported");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
  }
  CHECK(testing::ReadFile(target) == "old");
}

}  // namespace
}  // namespace charlm
