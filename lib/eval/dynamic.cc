// Dynamic evaluation: score a segment, take the RMS-normalized step on it, decay toward the trained weights.
#include "eval/dynamic.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>

#include "eval/evaluate.h"
#include "generate/generate.h"
#include "ops/column_threads.h"
#include "util/errors.h"

namespace charlm {

namespace {

// The batch-1 forward (with the softmax kept) and backward of one segment: after Run, grads() holds the gradient
// of the segment's mean loss added to what it held, the carried state has moved to the segment's end, and each
// transition's log-probability has been appended to the caller's list (when one is given).
//
// Its products run on charlm's own kernels (SplitGemm with threads): a segment's products have 1 row (each step's
// product with w_h, forward and backward) or a segment's rows (the output layer, a weight gradient's depth), where
// sgemm spent more time packing its operands (and its threads waiting) than multiplying. One thread: the products
// stream a weight matrix through the cache, and on a shared machine a second thread cost more than it gave.
class SegmentStep {
 public:
  SegmentStep(const CharModel<float>& model, int segment)
      : workspace_(model.MakeWorkspace(segment, 1)),
        state_(model.MakeState(1)),
        inputs_(static_cast<std::size_t>(segment)),
        targets_(static_cast<std::size_t>(segment)),
        scratch_(static_cast<std::size_t>(model.spec().vocab_size)) {
    state_.Zero();
    workspace_->threads = &threads_;
    for (RecurrentLayer<float>& layer : workspace_->layers) layer.set_threads(&threads_);
  }

  // Scores ids[start + t] -> ids[start + t + 1], t < steps, adding ln p of each to `log_probs`, then, when
  // `backward`, backpropagates (adding into grads(): the caller zeroes them as it reads them).
  void Run(CharModel<float>& model, IdView ids, std::size_t start, int steps, std::vector<double>* log_probs,
           bool backward) {
    ids.CopyTo(start, static_cast<std::size_t>(steps), inputs_.data());
    ids.CopyTo(start + 1, static_cast<std::size_t>(steps), targets_.data());
    ForwardMode mode;  // dropout off; the softmax kept for Backward
    mode.keep_probs = backward;
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
    // The state carried to the next segment is a value: the gradient stops at the segment's start (truncated BPTT).
    if (backward) model.Backward(*workspace_, nullptr);
  }

 private:
  ColumnThreads threads_{1};  // no workers: the products' own kernels on the caller
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

// sum_square += g^2 and g = 0, one pass: the gradient is ready for the next segment's Backward.
void AddSquaresAndClear(std::span<float> g, std::vector<double>& sum_square) {
  for (std::size_t i = 0; i < g.size(); ++i) {
    sum_square[i] += static_cast<double>(g[i]) * g[i];
    g[i] = 0.0f;
  }
}

GradientStats StatsOf(const std::vector<double>& sum_square, GradientStats stats) {
  stats.rms.resize(sum_square.size());
  for (std::size_t i = 0; i < sum_square.size(); ++i) {
    stats.rms[i] = std::sqrt(sum_square[i] / static_cast<double>(stats.segments));
  }
  return stats;
}

// How GatherGradientStats cuts its text: `streams` streams of `length` transitions each, stream s from transition
// first + s * length. Every stream the same whole number of segments; one stream: the whole text, its last segment
// maybe shorter.
struct StatsStreams {
  int streams = 1;
  std::size_t length = 0, first = 0;
};

StatsStreams CutIntoStreams(std::size_t transitions, int segment) {
  const auto seg = static_cast<std::size_t>(segment);
  StatsStreams cut;
  cut.streams = kDynamicStatsStreams;
  while (cut.streams > 1 && transitions < static_cast<std::size_t>(cut.streams) * seg) cut.streams /= 2;
  cut.length = cut.streams == 1 ? transitions : transitions / static_cast<std::size_t>(cut.streams) / seg * seg;
  cut.first = transitions - cut.length * static_cast<std::size_t>(cut.streams);  // the oldest, left over
  return cut;
}

// The streams one after another at batch 1, for what AddStreamGradientSquares does not take: tied embeddings (the
// embedding's gradient is the sum of the output and the input paths', which it would square apart) and bf16
// products.
GradientStats GatherStreamByStream(const CharModel<float>& trained, IdView ids, int segment, const StatsStreams& cut) {
  CharModel<float> model = CopyModel(trained);  // Backward writes grads(), which a const model does not offer
  std::vector<double> sum_square(model.layout().total(), 0.0);  // (P)
  GradientStats stats;
  model.ZeroGrads();
  for (int s = 0; s < cut.streams; ++s) {
    SegmentStep step(model, segment);  // a zero state
    const std::size_t begin = cut.first + static_cast<std::size_t>(s) * cut.length, end = begin + cut.length;
    for (std::size_t start = begin; start < end;) {
      const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(segment), end - start));
      step.Run(model, ids, start, steps, nullptr, true);
      AddSquaresAndClear(model.grads(), sum_square);
      ++stats.segments;
      stats.chars += steps;
      start += static_cast<std::size_t>(steps);
    }
  }
  return StatsOf(sum_square, stats);
}

}  // namespace

GradientStats GatherGradientStats(const CharModel<float>& trained, IdView ids, int segment) {
  assert(ids.size() >= 2 && segment >= 1);
  const StatsStreams cut = CutIntoStreams(ids.size() - 1, segment);
  if (trained.spec().tie_embeddings || trained.precision() == Precision::kBf16) {
    return GatherStreamByStream(trained, ids, segment, cut);
  }
  const int streams = cut.streams;
  const std::size_t length = cut.length, first = cut.first;
  CharModel<float> model = CopyModel(trained);
  auto workspace = model.MakeWorkspace(segment, streams);
  RecurrentState<float> state = model.MakeState(streams);  // (L, B, H): each stream's, carried across its segments
  state.Zero();
  std::vector<int> inputs(static_cast<std::size_t>(segment) * streams);   // (T*B), time-major
  std::vector<int> targets(static_cast<std::size_t>(segment) * streams);  // (T*B)
  std::vector<double> sum_square(model.layout().total(), 0.0);           // (P)
  GradientStats stats;
  for (std::size_t done = 0; done < length;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(segment), length - done));
    for (int t = 0; t < steps; ++t) {
      for (int s = 0; s < streams; ++s) {
        const std::size_t at = first + static_cast<std::size_t>(s) * length + done + static_cast<std::size_t>(t);
        inputs[static_cast<std::size_t>(t) * streams + s] = ids[at];
        targets[static_cast<std::size_t>(t) * streams + s] = ids[at + 1];
      }
    }
    model.Forward(*workspace, inputs.data(), targets.data(), steps, streams, state, ForwardMode{});
    model.Backward(*workspace, nullptr);  // grads() (the batch's sum) are not read: the streams' own shares are
    // The batch's loss is the mean over steps x streams, so a stream's share of its gradient is 1 / streams of its
    // own segment's mean loss's (a power of two: the scaling is exact).
    model.AddStreamGradientSquares(*workspace, static_cast<float>(streams), sum_square);
    stats.segments += streams;
    stats.chars += static_cast<std::int64_t>(steps) * streams;
    done += static_cast<std::size_t>(steps);
  }
  return StatsOf(sum_square, stats);
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
  model.ZeroGrads();
  const bool adapts = options.lr > 0 || options.decay > 0;
  for (std::size_t start = 0; start < transitions;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.segment), transitions - start));
    // After the last segment nothing is left to score with a step, and without one nothing needs the gradient.
    const bool steps_after = adapts && start + static_cast<std::size_t>(steps) < transitions;
    step.Run(model, ids, start, steps, &result.log_probs, steps_after);
    start += static_cast<std::size_t>(steps);
    if (steps_after) {
      const std::span<float> g = model.grads();
      if (stats == nullptr) {
        ++own_segments;
        for (std::size_t i = 0; i < total; ++i) {
          own_sum_square[i] += static_cast<double>(g[i]) * g[i];
          own_rms[i] = std::sqrt(own_sum_square[i] / static_cast<double>(own_segments));
        }
        set_factors(own_rms);
      }
      // The step, the decay and the gradient's reset for the next segment in one pass over the parameters.
      float* __restrict weights = theta.data();
      float* __restrict gradient = g.data();
      const float* __restrict trained_weights = theta0.data();
      const float* __restrict scale = step_scale.data();
      const float* __restrict rate = decay_rate.data();
      for (std::size_t i = 0; i < total; ++i) {
        const float moved = weights[i] - scale[i] * gradient[i];
        weights[i] = moved + rate[i] * (trained_weights[i] - moved);
        gradient[i] = 0.0f;
      }
    }
    if (options.progress && !options.progress(static_cast<std::int64_t>(start), static_cast<std::int64_t>(transitions))) {
      result.cancelled = true;
      break;
    }
  }
  const EvalResult figures = FiguresOf(result.log_probs);
  // The trained weights were checked by the static pass (eval scores it first): a loss out of range here is the
  // adaptation's, whose step is --dynamic-lr (a hostile pass saw the weights blamed for --dynamic-lr 1).
  if (!std::isfinite(figures.loss_sum) || !std::isfinite(std::exp(figures.mean_loss))) {
    char figures_text[160];
    std::snprintf(figures_text, sizeof figures_text, "%.4g nats per character) with --dynamic-lr %g: lower "
                  "--dynamic-lr (the default is %g)", figures.mean_loss, options.lr, kDefaultDynamicLr);
    throw UserError(std::string("dynamic evaluation diverged: the adapted weights give a loss out of range (") +
                    figures_text + ", or raise --dynamic-decay; if eval without --dynamic fails too, the checkpoint's "
                    "weights are to blame");
  }
  result.tokens = figures.tokens;
  result.loss_sum = figures.loss_sum;
  result.mean_loss = figures.mean_loss;
  result.perplexity = figures.perplexity;
  result.bits_per_char = figures.bits_per_char;
  return result;
}

}  // namespace charlm
