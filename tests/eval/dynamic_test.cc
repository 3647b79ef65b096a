// Checks dynamic evaluation: no step equals static scoring, the step is the paper's rule computed by hand, a score
// depends only on the text before it, adapting helps on repeated text, and the trained model is never touched.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "eval/dynamic.h"
#include "eval/score.h"
#include "generate/generate.h"
#include "util/errors.h"
#include "util/rng.h"

namespace charlm {
namespace {

constexpr int kVocab = 12;

CharModel<float> SmallLstm(std::uint64_t seed) {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = kVocab;
  spec.embedding_size = 6;
  spec.hidden_size = 10;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, seed);
  return model;
}

std::vector<int> RandomIds(int length, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(static_cast<std::size_t>(length));
  for (int& id : ids) id = static_cast<int>(rng.Below(kVocab));
  return ids;
}

DynamicOptions Settings(int segment, double lr, double decay) {
  DynamicOptions options;
  options.segment = segment;
  options.lr = lr;
  options.decay = decay;
  return options;
}

TEST_CASE("dynamic evaluation: with no step and no decay it scores what static one-stream scoring scores") {
  const CharModel<float> model = SmallLstm(1);
  const std::vector<int> ids = RandomIds(301, 2);
  const TextScore fixed = ScoreIds(model, ids);
  const GradientStats stats = GatherGradientStats(model, RandomIds(200, 3), 7);
  for (const GradientStats* used : {static_cast<const GradientStats*>(nullptr), &stats}) {
    const DynamicResult result = EvaluateDynamic(model, ids, Settings(7, 0.0, 0.0), used);
    REQUIRE(result.log_probs.size() == fixed.log_probs.size());
    for (std::size_t k = 0; k < fixed.log_probs.size(); ++k) CHECK(result.log_probs[k] == doctest::Approx(fixed.log_probs[k]).epsilon(1e-6));
    CHECK(result.tokens == 300);
    CHECK(result.perplexity == doctest::Approx(fixed.perplexity).epsilon(1e-6));
    CHECK(result.bits_per_char == doctest::Approx(fixed.bits_per_char).epsilon(1e-6));
  }
}

TEST_CASE("dynamic evaluation: the second segment is scored by the weights one hand-computed step moved") {
  const CharModel<float> model = SmallLstm(4);
  const int segment = 9;
  const std::vector<int> ids = RandomIds(2 * segment + 1, 5);
  const GradientStats stats = GatherGradientStats(model, RandomIds(400, 6), segment);
  const double lr = 0.05, decay = 0.3;
  const DynamicResult result = EvaluateDynamic(model, ids, Settings(segment, lr, decay), &stats);
  REQUIRE(result.log_probs.size() == 2 * segment);

  // By hand: segment 0's gradient at the trained weights, the paper's step and decay, then segment 1 from the state
  // segment 0 ended in.
  CharModel<float> by_hand(model.spec());
  by_hand.params() = model.params();
  auto ws = by_hand.MakeWorkspace(segment, 1);
  auto state = by_hand.MakeState(1);
  state.Zero();
  by_hand.Forward(*ws, ids.data(), ids.data() + 1, segment, 1, state, {});
  by_hand.ZeroGrads();
  by_hand.Backward(*ws, nullptr);
  double mean_rms = 0;
  for (double r : stats.rms) mean_rms += r;
  mean_rms /= static_cast<double>(stats.rms.size());
  const std::size_t total = model.params().size();
  for (std::size_t i = 0; i < total; ++i) {
    const double g = by_hand.grads()[i];
    const double theta0 = model.params()[i];
    const double moved = theta0 - lr * g / std::max(stats.rms[i], kDynamicRmsFloor * mean_rms);
    const double rate = std::min(1.0, decay * stats.rms[i] / mean_rms);
    by_hand.params()[i] = static_cast<float>(moved + rate * (theta0 - moved));
  }
  by_hand.Forward(*ws, ids.data() + segment, ids.data() + segment + 1, segment, 1, state, {});
  const float* logits = WorkspaceLogits(*ws);
  std::vector<float> scratch(kVocab);
  bool moved_any = false;
  for (int t = 0; t < segment; ++t) {
    const float* row = logits + static_cast<std::size_t>(t) * kVocab;
    const double expected = row[ids[static_cast<std::size_t>(segment + t + 1)]] - LogSumExp(row, kVocab, scratch.data());
    CHECK(result.log_probs[static_cast<std::size_t>(segment + t)] == doctest::Approx(expected).epsilon(1e-5));
  }
  // The step is not a no-op on this case (else the check above could not fail).
  const TextScore fixed = ScoreIds(model, ids);
  for (int t = 0; t < segment; ++t) {
    moved_any |= std::abs(fixed.log_probs[static_cast<std::size_t>(segment + t)] -
                          result.log_probs[static_cast<std::size_t>(segment + t)]) > 1e-4;
  }
  CHECK(moved_any);
  // The first segment is scored by the trained weights.
  for (int t = 0; t < segment; ++t) {
    CHECK(result.log_probs[static_cast<std::size_t>(t)] == doctest::Approx(fixed.log_probs[static_cast<std::size_t>(t)]).epsilon(1e-6));
  }
}

TEST_CASE("dynamic evaluation: changing the text after position p leaves every score up to p unchanged") {
  const CharModel<float> model = SmallLstm(7);
  const GradientStats stats = GatherGradientStats(model, RandomIds(300, 8), 5);
  const std::vector<int> original = RandomIds(240, 9);
  for (const std::size_t p : {std::size_t{37}, std::size_t{100}, std::size_t{200}}) {  // mid-segment and at a boundary
    std::vector<int> changed = original;
    for (std::size_t j = p + 1; j < changed.size(); ++j) changed[j] = (changed[j] + 1 + static_cast<int>(j % 5)) % kVocab;
    for (const GradientStats* used : {static_cast<const GradientStats*>(nullptr), &stats}) {
      CAPTURE(p);
      const DynamicResult a = EvaluateDynamic(model, original, Settings(5, 0.05, 0.01), used);
      const DynamicResult b = EvaluateDynamic(model, changed, Settings(5, 0.05, 0.01), used);
      // log_probs[k] predicts ids[k + 1] from ids[0 .. k]: the first p of them read only unchanged text.
      for (std::size_t k = 0; k < p; ++k) REQUIRE(a.log_probs[k] == b.log_probs[k]);
      bool later_differ = false;
      for (std::size_t k = p; k < a.log_probs.size(); ++k) later_differ |= a.log_probs[k] != b.log_probs[k];
      CHECK(later_differ);
    }
  }
}

TEST_CASE("dynamic evaluation: on a text that repeats, adapting scores the repeats better than the fixed weights") {
  const CharModel<float> model = SmallLstm(10);
  const std::vector<int> line = RandomIds(60, 11);
  std::vector<int> ids;
  for (int r = 0; r < 8; ++r) ids.insert(ids.end(), line.begin(), line.end());
  const GradientStats stats = GatherGradientStats(model, RandomIds(600, 12), 10);
  const DynamicResult adapted = EvaluateDynamic(model, ids, Settings(10, 0.02, 0.001), &stats);
  const TextScore fixed = ScoreIds(model, ids);
  double adapted_late = 0, fixed_late = 0;  // the last repeat
  for (std::size_t k = ids.size() - 61; k < ids.size() - 1; ++k) {
    adapted_late -= adapted.log_probs[k];
    fixed_late -= fixed.log_probs[k];
  }
  CHECK(adapted_late < 0.8 * fixed_late);
  // The trained model is unchanged: a second run gives the same bits.
  const DynamicResult again = EvaluateDynamic(model, ids, Settings(10, 0.02, 0.001), &stats);
  CHECK(again.log_probs == adapted.log_probs);
}

TEST_CASE("dynamic evaluation: the statistics of one segment are its gradient's magnitudes") {
  const CharModel<float> model = SmallLstm(13);
  const std::vector<int> ids = RandomIds(9, 14);
  const GradientStats stats = GatherGradientStats(model, ids, 8);
  CHECK(stats.segments == 1);
  CHECK(stats.chars == 8);
  CharModel<float> copy(model.spec());
  copy.params() = model.params();
  auto ws = copy.MakeWorkspace(8, 1);
  auto state = copy.MakeState(1);
  state.Zero();
  copy.Forward(*ws, ids.data(), ids.data() + 1, 8, 1, state, {});
  copy.ZeroGrads();
  copy.Backward(*ws, nullptr);
  for (std::size_t i = 0; i < stats.rms.size(); ++i) CHECK(stats.rms[i] == doctest::Approx(std::abs(copy.grads()[i])));
}

// The statistics are gathered over streams side by side: the text's last transitions cut into kDynamicStatsStreams
// streams of whole segments, each read from a zero state with its state carried from segment to segment. Whatever
// the path (batched, or one stream after another for tied embeddings), they must be what this computes by hand at
// batch 1: per parameter, the root of the mean over every stream's segments of the squared gradient of the
// segment's mean loss.
TEST_CASE("dynamic evaluation: the statistics are the root mean square of every stream's segment gradients") {
  std::vector<ModelSpec> specs;
  ModelSpec lstm;  // an embedding (a dense layer 0 input, the embedding's scattered rows)
  lstm.cell = CellKind::kLstm;
  lstm.vocab_size = kVocab;
  lstm.embedding_size = 6;
  lstm.hidden_size = 10;
  specs.push_back(lstm);
  ModelSpec gru_after = lstm;  // one-hot input, two layers, the recurrent bias
  gru_after.cell = CellKind::kGru;
  gru_after.embedding_size = 0;
  gru_after.num_layers = 2;
  specs.push_back(gru_after);
  ModelSpec gru_before = gru_after;  // the reset gate's two products
  gru_before.reset_after = false;
  gru_before.num_layers = 1;
  specs.push_back(gru_before);
  ModelSpec rnn = lstm;
  rnn.cell = CellKind::kRnn;
  specs.push_back(rnn);
  ModelSpec tied = lstm;  // one stream after another (the embedding's two paths add before they are squared)
  tied.tie_embeddings = true;
  tied.embedding_size = tied.hidden_size;
  specs.push_back(tied);
  const int segment = 5;
  const int streams = kDynamicStatsStreams;
  const std::size_t length = 2 * segment;  // two segments per stream
  const std::vector<int> ids = RandomIds(static_cast<int>(streams * length + 21), 20);  // 20 oldest left over
  const std::size_t first = ids.size() - 1 - streams * length;
  for (std::size_t m = 0; m < specs.size(); ++m) {
    CAPTURE(m);
    CharModel<float> model(specs[m]);
    model.Initialize(InitScheme::kPytorch, 21 + m);
    const GradientStats stats = GatherGradientStats(model, ids, segment);
    CHECK(stats.segments == 2 * streams);
    CHECK(stats.chars == static_cast<std::int64_t>(streams * length));

    CharModel<float> by_hand(model.spec());
    by_hand.params() = model.params();
    auto ws = by_hand.MakeWorkspace(segment, 1);
    std::vector<double> sum_square(model.params().size(), 0.0);
    for (int s = 0; s < streams; ++s) {
      auto state = by_hand.MakeState(1);
      state.Zero();
      for (std::size_t start = first + s * length; start < first + (s + 1) * length; start += segment) {
        by_hand.Forward(*ws, ids.data() + start, ids.data() + start + 1, segment, 1, state, {});
        by_hand.ZeroGrads();
        by_hand.Backward(*ws, nullptr);
        for (std::size_t i = 0; i < sum_square.size(); ++i) sum_square[i] += static_cast<double>(by_hand.grads()[i]) * by_hand.grads()[i];
      }
    }
    REQUIRE(stats.rms.size() == sum_square.size());
    for (std::size_t i = 0; i < sum_square.size(); ++i) {
      CAPTURE(i);
      REQUIRE(stats.rms[i] == doctest::Approx(std::sqrt(sum_square[i] / (2.0 * streams))).epsilon(1e-4));
    }
  }
}

TEST_CASE("dynamic evaluation: a step that makes the adapted weights diverge is blamed on --dynamic-lr, not the weights") {
  const CharModel<float> model = SmallLstm(20);
  const std::vector<int> ids = RandomIds(400, 21);
  const GradientStats stats = GatherGradientStats(model, RandomIds(300, 22), 10);
  CHECK_NOTHROW(ScoreIds(model, ids));  // the trained weights are fine
  CHECK_THROWS_WITH_AS(EvaluateDynamic(model, ids, Settings(10, 1e6, 0.0), &stats),
                       doctest::Contains("dynamic evaluation diverged: the adapted weights give a loss out of range"),
                       UserError);
}

}  // namespace
}  // namespace charlm
