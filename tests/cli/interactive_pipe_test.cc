// Drives `charlm generate --interactive` through real pipes, as a script would: each answer must arrive while stdin
// is still open (flushed per line), bad commands are one error line and the session goes on, end of input ends it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cli_util.h"

namespace charlm {
namespace {

using testing::TempDir;

// A child process whose stdin and stdout are pipes held by the test; stderr goes to a file.
class PipedProcess {
 public:
  PipedProcess(const TempDir& dir, const std::vector<std::string>& args) : err_path_((dir / "stderr.txt").string()) {
    int to_child[2], from_child[2];
    REQUIRE(::pipe(to_child) == 0);
    REQUIRE(::pipe(from_child) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err < 0 || ::chdir(dir.path().c_str()) != 0) ::_exit(127);
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      ::close(to_child[1]);
      ::close(from_child[0]);
      testing::ExecCharlm(args);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    stdin_ = to_child[1];
    stdout_ = from_child[0];
    ::signal(SIGPIPE, SIG_IGN);  // a child that died early must fail the test, not kill it
  }
  ~PipedProcess() {
    CloseStdin();
    if (stdout_ >= 0) ::close(stdout_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  PipedProcess(const PipedProcess&) = delete;
  PipedProcess& operator=(const PipedProcess&) = delete;

  bool WriteLine(const std::string& line) {
    const std::string data = line + "\n";
    return ::write(stdin_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  }
  void CloseStdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  // The next line of stdout without its newline, or nullopt when none arrives within `seconds`.
  std::optional<std::string> ReadLine(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      if (const std::size_t end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;  // end of output
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Stderr() const { return testing::ReadFile(err_path_); }

 private:
  std::string err_path_;
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  bool reaped_ = false;
  std::string buffer_;
};

TEST_CASE("interactive: through real pipes, each answer arrives before the next prefix is sent") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  const testing::RunResult trained = testing::Run(dir, {"train", "--config", "tiny.json"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);

  PipedProcess session(dir, {"generate", "--checkpoint", "run/last.ckpt", "--interactive", "--length", "12", "--seed",
                             "5"});
  // Greedy, so the answer to a repeated prefix can be compared exactly.
  REQUIRE(session.WriteLine(":set greedy=true"));
  REQUIRE(session.WriteLine("the cat"));
  const std::optional<std::string> first = session.ReadLine(30);
  REQUIRE_MESSAGE(first.has_value(), "no answer while stdin stayed open; stderr: " << session.Stderr());
  CHECK(first->starts_with("the cat"));
  CHECK(first->size() > std::string("the cat").size());

  REQUIRE(session.WriteLine(":set no-such-option=1"));  // one error line on stderr, and the session goes on
  REQUIRE(session.WriteLine("the dog"));
  const std::optional<std::string> second = session.ReadLine(30);
  REQUIRE_MESSAGE(second.has_value(), "the session did not go on after a bad command; stderr: " << session.Stderr());
  CHECK(second->starts_with("the dog"));

  REQUIRE(session.WriteLine("the cat"));
  const std::optional<std::string> again = session.ReadLine(30);
  REQUIRE(again.has_value());
  CHECK(*again == *first);

  session.CloseStdin();
  CHECK_FALSE(session.ReadLine(30).has_value());  // end of input ends the session: no more output, then EOF
  CHECK(session.Wait() == 1);  // one line was refused: the session went on, and its exit status says so
  const std::string err = session.Stderr();
  CHECK_MESSAGE(err.find("charlm: error: ") != std::string::npos, err);
  CHECK_MESSAGE(err.find("no-such-option") != std::string::npos, err);
}

}  // namespace
}  // namespace charlm
