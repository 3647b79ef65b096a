// Checks evaluation: perplexity and bits per character against a hand-computed case, and stream batching.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "evaluate.h"
#include "rng.h"

namespace charlm {
namespace {

TEST_CASE("evaluate: perplexity and bits per character equal a hand-computed case") {
  // All weights zero except the output bias: every prediction is p = (1/2, 1/4, 1/4) whatever the history.
  ModelSpec spec;
  spec.cell = CellKind::kRnn;
  spec.vocab_size = 3;
  spec.hidden_size = 4;
  CharModel<float> model(spec);
  float* bias = model.Param("output.b");
  bias[0] = std::log(0.5f);
  bias[1] = std::log(0.25f);
  bias[2] = std::log(0.25f);
  // Transitions predict 1, 0, 2, 0, 1: -ln p = ln4, ln2, ln4, ln2, ln4 -> mean = 8/5 ln2.
  const std::vector<int> ids{0, 1, 0, 2, 0, 1};
  for (int streams : {1, 2, 3}) {
    for (int steps : {1, 2, 5}) {
      const EvalResult r = Evaluate(model, ids, streams, steps);
      CHECK(r.tokens == 5);
      CHECK(r.bits_per_char == doctest::Approx(1.6).epsilon(1e-6));
      CHECK(r.perplexity == doctest::Approx(std::pow(2.0, 1.6)).epsilon(1e-6));
    }
  }
}

TEST_CASE("evaluate: batching into streams scores every transition once (a carried-state model agrees with batch 1)") {
  ModelSpec spec;
  spec.cell = CellKind::kGru;
  spec.vocab_size = 9;
  spec.embedding_size = 4;
  spec.hidden_size = 8;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 3);
  std::vector<int> ids;
  Rng rng(5);
  for (int k = 0; k < 101; ++k) ids.push_back(static_cast<int>(rng.Below(spec.vocab_size)));
  const EvalResult one = Evaluate(model, ids, 1, 7);
  const EvalResult chunked = Evaluate(model, ids, 1, 100);
  CHECK(one.tokens == 100);
  CHECK(one.mean_loss == doctest::Approx(chunked.mean_loss).epsilon(1e-5));  // chunk size does not matter
  const EvalResult four = Evaluate(model, ids, 4, 7);
  CHECK(four.tokens == 100);
  CHECK(std::isfinite(four.mean_loss));
}

}  // namespace
}  // namespace charlm
