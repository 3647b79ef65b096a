// Checks the Kneser-Ney baseline on tiny hand-checked texts: exact probabilities, sums to 1 for every context,
// non-zero for unseen characters, order 1 = the add-one unigram, and the limits on its order.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "util/errors.h"
#include "model/ngram.h"
#include "util/rng.h"

namespace charlm {
namespace {

// Every context of `length` ids over the vocabulary, as id lists.
std::vector<std::vector<int>> AllContexts(int vocab, int length) {
  std::vector<std::vector<int>> out{{}};
  for (int k = 0; k < length; ++k) {
    std::vector<std::vector<int>> longer;
    for (const auto& c : out) {
      for (int id = 0; id < vocab; ++id) {
        longer.push_back(c);
        longer.back().push_back(id);
      }
    }
    out = longer;
  }
  return out;
}

TEST_CASE("ngram: a bigram on \"abab\" gives the hand-computed Kneser-Ney probabilities") {
  // a = 0, b = 1, c = 2 (in the vocabulary, never in the text). Bigram counts ab:2, ba:1 -> D2 = n1/(n1+2n2) = 1/3.
  // Continuation counts: b:1 (after a), a:1 (after b) -> D1 = 1, P1(x) = (max(1-1, 0) + 1 * 2 * 1/3) / 2 = 1/3.
  // P(b|a) = (2 - 1/3 + 1/3 * 1 * 1/3) / 2 = 8/9, P(a|a) = P(c|a) = (1/9) / 2 = 1/18.
  // P(a|b) = (1 - 1/3 + 1/9) / 1 = 7/9, P(b|b) = P(c|b) = 1/9. An unseen context (c) backs off to P1 = 1/3.
  const std::vector<int> text{0, 1, 0, 1};
  const KneserNeyModel model(text, 3, 2);
  CHECK(model.Discount(2) == doctest::Approx(1.0 / 3));
  CHECK(model.Discount(1) == doctest::Approx(1.0));
  const std::vector<int> a{0}, b{1}, c{2};
  CHECK(model.Probability(a, 1) == doctest::Approx(8.0 / 9));
  CHECK(model.Probability(a, 0) == doctest::Approx(1.0 / 18));
  CHECK(model.Probability(a, 2) == doctest::Approx(1.0 / 18));
  CHECK(model.Probability(b, 0) == doctest::Approx(7.0 / 9));
  CHECK(model.Probability(b, 1) == doctest::Approx(1.0 / 9));
  CHECK(model.Probability(c, 0) == doctest::Approx(1.0 / 3));
  CHECK(model.Probability({}, 2) == doctest::Approx(1.0 / 3));
  // Scoring "ab" + "a" -> transitions a->b, b->a: -(ln 8/9 + ln 7/9) / 2.
  const NgramEvalResult r = EvaluateNgram(model, std::vector<int>{0, 1, 0});
  CHECK(r.tokens == 2);
  CHECK(r.mean_loss == doctest::Approx(-(std::log(8.0 / 9) + std::log(7.0 / 9)) / 2));
}

TEST_CASE("ngram: for every order and every context the probabilities sum to 1 and no character gets 0") {
  const int vocab = 5;  // id 4 never occurs in the text
  std::vector<int> text;
  Rng rng(7);
  for (int k = 0; k < 300; ++k) text.push_back(k % 7 == 0 ? 3 : static_cast<int>(rng.Below(3)));
  for (int order = 1; order <= 4; ++order) {
    const KneserNeyModel model(text, vocab, order);
    for (int length = 0; length < order; ++length) {
      for (const auto& context : AllContexts(vocab, length)) {
        double sum = 0;
        for (int next = 0; next < vocab; ++next) {
          const double p = model.Probability(context, next);
          CHECK(p > 0);
          sum += p;
        }
        CAPTURE(order);
        CAPTURE(length);
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("ngram: order 1 is the add-one unigram (c(w) + 1) / (N + V)") {
  const std::vector<int> text{0, 0, 0, 1, 2, 0, 1};  // counts 4, 2, 1, 0 over V = 4
  const KneserNeyModel model(text, 4, 1);
  const std::vector<int> context{1, 2};  // ignored at order 1
  CHECK(model.Probability(context, 0) == doctest::Approx(5.0 / 11));
  CHECK(model.Probability(context, 1) == doctest::Approx(3.0 / 11));
  CHECK(model.Probability(context, 2) == doctest::Approx(2.0 / 11));
  CHECK(model.Probability(context, 3) == doctest::Approx(1.0 / 11));
}

TEST_CASE("ngram: a higher order beats the unigram on structured text, and texts shorter than the order still work") {
  std::vector<int> text;
  for (int k = 0; k < 2000; ++k) text.push_back((k * k + k / 3) % 6);
  const std::vector<int> train(text.begin(), text.begin() + 1800), val(text.begin() + 1800, text.end());
  const double unigram = EvaluateNgram(KneserNeyModel(train, 6, 1), val).perplexity;
  const double trigram = EvaluateNgram(KneserNeyModel(train, 6, 3), val).perplexity;
  CHECK(trigram < 0.8 * unigram);
  const KneserNeyModel tiny(std::vector<int>{2}, 3, 4);  // no 4-gram at all: every level is empty, uniform
  CHECK(tiny.Probability(std::vector<int>{2, 2, 2}, 0) == doctest::Approx(1.0 / 3));
  CHECK(EvaluateNgram(tiny, std::vector<int>{1}).tokens == 0);
}

TEST_CASE("ngram: an order outside 1..10, or too high for a 128-bit key of the vocabulary's ids, is a UserError") {
  const std::vector<int> text{0, 1};
  CHECK_THROWS_WITH_AS(KneserNeyModel(text, 2, 0), doctest::Contains("--order 0 is out of range: expected 1 to 10"),
                       UserError);
  CHECK_THROWS_WITH_AS(KneserNeyModel(text, 2, 11), doctest::Contains("--order 11 is out of range"), UserError);
  // 2,000,000 ids need 21 bits: 6 of them fit 128 bits, 7 do not. Any Unicode vocabulary takes the default order.
  CHECK_NOTHROW(KneserNeyModel(text, 2000000, 6));
  CHECK_NOTHROW(KneserNeyModel(text, 0x110001, kDefaultNgramOrder));
  CHECK_THROWS_WITH_AS(KneserNeyModel(text, 2000000, 7), doctest::Contains("at most 6"), UserError);
}

}  // namespace
}  // namespace charlm
