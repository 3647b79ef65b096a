// Checks the n-gram mixture: a distribution over the vocabulary at every position (summing to 1), the scored
// log-probability is that distribution's at the target, and the weight follows which side predicts better.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "eval/mixture.h"
#include "eval/score.h"
#include "model/model.h"
#include "util/rng.h"

namespace charlm {
namespace {

constexpr int kVocab = 9;

std::vector<int> PatternedIds(int length, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids;
  while (static_cast<int>(ids.size()) < length) {
    // Short words from a few patterns, so the n-gram has contexts to count and some characters stay rare.
    const int pattern = static_cast<int>(rng.Below(4));
    for (int j = 0; j < 3 + pattern; ++j) ids.push_back((pattern * 2 + j) % (kVocab - 1));
    ids.push_back(kVocab - 1);
  }
  ids.resize(static_cast<std::size_t>(length));
  return ids;
}

TEST_CASE("mixture: sums to 1 over the vocabulary at every position, and scores its own value at the target") {
  ModelSpec spec;
  spec.cell = CellKind::kGru;
  spec.vocab_size = kVocab;
  spec.embedding_size = 5;
  spec.hidden_size = 7;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 3);
  const KneserNeyModel ngram(PatternedIds(3000, 1), kVocab, 5);
  const std::vector<int> ids = PatternedIds(120, 2);
  const TextScore net = ScoreIds(model, ids);
  const std::vector<double> ngram_probs = NgramTargetProbs(ngram, ids);
  REQUIRE(ngram_probs.size() == ids.size() - 1);

  auto ws = model.MakeWorkspace(1, 1);
  auto state = model.MakeState(1);
  state.Zero();
  std::vector<double> distribution(kVocab);
  for (const double weight : {0.0, 0.3, 0.99, 1.0}) {
    const std::vector<double> mixed = MixLogProbs(net.log_probs, ngram_probs, weight);
    state.Zero();
    for (std::size_t k = 0; k + 1 < ids.size(); ++k) {
      model.Forward(*ws, &ids[k], nullptr, 1, 1, state, {});
      MixedDistribution(WorkspaceLogits(*ws), ngram, std::span<const int>(ids.data(), k + 1), weight, distribution);
      double sum = 0;
      for (double p : distribution) {
        CHECK(p > 0);
        sum += p;
      }
      CAPTURE(weight);
      CAPTURE(k);
      REQUIRE(sum == doctest::Approx(1.0).epsilon(1e-9));
      CHECK(mixed[k] == doctest::Approx(std::log(distribution[static_cast<std::size_t>(ids[k + 1])])).epsilon(1e-5));
    }
  }
}

TEST_CASE("mixture: the weight goes to the side that predicts the tuning text") {
  const std::vector<double> sure = {std::log(0.9), std::log(0.9), std::log(0.9)};
  const std::vector<double> unsure = {std::log(0.01), std::log(0.01), std::log(0.01)};
  const std::vector<double> ngram_sure = {0.9, 0.9, 0.9};
  const std::vector<double> ngram_unsure = {0.01, 0.01, 0.01};
  CHECK(ChooseMixWeight(sure, ngram_unsure) == 0.0);
  CHECK(ChooseMixWeight(unsure, ngram_sure) == doctest::Approx(0.99));
  // Each side right on different characters: a real mixture wins.
  const std::vector<double> net = {std::log(0.9), std::log(0.01)};
  const std::vector<double> counts = {0.01, 0.9};
  const double weight = ChooseMixWeight(net, counts);
  CHECK(weight > 0.3);
  CHECK(weight < 0.7);
}

}  // namespace
}  // namespace charlm
