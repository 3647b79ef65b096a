// What to say about a word a user mistyped: "did you mean ...?" for a name (config keys, command-line options and
// commands, :set options), and the one line for a numeric option's value that is not a number.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace charlm {

// The candidate closest to `typed` by edit distance (EditDistance), when it is close enough to be a typo of it:
// at most max(2, |typed| / 3) edits and fewer than |typed| (so "x" suggests nothing). Ties go to the earlier
// candidate; nullopt when none is close.
std::optional<std::string> NearestName(std::string_view typed, const std::vector<std::string>& candidates);

// The word of a command line that names an option: "--prefx=a" gives "--prefx", "-x" gives "-x", and a word not
// starting with '-' (a value, a positional argument) gives nullopt.
std::optional<std::string> OptionWord(std::string_view word);

// The error line for an option `command` does not have, with the nearest of its options (each as written on the
// command line, "--prefix", "-h"), e.g.
//   "generate has no option --prefx: did you mean --prefix? (charlm generate --help lists its options)"
std::string UnknownOptionMessage(std::string_view command, std::string_view typed, const std::vector<std::string>& options);

// The error line for a first word that is not one of `commands`, e.g.
//   "genrate is not a command: did you mean generate? (charlm --help lists the commands)"
std::string UnknownCommandMessage(std::string_view typed, const std::vector<std::string>& commands);

// What a numeric command-line option takes, from its declared type.
enum class NumberKind { kInteger, kNumber };

// The error line for a numeric option given a value that is not a number of its kind (CLI11 only says "Could not
// convert"): the option, the value, what it takes with the option's own description, and an example, e.g.
//   "--threads abc is not a whole number: eval --threads takes an integer (threads, 0 = all cores); e.g. --threads 1"
// An integer too large for the option's type is "out of range" instead. `example` is the value shown after
// "e.g." (the option's default when it has one); empty gives 1 for an integer and 0.5 for a number.
std::string BadNumberMessage(std::string_view command, std::string_view option, std::string_view value, NumberKind kind,
                             std::string_view meaning, std::string_view example = "");

}  // namespace charlm
