// Perplexity and bits per character of a model on a sequence of ids.
#pragma once

#include <cstdint>
#include <span>

#include "model.h"

namespace charlm {

struct EvalResult {
  double mean_loss = 0;      // nats per predicted character
  double perplexity = 0;     // exp(mean_loss)
  double bits_per_char = 0;  // mean_loss / ln 2
  std::int64_t tokens = 0;   // predicted characters: ids.size() - 1
};

// Scores every transition ids[k] -> ids[k+1] exactly once, without dropout. The text is cut into `streams` contiguous
// pieces run side by side in chunks of num_steps with carried state (each piece starts from a zero state); the few
// transitions left over run at batch 1, continuing from the last piece's state.
EvalResult Evaluate(const CharModel<float>& model, std::span<const int> ids, int streams, int num_steps);

}  // namespace charlm
