// Tests for lib/text/vocab_report and the `charlm vocab` subcommand run as a user would.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "util/errors.h"
#include "test_util.h"
#include "text/vocab_report.h"

namespace charlm {
namespace {

using testing::TempDir;

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

CommandResult RunCharlm(const std::string& arguments) {
  const std::string command = "'" + testing::CharlmBinary().string() + "' " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer;
  std::size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), read);
  const int status = pclose(pipe);
  return CommandResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string Quote(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

// "ab\nba\nc" (7 chars): '\n' 2, a 2, b 2, c 1 -> ids \n=0 a=1 b=2 c=3.
constexpr const char* kSmallText = "ab\nba\nc";

TEST_CASE("vocab_report: the report lists length, size, top characters and the first ids") {
  TempDir dir;
  testing::WriteFile(dir / "small.txt", kSmallText);
  VocabReportOptions options;
  options.data.corpus.paths = {(dir / "small.txt").string()};
  options.top = 2;
  std::ostringstream out;
  PrintVocabReport(options, out);
  const std::string report = out.str();
  CHECK(report.find("characters: 7\n") != std::string::npos);
  CHECK(report.find("vocabulary: 4\n") != std::string::npos);
  CHECK(report.find("  0 '\\n' 2\n  1 'a' 2\n") != std::string::npos);
  CHECK(report.find("'c'") == std::string::npos);  // only the top 2
  CHECK(report.find("chars: ab\\nba\\nc\n") != std::string::npos);
  CHECK(report.find("indices: [1, 2, 0, 2, 1, 0, 3]\n") != std::string::npos);

  options.data.newline = NewlinePolicy::kDrop;
  options.data.max_chars = 3;
  std::ostringstream dropped;
  PrintVocabReport(options, dropped);
  CHECK(dropped.str().find("characters: 3\n") != std::string::npos);
  CHECK(dropped.str().find("indices: [1, 0, 0]\n") != std::string::npos);  // "abb": b=0 (2), a=1 (1)

  options.top = -1;
  CHECK_THROWS_AS(PrintVocabReport(options, dropped), UserError);
}

TEST_CASE("vocab_report: `charlm vocab` prints the report and exits 0") {
  TempDir dir;
  testing::WriteFile(dir / "small.txt", kSmallText);
  const CommandResult result = RunCharlm("vocab --corpus " + Quote(dir / "small.txt") + " --newline space --top 1");
  CHECK(result.exit_code == 0);
  CHECK(result.output.find("characters: 7\n") != std::string::npos);
  CHECK(result.output.find("vocabulary: 4\n") != std::string::npos);  // ' ' a b c
  CHECK(result.output.find("chars: ab ba c\n") != std::string::npos);
}

TEST_CASE("vocab_report: `charlm vocab` fails with one error line for a missing file or a bad option") {
  TempDir dir;
  const auto missing = dir / "missing.txt";
  const CommandResult no_file = RunCharlm("vocab --corpus " + Quote(missing));
  CHECK(no_file.exit_code != 0);
  CHECK(no_file.output.find("charlm: error: ") == 0);
  CHECK(no_file.output.find(missing.string()) != std::string::npos);
  CHECK(no_file.output.find('\n') == no_file.output.size() - 1);

  testing::WriteFile(dir / "small.txt", kSmallText);
  const CommandResult bad_policy = RunCharlm("vocab --corpus " + Quote(dir / "small.txt") + " --newline spaces");
  CHECK(bad_policy.exit_code != 0);
  CHECK(bad_policy.output.find("charlm: error: --newline \"spaces\"") == 0);

  CHECK(RunCharlm("vocab").exit_code != 0);  // --corpus is required
}

TEST_CASE("vocab_report: the lyrics report gives the book's numbers") {
  const auto path = testing::LyricsPath();
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " is absent (scripts/setup.sh copies it)");
    return;
  }
  VocabReportOptions options;
  options.data.corpus.paths = {path.string()};
  options.data.newline = NewlinePolicy::kSpace;
  options.data.max_chars = 10000;
  std::ostringstream out;
  PrintVocabReport(options, out);
  CHECK(out.str().find("characters: 10000\n") != std::string::npos);
  CHECK(out.str().find("vocabulary: 1027\n") != std::string::npos);
  CHECK(out.str().find("top 10 characters") != std::string::npos);
}

}  // namespace
}  // namespace charlm
