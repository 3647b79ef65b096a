// Every command's --json prints only JSON on stdout, even on a corpus that makes charlm warn; logs go to stderr.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "test_util.h"
#include "util/shell_quote.h"

namespace charlm {
namespace {

using testing::RunResult;
using testing::TempDir;

TEST_CASE("json stdout: baseline, eval, generate and score print only JSON on stdout with a corpus that warns") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  // A form feed, as license texts have: the corpus warning every command that reads the corpus logs.
  testing::WriteFile(dir / "text.txt", testing::WordText(60) + "\f\n" + testing::WordText(10));
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::vector<std::vector<std::string>> commands = {
      {"baseline", "--config", "tiny.json", "--json"},
      {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json"},
      {"eval", "--checkpoint", "run/best.ckpt", "--text", "text.txt", "--json"},
      {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "5", "--json"},
      {"score", "--checkpoint", "run/best.ckpt", "--text", "text.txt", "--json"},
  };
  for (const auto& args : commands) {
    CAPTURE(args[0]);
    const RunResult result = testing::RunStdout(dir, args);
    REQUIRE_MESSAGE(result.exit_code == 0, result.output);
    CHECK_MESSAGE(nlohmann::json::accept(result.output), result.output);
    // The commands that read the corpus warn about it, on stderr.
    if (args[0] == "baseline" || (args[0] == "eval" && args[3] == "--split")) {
      CHECK(testing::ReadFile(dir / "stderr.txt").find("control character") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace charlm
