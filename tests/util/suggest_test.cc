// Tests for lib/util/suggest: the nearest-name rule shared by config keys, :set options, command-line options and commands.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "util/suggest.h"

namespace charlm {
namespace {

TEST_CASE("suggest: the nearest name within a typo's distance, nothing for a word far from every name") {
  const std::vector<std::string> names = {"prefix", "prefix-file", "length", "temperature"};
  CHECK(NearestName("prefx", names) == std::optional<std::string>("prefix"));
  CHECK(NearestName("prefix-fle", names) == std::optional<std::string>("prefix-file"));
  CHECK(NearestName("tempreature", names) == std::optional<std::string>("temperature"));
  CHECK(NearestName("lenght", names) == std::optional<std::string>("length"));  // a swap is two edits
  CHECK(NearestName("bogus", names) == std::nullopt);
  CHECK(NearestName("x", names) == std::nullopt);  // one edit away from nothing useful: never all of the word
  CHECK(NearestName("prefix", {}) == std::nullopt);
  // Long words allow a third of their length: 3 edits in a 10-character word, not 4 in an 11-character one.
  CHECK(NearestName("tmpratureX", {"temperature"}) == std::optional<std::string>("temperature"));
  CHECK(NearestName("tmpratureXX", {"temperature"}) == std::nullopt);
}

TEST_CASE("suggest: an option word is the text before '=', and only words starting with '-' are options") {
  CHECK(OptionWord("--prefx=分开") == std::optional<std::string>("--prefx"));
  CHECK(OptionWord("--prefx") == std::optional<std::string>("--prefx"));
  CHECK(OptionWord("-x") == std::optional<std::string>("-x"));
  CHECK(OptionWord("分开") == std::nullopt);
  CHECK(OptionWord("-") == std::nullopt);  // standard input, as --prefix-file - says
  CHECK(OptionWord("--") == std::nullopt);
}

TEST_CASE("suggest: an unknown option names the command, the nearest option as written, and where the list is") {
  const std::vector<std::string> options = {"-h", "--help", "--checkpoint", "--prefix", "--prefix-file"};
  CHECK(UnknownOptionMessage("generate", "--prefx", options) ==
        "generate has no option --prefx: did you mean --prefix? (charlm generate --help lists its options)");
  CHECK(UnknownOptionMessage("generate", "-prefix", options) ==
        "generate has no option -prefix: did you mean --prefix? (charlm generate --help lists its options)");
  CHECK(UnknownOptionMessage("generate", "--bogus", options) ==
        "generate has no option --bogus (charlm generate --help lists its options)");
  CHECK(UnknownOptionMessage("generate", "--a\x1b", options).find("--a\\x1b") != std::string::npos);
  CHECK(UnknownCommandMessage("genrate", {"train", "generate", "eval"}) ==
        "genrate is not a command: did you mean generate? (charlm --help lists the commands)");
  CHECK(UnknownCommandMessage("xyzzy", {"train", "generate", "eval"}) ==
        "xyzzy is not a command (charlm --help lists the commands)");
}

TEST_CASE("suggest: a numeric option's non-number names the option, the value, what it takes and an example") {
  CHECK(BadNumberMessage("eval", "--threads", "abc", NumberKind::kInteger, "threads, 0 = all cores") ==
        "--threads abc is not a whole number: eval --threads takes an integer (threads, 0 = all cores); e.g. --threads 1");
  CHECK(BadNumberMessage("eval", "--threads", "2.5", NumberKind::kInteger, "") ==
        "--threads 2.5 is not a whole number: eval --threads takes an integer; e.g. --threads 1");
  CHECK(BadNumberMessage("baseline", "--order", "-99999999999", NumberKind::kInteger, "n-gram order", "5") ==
        "--order -99999999999 is out of range: baseline --order takes an integer (n-gram order); e.g. --order 5");
  CHECK(BadNumberMessage("generate", "--top-p", "", NumberKind::kNumber, "mass") ==
        "--top-p \"\" is not a number: generate --top-p takes a number (mass); e.g. --top-p 0.5");
  CHECK(BadNumberMessage("generate", "--top-p", "a\nb", NumberKind::kNumber, "").find("a\\nb") != std::string::npos);
}

}  // namespace
}  // namespace charlm
