// Tests for the helpers behind the subcommands' printed hints (lib/util/shell_quote.h).
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "util/shell_quote.h"

namespace charlm {
namespace {

// What /bin/sh makes of `printf %s WORD`: the word after the shell's own quote removal.
std::string ThroughShell(const std::string& word) {
  std::FILE* pipe = ::popen(("printf %s " + word).c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[256];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, count);
  ::pclose(pipe);
  return out;
}

TEST_CASE("commands: ShellQuote leaves plain words alone and quotes the rest so a shell gives them back") {
  CHECK(ShellQuote("runs/default/best.ckpt") == "runs/default/best.ckpt");
  CHECK(ShellQuote("train.epochs=20") == "train.epochs=20");
  CHECK(ShellQuote("分开") == "'分开'");
  CHECK(ShellQuote("my run/last.ckpt") == "'my run/last.ckpt'");
  CHECK(ShellQuote("it's") == "'it'\\''s'");
  CHECK(ShellQuote("") == "''");
  for (const std::string word : {"分开", "my run/last.ckpt", "it's", "$HOME `ls` \"x\" \\ *", "a\nb", "-n"}) {
    CHECK_MESSAGE(ThroughShell(ShellQuote(word)) == word, word);
  }
}

}  // namespace
}  // namespace charlm
