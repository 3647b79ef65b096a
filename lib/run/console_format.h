// How the training console prints durations and perplexities, shared by the handlers that print them.
#pragma once

#include <optional>
#include <string>

namespace charlm {

// "1h02m", "3m05s", "12s": a duration for an ETA.
std::string FormatDuration(double seconds);

// "324.371 (8.341 bpc)": bits per character beside every printed perplexity; "-" when there is none.
std::string FormatPerplexityAndBpc(std::optional<double> ppl);

}  // namespace charlm
