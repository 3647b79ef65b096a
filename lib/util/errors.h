// Error types: UserError is a mistake the user can fix (one-line message, non-zero exit); bugs are asserts.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

namespace charlm {

// A problem the user caused and can fix. The message is one line: the value, what was expected, the fix.
class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// Names what the code inside its scope allocates, and the fix if memory runs out, so that the out-of-memory
// message says what was being allocated. Left in place when the scope is left by an exception (std::bad_alloc on
// its way to main), restored to the enclosing scope's otherwise. One per thread.
// Given the scope's estimated peak (`estimated_bytes`, from the command's inputs, before it allocates), it first
// refuses up front, with the same words, what cannot fit in the memory this process may use (physical memory, or
// less under ulimit -v): a UserError "<what> would take about <bytes>, more than <available>: <fix>".
class AllocationScope {
 public:
  AllocationScope(std::string what, std::string fix, std::uint64_t estimated_bytes = 0);
  ~AllocationScope();
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;

  // "the model's parameters ...", or empty outside every scope; and its fix.
  static const std::string& What();
  static const std::string& Fix();

 private:
  std::string previous_what_, previous_fix_;
  int uncaught_at_start_;
};

}  // namespace charlm
