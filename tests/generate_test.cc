// Checks generation: determinism, greedy, top-k and top-p, and characters outside the vocabulary.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "errors.h"
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

}  // namespace
}  // namespace charlm
