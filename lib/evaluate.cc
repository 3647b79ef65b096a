// Batched, state-carrying evaluation over a whole id sequence.
#include "evaluate.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace charlm {

EvalResult Evaluate(const CharModel<float>& model, std::span<const int> ids, int streams, int num_steps) {
  EvalResult result;
  const std::int64_t transitions = static_cast<std::int64_t>(ids.size()) - 1;
  if (transitions <= 0) return result;
  streams = static_cast<int>(std::clamp<std::int64_t>(streams, 1, transitions));
  const std::int64_t stream_len = transitions / streams;  // transitions per stream
  const int chunk = static_cast<int>(std::min<std::int64_t>(num_steps, stream_len));
  auto ws = model.MakeWorkspace(chunk, streams);
  auto state = model.MakeState(streams);
  std::vector<int> x(static_cast<std::size_t>(chunk) * streams), y(x.size());
  double loss_sum = 0;
  for (std::int64_t start = 0; start < stream_len; start += chunk) {
    const int steps = static_cast<int>(std::min<std::int64_t>(chunk, stream_len - start));
    for (int t = 0; t < steps; ++t) {
      for (int b = 0; b < streams; ++b) {
        const std::int64_t pos = b * stream_len + start + t;
        x[static_cast<std::size_t>(t) * streams + b] = ids[pos];
        y[static_cast<std::size_t>(t) * streams + b] = ids[pos + 1];
      }
    }
    loss_sum += static_cast<double>(model.Forward(*ws, x.data(), y.data(), steps, streams, state, {})) * steps * streams;
  }
  // The tail continues the last stream, so it starts from that stream's final state.
  const std::int64_t tail_start = streams * stream_len;
  if (tail_start < transitions) {
    auto tail_state = model.MakeState(1);
    const std::size_t h = static_cast<std::size_t>(state.hidden);
    for (int l = 0; l < state.num_layers; ++l) {
      std::copy_n(state.LayerH(l) + (streams - 1) * h, h, tail_state.LayerH(l));
      if (!state.c.empty()) std::copy_n(state.LayerC(l) + (streams - 1) * h, h, tail_state.LayerC(l));
    }
    const int steps = static_cast<int>(transitions - tail_start);
    auto tail_ws = model.MakeWorkspace(steps, 1);
    loss_sum += static_cast<double>(model.Forward(*tail_ws, ids.data() + tail_start, ids.data() + tail_start + 1, steps,
                                                  1, tail_state, {})) * steps;
  }
  result.tokens = transitions;
  result.mean_loss = loss_sum / static_cast<double>(transitions);
  result.perplexity = std::exp(result.mean_loss);
  result.bits_per_char = result.mean_loss / std::log(2.0);
  return result;
}

}  // namespace charlm
