// "Did you mean ...?" for a name a user mistyped: config keys, command-line options and commands, :set options.
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

}  // namespace charlm
