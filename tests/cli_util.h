// Helpers for the tests that run the charlm executable: running it in a folder, reading its one error line, the
// small corpora and configs they train on, and a run in the background that a test can signal.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "util/shell_quote.h"
#include "test_util.h"

namespace charlm::testing {

struct RunResult {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and collects its standard output and exit code.
inline RunResult RunShell(const std::string& command) {
  RunResult result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, count);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// Runs `charlm ARGS` inside dir, so the configs can name their files relatively, as a user's would.
inline RunResult Run(const TempDir& dir, const std::vector<std::string>& args) {
  std::string command = "cd " + ShellQuote(dir.path().string()) + " && " + ShellQuote(testing::CharlmBinary().string());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  return RunShell(command + " </dev/null 2>&1");
}

// Runs `charlm ARGS` inside dir with stdout alone in the result and stderr in dir/stderr.txt: what a script
// reading the output gets.
inline RunResult RunStdout(const TempDir& dir, const std::vector<std::string>& args) {
  std::string command = "cd " + ShellQuote(dir.path().string()) + " && " + ShellQuote(testing::CharlmBinary().string());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  return RunShell(command + " </dev/null 2>stderr.txt");
}

// The error a user sees: exactly one "charlm: error: " line, and it is the last line of the output.
inline std::string ErrorLine(const RunResult& result) {
  const std::string marker = "charlm: error: ";
  const std::size_t at = result.output.find(marker);
  if (at == std::string::npos) return "(no error line in: " + result.output + ")";
  if (result.output.find(marker, at + 1) != std::string::npos) return "(two error lines in: " + result.output + ")";
  std::string line = result.output.substr(at);
  if (line.ends_with('\n')) line.pop_back();
  if (line.find('\n') != std::string::npos) return "(error message is not one line, or not last: " + line + ")";
  return line;
}

// Words drawn by a fixed linear congruential generator: enough text to train on, identical on every run.
inline std::string WordText(int lines) {
  const char* words[] = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "away", "from", "home"};
  std::uint32_t state = 12345;
  std::string text;
  for (int line = 0; line < lines; ++line) {
    for (int w = 0; w < 8; ++w) {
      state = state * 1664525U + 1013904223U;
      text += words[(state >> 16) % 12];
      text += w == 7 ? '\n' : ' ';
    }
  }
  return text;
}

// A corpus of ~1,700 characters and a config that trains on it in milliseconds.
inline void WriteTinyRun(const TempDir& dir) {
  testing::WriteFile(dir / "text.txt", WordText(60));
  testing::WriteFile(dir / "tiny.json", R"({
  "data": {"corpus": "text.txt"},
  "model": {"cell": "gru", "hidden_size": 8},
  "train": {"batch_size": 4, "num_steps": 8, "epochs": 2, "out_dir": "run", "threads": 1},
  "generate": {"every": 0}
})");
}

// A user error: exit code 1 and the phrase in the one error line. A macro, so failures point at the calling line.
#define CHECK_USER_ERROR(result, phrase)                                    \
  do {                                                                      \
    const ::charlm::testing::RunResult& r_ = (result);                      \
    const std::string line_ = ::charlm::testing::ErrorLine(r_);             \
    CHECK_MESSAGE(r_.exit_code == 1, r_.output);                            \
    CHECK_MESSAGE(line_.find(phrase) != std::string::npos, line_);          \
  } while (false)

// In a forked child: replaces it with `LAUNCHER... charlm ARGS` (exit 127 if that fails); the launcher is a
// program that starts charlm, such as mpirun and its options, or nothing.
[[noreturn]] inline void ExecCharlm(const std::vector<std::string>& args,
                                    const std::vector<std::string>& launcher = {}) {
  const std::string binary = testing::CharlmBinary().string();
  std::vector<char*> argv;
  for (const std::string& arg : launcher) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// A training run in the background, output to a file, so the test can signal it while it works; with a launcher
// (mpirun -np 2), the signals go to the launcher.
class BackgroundRun {
 public:
  BackgroundRun(const TempDir& dir, const std::vector<std::string>& args,
                const std::vector<std::string>& launcher = {})
      : log_((dir / "train.log").string()) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::chdir(dir.path().c_str()) != 0) ::_exit(127);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ExecCharlm(args, launcher);
    }
  }
  ~BackgroundRun() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;

  void Signal(int signal_number) const { ::kill(pid_, signal_number); }
  pid_t pid() const { return pid_; }
  bool Running() const { return !reaped_ && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  // The exit code, or -1 when the process was killed by a signal (i.e. the handler did not run).
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // The same within `seconds`, or -2 when it still runs then (and is killed by the destructor).
  int Wait(double seconds);
  std::string Log() const { return testing::ReadFile(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Polls for up to `seconds`; the condition usually holds after a fraction of that.
template <typename Condition>
inline bool WaitFor(Condition condition, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

inline int BackgroundRun::Wait(double seconds) {
  int status = 0;
  if (!WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, seconds)) return -2;
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A run long enough never to end by itself within the test: its epochs take ~0.1 s, there are 100,000 of them, and
// no early stopping (the built-in patience would end it once validation stops improving).
inline void WriteLongRun(const TempDir& dir) {
  testing::WriteFile(dir / "text.txt", WordText(1000));
  testing::WriteFile(dir / "long.json", R"({
  "data": {"corpus": "text.txt"},
  "model": {"cell": "gru", "hidden_size": 32},
  "train": {"batch_size": 8, "num_steps": 16, "epochs": 100000, "patience": 0, "out_dir": "run", "threads": 1},
  "generate": {"every": 0}
})");
}

}  // namespace charlm::testing
