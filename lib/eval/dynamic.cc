// Dynamic evaluation: score a segment, take the RMS-normalized step on it, decay toward the trained weights.
#include "eval/dynamic.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "eval/evaluate.h"
#include "generate/generate.h"

namespace charlm {

namespace {

// The batch-1 forward (with the softmax kept) and backward of one segment: after Run, grads() holds the gradient
// of the segment's mean loss, the carried state has moved to the segment's end, and each transition's
// log-probability has been appended to the caller's list (when one is given).
class SegmentStep {
 public:
  SegmentStep(const CharModel<float>& model, int segment)
      : workspace_(model.MakeWorkspace(segment, 1)),
        state_(model.MakeState(1)),
        inputs_(static_cast<std::size_t>(segment)),
        targets_(static_cast<std::size_t>(segment)),
        scratch_(static_cast<std::size_t>(model.spec().vocab_size)) {
    state_.Zero();
  }

  // Scores ids[start + t] -> ids[start + t + 1], t < steps, adding ln p of each to `log_probs`, then backpropagates.
  void Run(CharModel<float>& model, IdView ids, std::size_t start, int steps, std::vector<double>* log_probs) {
    ids.CopyTo(start, static_cast<std::size_t>(steps), inputs_.data());
    ids.CopyTo(start + 1, static_cast<std::size_t>(steps), targets_.data());
    ForwardMode mode;  // dropout off; the softmax kept for Backward
    model.Forward(*workspace_, inputs_.data(), targets_.data(), steps, 1, state_, mode);
    if (log_probs != nullptr) {
      // The same log-softmax, in double, as ScoreIds takes from the same logits.
      const int v = model.spec().vocab_size;
      const float* logits = WorkspaceLogits(*workspace_);  // (steps, V)
      for (int t = 0; t < steps; ++t) {
        const float* row = logits + static_cast<std::size_t>(t) * v;
        log_probs->push_back(static_cast<double>(row[targets_[static_cast<std::size_t>(t)]]) -
                             LogSumExp(row, v, scratch_.data()));
      }
    }
    model.ZeroGrads();
    // The state carried to the next segment is a value: the gradient stops at the segment's start (truncated BPTT).
    model.Backward(*workspace_, nullptr);
  }

 private:
  std::unique_ptr<Workspace<float>> workspace_;
  RecurrentState<float> state_;  // (L, 1, H): carried across segments
  std::vector<int> inputs_, targets_;  // (segment)
  std::vector<float> scratch_;         // (V)
};

// A copy of `trained` whose weights may change.
CharModel<float> CopyModel(const CharModel<float>& trained) {
  CharModel<float> copy(trained.spec());
  copy.params() = trained.params();
  copy.set_precision(trained.precision());
  return copy;
}

double Mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

}  // namespace

GradientStats GatherGradientStats(const CharModel<float>& trained, IdView ids, int segment) {
  assert(ids.size() >= 2 && segment >= 1);
  CharModel<float> model = CopyModel(trained);  // Backward writes grads(), which a const model does not offer
  const std::size_t total = model.layout().total();
  GradientStats stats;
  std::vector<double> sum_square(total, 0.0);  // (P)
  SegmentStep step(model, segment);
  const std::size_t transitions = ids.size() - 1;
  for (std::size_t start = 0; start < transitions;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(segment), transitions - start));
    step.Run(model, ids, start, steps, nullptr);
    const std::span<const float> g = model.grads();
    for (std::size_t i = 0; i < total; ++i) sum_square[i] += static_cast<double>(g[i]) * g[i];
    ++stats.segments;
    stats.chars += steps;
    start += static_cast<std::size_t>(steps);
  }
  stats.rms.resize(total);
  for (std::size_t i = 0; i < total; ++i) stats.rms[i] = std::sqrt(sum_square[i] / static_cast<double>(stats.segments));
  return stats;
}

DynamicResult EvaluateDynamic(const CharModel<float>& trained, IdView ids, const DynamicOptions& options,
                              const GradientStats* stats) {
  assert(ids.size() >= 2 && options.segment >= 1);
  CharModel<float> model = CopyModel(trained);
  const std::size_t total = model.layout().total();
  const std::vector<float>& theta0 = trained.params();  // (P): where the decay pulls back to
  std::vector<float>& theta = model.params();           // (P)
  assert(stats == nullptr || stats->rms.size() == total);
  // Without statistics from training text, the running mean of the squared gradients of the segments scored so far.
  std::vector<double> own_sum_square(stats == nullptr ? total : 0, 0.0);  // (P)
  std::vector<double> own_rms(stats == nullptr ? total : 0, 0.0);         // (P)
  std::int64_t own_segments = 0;
  // Fixed statistics give fixed per-parameter factors: 1 / denominator of the step, and the decay rate.
  // float: each segment streams them with the weights and the gradient, and their precision is not the step's limit.
  std::vector<float> step_scale(total), decay_rate(total);  // (P), (P)
  auto set_factors = [&](const std::vector<double>& rms) {
    const double mean = Mean(rms);
    const double floor = std::max(kDynamicRmsFloor * mean, 1e-30);
    for (std::size_t i = 0; i < total; ++i) {
      step_scale[i] = static_cast<float>(options.lr / std::max(rms[i], floor));
      decay_rate[i] = static_cast<float>(mean > 0 ? std::min(1.0, options.decay * rms[i] / mean) : std::min(1.0, options.decay));
    }
  };
  if (stats != nullptr) set_factors(stats->rms);

  DynamicResult result;
  const std::size_t transitions = ids.size() - 1;
  result.log_probs.reserve(transitions);
  SegmentStep step(model, options.segment);
  const bool adapts = options.lr > 0 || options.decay > 0;
  for (std::size_t start = 0; start < transitions;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.segment), transitions - start));
    step.Run(model, ids, start, steps, &result.log_probs);
    start += static_cast<std::size_t>(steps);
    if (adapts && start < transitions) {  // after the last segment nothing is left to score with the step
      const std::span<const float> g = model.grads();
      if (stats == nullptr) {
        ++own_segments;
        for (std::size_t i = 0; i < total; ++i) {
          own_sum_square[i] += static_cast<double>(g[i]) * g[i];
          own_rms[i] = std::sqrt(own_sum_square[i] / static_cast<double>(own_segments));
        }
        set_factors(own_rms);
      }
      for (std::size_t i = 0; i < total; ++i) {
        const float moved = theta[i] - step_scale[i] * g[i];
        theta[i] = moved + decay_rate[i] * (theta0[i] - moved);
      }
    }
    if (options.progress && !options.progress(static_cast<std::int64_t>(start), static_cast<std::int64_t>(transitions))) {
      result.cancelled = true;
      break;
    }
  }
  const EvalResult figures = FiguresOf(result.log_probs);
  CheckFiniteOutput(figures.loss_sum, trained.origin(), "loss over the text");
  result.tokens = figures.tokens;
  result.loss_sum = figures.loss_sum;
  result.mean_loss = figures.mean_loss;
  result.perplexity = figures.perplexity;
  result.bits_per_char = figures.bits_per_char;
  return result;
}

}  // namespace charlm
