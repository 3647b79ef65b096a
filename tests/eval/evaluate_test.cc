// Checks evaluation: a hand-computed case, every transition scored exactly once, full context equal to one stream
// on a trained model, tiny texts, texts shorter than the burn-in, the character limit and cancellation.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "eval/evaluate.h"
#include "eval/score.h"
#include "model/optimizer.h"
#include "util/errors.h"
#include "util/rng.h"

namespace charlm {
namespace {

EvalOptions Options(int streams, int num_steps, int burn_in) {
  EvalOptions o;
  o.streams = streams;
  o.num_steps = num_steps;
  o.burn_in = burn_in;
  return o;
}

// All weights zero except the output bias: every prediction is softmax(bias) whatever the history, so the loss of
// a transition depends on its target only.
CharModel<float> BiasOnlyModel(const std::vector<double>& probs) {
  ModelSpec spec;
  spec.cell = CellKind::kRnn;
  spec.vocab_size = static_cast<int>(probs.size());
  spec.hidden_size = 4;
  CharModel<float> model(spec);
  float* bias = model.param_tensors().output_b().data();
  for (std::size_t j = 0; j < probs.size(); ++j) bias[j] = static_cast<float>(std::log(probs[j]));
  return model;
}

TEST_CASE("evaluate: perplexity and bits per character equal a hand-computed case") {
  const CharModel<float> model = BiasOnlyModel({0.5, 0.25, 0.25});
  // Transitions predict 1, 0, 2, 0, 1: -ln p = ln4, ln2, ln4, ln2, ln4 -> mean = 8/5 ln2.
  const std::vector<int> ids{0, 1, 0, 2, 0, 1};
  for (int streams : {1, 2, 3}) {
    for (int steps : {1, 2, 5}) {
      for (int burn_in : {0, 1, 2, 300}) {
        const EvalResult r = Evaluate(model, ids, Options(streams, steps, burn_in));
        CHECK(r.tokens == 5);
        CHECK_FALSE(r.cancelled);
        CHECK(r.bits_per_char == doctest::Approx(1.6).epsilon(1e-6));
        CHECK(r.perplexity == doctest::Approx(std::pow(2.0, 1.6)).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("evaluate: weights that overflow float32 are an error naming their checkpoint, not a perplexity of nan") {
  // Issue 35: an imported model with weights of 3e38 (finite) gave "perplexity -nan" with exit 0.
  CharModel<float> model = BiasOnlyModel({0.5, 0.25, 0.25});
  for (float& p : model.params()) p = 3e38f;
  model.set_origin("huge.ckpt");
  const std::vector<int> ids{0, 1, 0, 2, 0, 1};
  CHECK_THROWS_WITH_AS(Evaluate(model, ids, Options(2, 2, 0)),
                       doctest::Contains("the weights of checkpoint huge.ckpt give a non-finite loss over the text"),
                       UserError);
  CHECK_THROWS_WITH_AS(ScoreIds(model, ids),
                       doctest::Contains("the weights of checkpoint huge.ckpt give a non-finite log-probability at "
                                         "character 1"),
                       UserError);
}

TEST_CASE("evaluate: finite weights whose perplexity overflows are an error naming their checkpoint, not inf") {
  // A hostile pass: every weight times 1e6 gave "perplexity inf" (JSON null) with exit 0 in eval and score.
  CharModel<float> model = BiasOnlyModel({0.5, 0.25, 0.25});
  for (float& p : model.params()) p *= 1e6f;
  model.set_origin("scaled.ckpt");
  const std::vector<int> ids{0, 1, 0, 2, 0, 1};
  CHECK_THROWS_WITH_AS(Evaluate(model, ids, Options(2, 2, 0)),
                       doctest::Contains("the weights of checkpoint scaled.ckpt give a loss of"), UserError);
  CHECK_THROWS_WITH_AS(ScoreIds(model, ids), doctest::Contains("whose perplexity (e to the loss) overflows"),
                       UserError);
}

TEST_CASE("evaluate: the plan scores every transition exactly once and warms each stream on the text before it") {
  for (std::int64_t n : {1, 2, 3, 7, 31, 100, 257, 1000, 5001}) {
    for (int streams : {1, 2, 5, 32}) {
      for (int burn_in : {0, 1, 16, 256, 2000}) {
        CAPTURE(n);
        CAPTURE(streams);
        CAPTURE(burn_in);
        const EvalPlan plan = PlanEvaluation(n, streams, burn_in);
        std::vector<int> times_scored(static_cast<std::size_t>(n), 0);
        REQUIRE(plan.streams >= 1);
        REQUIRE(plan.streams <= streams);
        for (int b = 0; b < plan.streams; ++b) {
          CHECK(plan.ScoredBegin(b) - plan.StreamStart(b) == (b == 0 ? 0 : plan.burn_in));  // warmed on what precedes
          CHECK(plan.ScoredEnd(b) - plan.StreamStart(b) == plan.run_length);
          for (std::int64_t k = plan.ScoredBegin(b); k < plan.ScoredEnd(b); ++k) ++times_scored[static_cast<std::size_t>(k)];
        }
        CHECK(n - plan.tail_start < plan.streams);
        for (std::int64_t k = plan.tail_start; k < n; ++k) ++times_scored[static_cast<std::size_t>(k)];
        CHECK(std::count(times_scored.begin(), times_scored.end(), 1) == n);
        if (plan.streams > 1) CHECK(plan.piece >= std::max(plan.burn_in, 1));  // warm-up at most doubles the work
      }
    }
  }
  CHECK(PlanEvaluation(10000, 32, 256).streams == 32);
  CHECK(PlanEvaluation(2000, 32, 256).streams == 6);  // (2000 - 256) / 256
  CHECK(PlanEvaluation(300, 32, 256).streams == 1);   // shorter than two burn-ins: one stream
}

TEST_CASE("evaluate: every transition counts once in the loss (bias-only model, distinct costs per target)") {
  // Costs ln(1/p) for p = 1/2 .. 1/64 are distinct, so a transition scored twice or skipped changes the sum.
  const std::vector<double> probs{0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.015625};
  const CharModel<float> model = BiasOnlyModel(probs);
  Rng rng(11);
  for (int length : {2, 3, 9, 40, 333, 1201}) {
    std::vector<int> ids;
    for (int k = 0; k < length; ++k) ids.push_back(static_cast<int>(rng.Below(static_cast<std::uint64_t>(probs.size()))));
    double expected = 0;
    for (int k = 1; k < length; ++k) expected -= std::log(probs[static_cast<std::size_t>(ids[k])]);
    for (int streams : {1, 3, 32}) {
      for (int burn_in : {0, 5, 64}) {
        for (int steps : {1, 7, 35}) {
          CAPTURE(length);
          CAPTURE(streams);
          CAPTURE(burn_in);
          CAPTURE(steps);
          const EvalResult r = Evaluate(model, ids, Options(streams, steps, burn_in));
          CHECK(r.tokens == length - 1);
          CHECK(r.mean_loss * static_cast<double>(r.tokens) == doctest::Approx(expected).epsilon(1e-6));
        }
      }
    }
  }
}

TEST_CASE("evaluate: texts of 0 and 1 characters predict nothing, 2 characters predict one") {
  const CharModel<float> model = BiasOnlyModel({0.5, 0.5});
  CHECK(Evaluate(model, std::vector<int>{}, EvalOptions{}).tokens == 0);
  CHECK(Evaluate(model, std::vector<int>{1}, EvalOptions{}).tokens == 0);
  const EvalResult two = Evaluate(model, std::vector<int>{0, 1}, EvalOptions{});
  CHECK(two.tokens == 1);
  CHECK(two.bits_per_char == doctest::Approx(1.0));
}

// Text with long-range structure: sentences of words from a small lexicon, so a trained model's predictions
// depend on what came well before (word boundaries, sentence starts).
std::vector<int> StructuredText(int length, int vocab, std::uint64_t seed) {
  const std::vector<std::string> words{"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away"};
  Rng rng(seed);
  std::string text;
  while (static_cast<int>(text.size()) < length) {
    const int n = 3 + static_cast<int>(rng.Below(5));
    for (int k = 0; k < n; ++k) text += words[rng.Below(words.size())] + (k + 1 < n ? " " : ". ");
  }
  std::vector<int> ids;
  for (int k = 0; k < length; ++k) {
    const char c = text[static_cast<std::size_t>(k)];
    ids.push_back(c == ' ' ? 0 : c == '.' ? 1 : 2 + (c - 'a') % (vocab - 2));
  }
  return ids;
}

TEST_CASE("evaluate: on a trained LSTM the streams with burn-in equal one stream within 0.1 %, zero-state streams do not, unsettled ones are re-run") {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 28;
  spec.embedding_size = 8;
  spec.hidden_size = 32;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 1);
  OptimizerConfig adam;
  adam.lr = 0.01;
  Optimizer optimizer(adam, model.params().size());
  const std::vector<int> train = StructuredText(20000, spec.vocab_size, 3);
  const int B = 16, T = 32;
  auto ws = model.MakeWorkspace(T, B);
  auto state = model.MakeState(B);
  std::vector<int> x(static_cast<std::size_t>(B) * T), y(x.size());
  const std::size_t stride = train.size() / B;
  float first_loss = 0, loss = 0;
  for (int step = 0; step < 250; ++step) {
    const std::size_t offset = static_cast<std::size_t>(step * T) % (stride - T - 1);
    if (offset < static_cast<std::size_t>(T)) state.Zero();
    for (int t = 0; t < T; ++t) {
      for (int b = 0; b < B; ++b) {
        x[static_cast<std::size_t>(t) * B + b] = train[b * stride + offset + t];
        y[static_cast<std::size_t>(t) * B + b] = train[b * stride + offset + t + 1];
      }
    }
    model.ZeroGrads();
    loss = model.Forward(*ws, x.data(), y.data(), T, B, state, {});
    if (step == 0) first_loss = loss;
    model.Backward(*ws, nullptr);
    optimizer.Step(model.params(), model.grads(), adam.lr, ClipScale(GlobalNorm(model.grads()), 1.0));
  }
  REQUIRE(loss < 0.6f * first_loss);  // it learned something

  const std::vector<int> held_out = StructuredText(6000, spec.vocab_size, 99);
  const EvalResult one = Evaluate(model, held_out, Options(1, 35, kDefaultBurnIn));
  for (int streams : {4, 16}) {
    const EvalResult many = Evaluate(model, held_out, Options(streams, 35, kDefaultBurnIn));
    CHECK(many.tokens == one.tokens);
    CHECK(std::abs(many.mean_loss / one.mean_loss - 1) < 1e-3);
  }
  // Without burn-in, 64 streams of ~94 characters each lose their context: measurably worse. This shows the
  // model uses context, so the check above could fail.
  const EvalResult cold = Evaluate(model, held_out, Options(64, 35, 0));
  CHECK(cold.mean_loss / one.mean_loss - 1 > 3e-3);
  // A one-character warm-up cannot reach the state the stream before ends in: every such stream is scored again
  // from that state, which chains the whole text into one stream's figure.
  const EvalResult chained = Evaluate(model, held_out, Options(64, 35, 1));
  CHECK(chained.rerun_streams == 63);
  CHECK(chained.tokens == one.tokens);
  CHECK(std::abs(chained.mean_loss / one.mean_loss - 1) < 1e-5);
  // Each re-run stops where it rejoins the first pass and takes that pass's loss from there: with pieces long
  // enough to rejoin in, far fewer characters are scored again than the pieces hold, and the figure stays one
  // stream's (a misplaced snapshot loss would move it by a chunk's loss per stream, far beyond 1e-5).
  const EvalResult rejoined = Evaluate(model, held_out, Options(8, 35, 1));
  const std::int64_t piece_chars = 7 * PlanEvaluation(static_cast<std::int64_t>(held_out.size()) - 1, 8, 1).piece;
  CAPTURE(rejoined.rerun_chars);
  CHECK(rejoined.rerun_streams == 7);
  CHECK(rejoined.rerun_chars > 0);
  CHECK(rejoined.rerun_chars < piece_chars / 2);
  CHECK(std::abs(rejoined.mean_loss / one.mean_loss - 1) < 1e-5);
  // With room for fewer snapshots they are spaced further apart: re-runs go on longer, the figure stays.
  const std::size_t state_floats = 8 * 2 * static_cast<std::size_t>(spec.hidden_size);  // (L=1, S=8, H): h and c
  for (const int room : {1, 3}) {
    EvalOptions sparse = Options(8, 35, 1);
    sparse.snapshot_bytes = static_cast<std::size_t>(room) * (state_floats * sizeof(float) + 8 * sizeof(double));
    const EvalResult spaced = Evaluate(model, held_out, sparse);
    CAPTURE(room);
    CAPTURE(spaced.rerun_chars);
    CHECK(spaced.rerun_streams == 7);
    CHECK(spaced.rerun_chars >= rejoined.rerun_chars);
    CHECK(spaced.rerun_chars <= piece_chars);
    if (room == 3) CHECK(spaced.rerun_chars < piece_chars);
    CHECK(std::abs(spaced.mean_loss / one.mean_loss - 1) < 1e-5);
  }
}

TEST_CASE("evaluate: max_chars scores the first transitions only, and the callback reports progress and can cancel") {
  const std::vector<double> probs{0.5, 0.25, 0.25};
  const CharModel<float> model = BiasOnlyModel(probs);
  std::vector<int> ids(1000, 0);
  for (std::size_t k = 500; k < ids.size(); ++k) ids[k] = 1;  // the second half costs ln 4 per character
  EvalOptions limited = Options(8, 35, 32);
  limited.max_chars = 499;  // transitions 0..498 all predict 0
  const EvalResult first = Evaluate(model, ids, limited);
  CHECK(first.tokens == 499);
  CHECK(first.bits_per_char == doctest::Approx(1.0));
  limited.max_chars = 5000;  // above the text: all of it
  CHECK(Evaluate(model, ids, limited).tokens == 999);

  EvalOptions watched = Options(8, 10, 32);
  std::vector<std::int64_t> seen;
  watched.progress = [&](std::int64_t done, std::int64_t total) {
    CHECK(total == 999);
    seen.push_back(done);
    return true;
  };
  const EvalResult all = Evaluate(model, ids, watched);
  CHECK_FALSE(all.cancelled);
  REQUIRE(seen.size() > 3);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(seen.back() == 999);

  watched.progress = [&](std::int64_t done, std::int64_t) { return done < 100; };
  const EvalResult stopped = Evaluate(model, ids, watched);
  CHECK(stopped.cancelled);
  CHECK(stopped.tokens >= 100);
  CHECK(stopped.tokens < 999);
  CHECK(std::isfinite(stopped.mean_loss));

  watched.progress = [](std::int64_t done, std::int64_t total) { return done < total; };  // false only at the end
  CHECK_FALSE(Evaluate(model, ids, watched).cancelled);
}

}  // namespace
}  // namespace charlm
