// The allocation scope behind the out-of-memory message.
#include "util/errors.h"

#include <utility>

namespace charlm {
namespace {

thread_local std::string g_what;
thread_local std::string g_fix;

}  // namespace

AllocationScope::AllocationScope(std::string what, std::string fix)
    : previous_what_(std::exchange(g_what, std::move(what))),
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
