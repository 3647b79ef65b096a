// Checks generation (determinism, greedy, top-k, unknown characters) and evaluation against a hand-computed case.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "errors.h"
#include "evaluate.h"
#include "generate.h"
#include "rng.h"
#include "utf8.h"

namespace charlm {
namespace {

struct Fixture {
  Vocab vocab = Vocab::Build(U"分开不想你我的爱abc");
  CharModel<float> model;
  Fixture() : model(Spec(vocab.size())) { model.Initialize(InitScheme::kPytorch, 3); }
  static ModelSpec Spec(int v) {
    ModelSpec spec;
    spec.cell = CellKind::kGru;
    spec.vocab_size = v;
    spec.embedding_size = 4;
    spec.hidden_size = 8;
    return spec;
  }
};

TEST_CASE("generate: the same seed gives the same text, the prefix is kept, and the length is exact") {
  Fixture f;
  SamplingOptions options;
  options.length = 30;
  Rng a(7), b(7), c(8);
  const std::string first = GenerateText(f.model, f.vocab, "分开", options, a);
  CHECK(first == GenerateText(f.model, f.vocab, "分开", options, b));
  CHECK(first != GenerateText(f.model, f.vocab, "分开", options, c));
  CHECK(first.starts_with("分开"));
  CHECK(DecodeUtf8(first, "out").size() == 32);
}

TEST_CASE("generate: greedy is the argmax and top_k = 1 equals greedy whatever the seed") {
  Fixture f;
  SamplingOptions greedy;
  greedy.length = 20;
  greedy.greedy = true;
  SamplingOptions top1;
  top1.length = 20;
  top1.top_k = 1;
  Rng r1(1), r2(2);
  const std::string g = GenerateText(f.model, f.vocab, "我", greedy, r1);
  CHECK(g == GenerateText(f.model, f.vocab, "我", top1, r2));

  const std::vector<float> logits{0.1f, 2.0f, -1.0f, 1.9f};
  std::vector<double> probs(4);
  std::vector<int> order(4);
  Rng rng(0);
  CHECK(SampleNextId(logits.data(), 4, greedy, -1, rng, probs.data(), order.data()) == 1);
  CHECK(SampleNextId(logits.data(), 4, greedy, 1, rng, probs.data(), order.data()) == 3);  // <unk> is never drawn
  SamplingOptions nucleus;
  nucleus.top_p = 0.01;  // only the most probable survives
  for (int k = 0; k < 20; ++k) CHECK(SampleNextId(logits.data(), 4, nucleus, -1, rng, probs.data(), order.data()) == 1);
  SamplingOptions top2;
  top2.top_k = 2;
  for (int k = 0; k < 50; ++k) {
    const int id = SampleNextId(logits.data(), 4, top2, -1, rng, probs.data(), order.data());
    CHECK((id == 1 || id == 3));
  }
}

TEST_CASE("generate: characters outside the vocabulary are named, or skipped on request") {
  Fixture f;
  SamplingOptions options;
  options.length = 5;
  Rng rng(1);
  CHECK_THROWS_WITH_AS(GenerateText(f.model, f.vocab, "分开z", options, rng), doctest::Contains("U+007A"), UserError);
  const std::string skipped = GenerateText(f.model, f.vocab, "分开z", options, rng, UnknownPolicy::kSkip);
  CHECK(skipped.starts_with("分开"));
  CHECK_THROWS_AS(GenerateText(f.model, f.vocab, "zz", options, rng, UnknownPolicy::kSkip), UserError);
}

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
  Fixture f;
  std::vector<int> ids;
  Rng rng(5);
  for (int k = 0; k < 101; ++k) ids.push_back(static_cast<int>(rng.Below(f.vocab.size())));
  const EvalResult one = Evaluate(f.model, ids, 1, 7);
  const EvalResult chunked = Evaluate(f.model, ids, 1, 100);
  CHECK(one.tokens == 100);
  CHECK(one.mean_loss == doctest::Approx(chunked.mean_loss).epsilon(1e-5));  // chunk size does not matter
  const EvalResult four = Evaluate(f.model, ids, 4, 7);
  CHECK(four.tokens == 100);
  CHECK(std::isfinite(four.mean_loss));
}

}  // namespace
}  // namespace charlm
