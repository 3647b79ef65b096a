// Error types: UserError is a mistake the user can fix (one-line message, non-zero exit); bugs are asserts.
#pragma once

#include <stdexcept>
#include <string>

namespace charlm {

// A problem the user caused and can fix. The message is one line: the value, what was expected, the fix.
class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace charlm
