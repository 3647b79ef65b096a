// The allocation scope behind the out-of-memory message.
#include "util/errors.h"

#include <utility>

#include "util/file_io.h"

namespace charlm {
namespace {

thread_local std::string g_what;
thread_local std::string g_fix;

// The up-front refusal, before the scope is entered; returns `what` to be taken over.
std::string CheckEstimate(std::string what, const std::string& fix, std::uint64_t estimated_bytes) {
  if (estimated_bytes == 0) return what;
  const std::uint64_t available = AvailableMemoryBytes();
  if (available > 0 && estimated_bytes > available) {
    throw UserError(what + " would take about " + FormatBytes(estimated_bytes) + ", more than " +
                    DescribeAvailableMemory() + ": " + fix);
  }
  return what;
}

}  // namespace

AllocationScope::AllocationScope(std::string what, std::string fix, std::uint64_t estimated_bytes)
    : previous_what_(std::exchange(g_what, CheckEstimate(std::move(what), fix, estimated_bytes))),
      previous_fix_(std::exchange(g_fix, std::move(fix))),
      uncaught_at_start_(std::uncaught_exceptions()) {}

AllocationScope::~AllocationScope() {
  if (std::uncaught_exceptions() > uncaught_at_start_) return;  // unwinding: main reports this scope
  g_what = std::move(previous_what_);
  g_fix = std::move(previous_fix_);
}

const std::string& AllocationScope::What() { return g_what; }
const std::string& AllocationScope::Fix() { return g_fix; }

}  // namespace charlm
