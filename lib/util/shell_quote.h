// Quoting for the shell commands charlm prints as hints.
#pragma once

#include <string>
#include <string_view>

namespace charlm {

// A word as it must be written in a POSIX shell command: unchanged when it holds only characters no shell treats
// specially, otherwise in single quotes, so the commands charlm suggests can be pasted as they are printed.
std::string ShellQuote(std::string_view word);

}  // namespace charlm
