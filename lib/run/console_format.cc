// How the training console prints durations and perplexities.
#include "run/console_format.h"

#include <cmath>
#include <cstdio>

namespace charlm {

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto total = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", total / 3600, total / 60 % 60);
  } else if (total >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", total);
  }
  return buf;
}

std::string FormatPerplexityAndBpc(std::optional<double> ppl) {
  if (!ppl) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f (%.3f bpc)", *ppl, std::log2(*ppl));
  return buf;
}

}  // namespace charlm
