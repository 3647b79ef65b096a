// Dynamic evaluation (Krause et al., ICML 2018): the model adapts its weights to the text it scores, in order,
// each segment scored before the weights take one RMS-normalized step on it and decay back toward the trained ones.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "text/token_ids.h"

namespace charlm {

// Defaults chosen on the tail of the training split of three checkpoints (docs/evaluation.md, "Dynamic
// evaluation"), never on a scored text.
inline constexpr int kDefaultDynamicSegment = 10;
inline constexpr double kDefaultDynamicLr = 2e-4;
inline constexpr double kDefaultDynamicDecay = 1e-3;
// Bounds the options take (each an error outside them): a segment is one batch-1 forward and backward, so past a
// few thousand characters it adapts too rarely to help and holds more activations than it needs.
inline constexpr int kMaxDynamicSegment = 10000;
inline constexpr double kMaxDynamicLr = 1.0;
inline constexpr double kMaxDynamicDecay = 1.0;
// Characters of the training split the gradient statistics are gathered from (its last ones): each costs a batch-1
// forward and backward, and the statistics settle well before (docs/evaluation.md).
inline constexpr std::int64_t kDynamicStatsChars = 50000;
// A parameter whose gradient statistic is below this fraction of the mean is normalized by the fraction instead:
// a character absent from the statistics' text would otherwise take a step of lr * g / ~0 when it first appears.
inline constexpr double kDynamicRmsFloor = 0.1;

// Per-parameter root mean square of the segment gradients (in the model's flat layout).
struct GradientStats {
  std::vector<double> rms;     // (layout total)
  std::int64_t segments = 0;   // segments the mean is over
  std::int64_t chars = 0;      // characters they scored
  std::string source;          // "training split" or "scored text" (said on stderr and in the JSON)
};

// Streams the statistics' text is cut into and read side by side (fewer on a text too short for each to have a
// segment). A power of two: a stream's share of the batch's gradient scales up to its own exactly.
inline constexpr int kDynamicStatsStreams = 32;

// The statistics of `ids` with the weights as trained: the mean over segments of each parameter's squared gradient
// of the segment's mean loss, each segment read from the state the one before it left. The transitions are cut
// into kDynamicStatsStreams streams of the same whole number of segments (the few left over are the oldest ones,
// dropped), each read from a zero state, side by side (docs/evaluation.md); one stream reads all of `ids`, its last
// segment maybe shorter. ids >= 2.
GradientStats GatherGradientStats(const CharModel<float>& model, IdView ids, int segment);

struct DynamicOptions {
  int segment = kDefaultDynamicSegment;  // characters scored, then adapted on, at a time
  double lr = kDefaultDynamicLr;         // step size of the RMS-normalized gradient step
  double decay = kDefaultDynamicDecay;   // pull toward the trained weights, scaled per parameter by its RMS
  // Called after every segment with the transitions scored so far and the number to score; false stops it.
  std::function<bool(std::int64_t done, std::int64_t total)> progress;
};

struct DynamicResult {
  std::vector<double> log_probs;  // (transitions): ln p(ids[k + 1] | ids[0 .. k]) under adaptation
  double loss_sum = 0;            // -sum of log_probs, nats
  std::int64_t tokens = 0;        // transitions scored
  double mean_loss = 0, perplexity = 0, bits_per_char = 0;
  bool cancelled = false;
};

// Scores every transition ids[k] -> ids[k + 1] once, as one stream from a zero state, dropout off. Segment s is
// scored with the weights adapted on segments 0 .. s - 1 only, so a character's score depends on the text before
// it alone. After scoring a segment the weights move by
//   theta -= lr * g / max(rms, kDynamicRmsFloor * mean(rms));  theta += min(1, decay * rms / mean(rms)) * (theta0 - theta)
// (the paper's RMS step and global decay prior), g the gradient of the segment's mean loss (truncated at the
// segment), rms from `stats`, or, with stats null, from the segments scored so far (the current one included: it
// is already scored). `trained` is never modified: the adaptation runs on a copy.
DynamicResult EvaluateDynamic(const CharModel<float>& trained, IdView ids, const DynamicOptions& options,
                              const GradientStats* stats);

}  // namespace charlm
