// Sampling options at both ends of their ranges give the limit mathematics says (argmax, uniform, all, none),
// never NaN-driven garbage; a value past an end is a one-line error naming the range.
#include <doctest/doctest.h>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "util/errors.h"
#include "generate/generate.h"
#include "generate/generate_session.h"
#include "util/rng.h"

namespace charlm {
namespace {

// How often each id is drawn from logits in `draws` draws.
std::vector<int> Counts(const std::vector<float>& logits, const SamplingOptions& options, int draws,
                        int exclude_id = -1) {
  const int v = static_cast<int>(logits.size());
  std::vector<float> probs(static_cast<std::size_t>(v));
  std::vector<int> order(static_cast<std::size_t>(v));
  std::vector<int> counts(static_cast<std::size_t>(v));
  Rng rng(7);
  for (int i = 0; i < draws; ++i) {
    const int id = SampleNextId(logits.data(), v, options, exclude_id, rng, probs.data(), order.data());
    REQUIRE(id >= 0);
    REQUIRE(id < v);
    ++counts[static_cast<std::size_t>(id)];
  }
  return counts;
}

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, -4.0f, 2.999f};

TEST_CASE("temperature: the smallest positive double is the argmax, the largest finite one the uniform draw") {
  SamplingOptions cold;
  for (double t : {1e-300, 4.9e-324, 1e-40}) {
    CAPTURE(t);
    cold.temperature = t;
    CHECK(Counts(kLogits, cold, 1000) == std::vector<int>{0, 1000, 0, 0, 0});
  }
  SamplingOptions hot;
  hot.temperature = 1.7976931348623157e308;
  const std::vector<int> counts = Counts(kLogits, hot, 50000);
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);  // 1/5 each, within ~5 standard deviations
  hot.temperature = 0;
  CHECK_THROWS_AS(CheckSamplingOptions(hot, OptionStyle::kCommandLine), UserError);
}

TEST_CASE("top-k: 1 is the argmax and the largest int every id, top-p: the smallest positive is the argmax and 1 all") {
  SamplingOptions options;
  options.top_k = 1;
  CHECK(Counts(kLogits, options, 500) == std::vector<int>{0, 500, 0, 0, 0});
  options.top_k = INT_MAX;
  SamplingOptions whole = options;
  whole.top_k = static_cast<int>(kLogits.size());
  CHECK(Counts(kLogits, options, 5000) == Counts(kLogits, whole, 5000));  // the same sorted draws
  options = {};
  options.top_p = 4.9e-324;
  CHECK(Counts(kLogits, options, 500) == std::vector<int>{0, 500, 0, 0, 0});
  options.top_p = 1;
  std::vector<int> all = Counts(kLogits, options, 20000);
  CHECK(all[3] > 0);  // even the least likely id (p ~ 4e-4) is drawn
}

TEST_CASE("repetition penalty: at its ends it is the limit of dividing/multiplying the recent logits, not NaN") {
  const int v = static_cast<int>(kLogits.size());
  std::vector<float> adjusted(static_cast<std::size_t>(v));
  const std::vector<int> context = {0, 2, 3};  // recent: ids 0 (logit 1), 2 (logit 2), 3 (logit -4)
  SamplingOptions options;
  options.repetition_penalty = kMinRepetitionPenalty;  // recent positive logits x 1e6: the largest of them wins
  RepetitionControl low(options, v);
  low.Apply(kLogits.data(), context, -1, adjusted.data());
  for (float a : adjusted) CHECK(std::isfinite(a));
  CHECK(Counts(adjusted, {}, 1000) == std::vector<int>{0, 0, 1000, 0, 0});
  options.repetition_penalty = kMaxRepetitionPenalty;  // recent positive logits -> ~0, recent negative -> banned
  RepetitionControl high(options, v);
  high.Apply(kLogits.data(), context, -1, adjusted.data());
  for (float a : adjusted) CHECK(std::isfinite(a));
  CHECK(adjusted[0] == doctest::Approx(1e-6).epsilon(1e-3));
  CHECK(adjusted[3] == doctest::Approx(-4e6).epsilon(1e-6));
  const std::vector<int> counts = Counts(adjusted, {}, 20000);
  CHECK(counts[3] == 0);
  CHECK(counts[1] > counts[2]);  // ids 1 and 4 keep their logits (3, 2.999), id 2 drops to ~0
  for (double outside : {kMinRepetitionPenalty / 2, kMaxRepetitionPenalty * 2, 1e300}) {
    CAPTURE(outside);
    options.repetition_penalty = outside;
    CHECK_THROWS_WITH_AS(CheckSamplingOptions(options, OptionStyle::kCommandLine),
                         doctest::Contains("expected a number from 1e-06 to 1e+06"), UserError);
  }
}

TEST_CASE("length, beam, windows and n-grams at their ends are accepted or refused by the same one check") {
  SamplingOptions options;
  options.length = 0;
  options.beam = kMaxBeam;
  options.repetition_window = 1;
  options.no_repeat_ngram = 0;
  CHECK_NOTHROW(CheckSamplingOptions(options, OptionStyle::kCommandLine));
  options.repetition_window = INT_MAX;
  options.no_repeat_ngram = INT_MAX;
  options.length = INT_MAX;
  options.length_penalty = kMaxLengthPenalty;
  CHECK_NOTHROW(CheckSamplingOptions(options, OptionStyle::kCommandLine));
  options.length_penalty = 0;
  CHECK_NOTHROW(CheckSamplingOptions(options, OptionStyle::kCommandLine));
  for (auto change : std::vector<void (*)(SamplingOptions&)>{
           [](SamplingOptions& o) { o.length = -1; }, [](SamplingOptions& o) { o.beam = kMaxBeam + 1; },
           [](SamplingOptions& o) { o.beam = -1; }, [](SamplingOptions& o) { o.repetition_window = 0; },
           [](SamplingOptions& o) { o.no_repeat_ngram = -1; }, [](SamplingOptions& o) { o.top_p = 0; },
           [](SamplingOptions& o) { o.top_p = 1.0000001; }, [](SamplingOptions& o) { o.top_k = -1; },
           [](SamplingOptions& o) { o.length_penalty = -1e-300; },
           [](SamplingOptions& o) { o.length_penalty = kMaxLengthPenalty * (1 + 1e-15); },
           [](SamplingOptions& o) { o.length_penalty = 1e300; },  // length^P is infinite: every score -0
           [](SamplingOptions& o) { o.temperature = INFINITY; }, [](SamplingOptions& o) { o.temperature = NAN; }}) {
    SamplingOptions bad;
    change(bad);
    CHECK_THROWS_WITH_AS(CheckSamplingOptions(bad, OptionStyle::kCommandLine), doctest::Contains("is out of range"),
                         UserError);
  }
}

TEST_CASE("windows and n-grams at INT_MAX are the whole text and off, the limits of a window and an n-gram that long") {
  const int v = static_cast<int>(kLogits.size());
  const std::vector<int> context = {1, 4, 1, 2, 0, 1, 4};  // (1, 4) repeats; id 1 is the most recent repeat
  auto adjusted = [&](const SamplingOptions& options) {
    std::vector<float> out(static_cast<std::size_t>(v));
    RepetitionControl control(options, v);
    control.Apply(kLogits.data(), context, -1, out.data());
    return out;
  };
  SamplingOptions widest;
  widest.repetition_penalty = 2;
  widest.repetition_window = INT_MAX;
  SamplingOptions whole = widest;
  whole.repetition_window = static_cast<int>(context.size());
  CHECK(adjusted(widest) == adjusted(whole));
  CHECK(adjusted(widest)[3] == kLogits[3]);  // id 3 never occurs: untouched
  CHECK(adjusted(widest)[1] == doctest::Approx(kLogits[1] / 2));
  SamplingOptions longest;
  longest.no_repeat_ngram = INT_MAX;
  CHECK(adjusted(longest) == kLogits);  // no sequence of 2^31 - 1 characters can repeat in 7
  SamplingOptions pairs;
  pairs.no_repeat_ngram = 2;
  CHECK(adjusted(pairs)[1] == -INFINITY);  // "4 1" occurred: after the last 4, 1 is banned
}

TEST_CASE("whole-number options past int are refused naming the option's own range, not int's") {
  CHECK(NarrowIntOption("length", 2147483647, OptionStyle::kCommandLine) == 2147483647);
  CHECK(NarrowIntOption("beam", 0, OptionStyle::kCommandLine) == 0);
  CHECK(NarrowIntOption("beam", kMaxBeam, OptionStyle::kSession) == kMaxBeam);
  CHECK(NarrowIntOption("beam", 65, OptionStyle::kSession) == 65);  // within int: CheckSamplingOptions refuses it
  CHECK_THROWS_WITH_AS(NarrowIntOption("length", 2147483648LL, OptionStyle::kCommandLine),
                       "--length 2147483648 is out of range: expected an integer from 0 to 2147483647; e.g. --length 100",
                       UserError);
  CHECK_THROWS_WITH_AS(NarrowIntOption("beam", 99999999999LL, OptionStyle::kCommandLine),
                       "--beam 99999999999 is out of range: expected an integer from 0 to 64 (0 = no beam search); "
                       "e.g. --beam 4",
                       UserError);
  CHECK_THROWS_WITH_AS(NarrowIntOption("repetition-window", -3000000000LL, OptionStyle::kSession),
                       "repetition-window=-3000000000 is out of range: expected an integer from 1 to 2147483647 "
                       "(characters); e.g. :set repetition-window=32",
                       UserError);
  // Inside int, the message keeps the config's ">=" form for an option whose top is int's own.
  SamplingOptions negative;
  negative.top_k = -1;
  CHECK_THROWS_WITH_AS(CheckSamplingOptions(negative, OptionStyle::kCommandLine),
                       "--top-k -1 is out of range: expected an integer >= 0 (0 = all); e.g. --top-k 10", UserError);
  // A :set value past int64 or double is the nearest end of the type, which the same checks refuse.
  GenerateSettings settings;
  CHECK_THROWS_WITH_AS(SetSessionOption(settings, "length=99999999999999999999"),
                       doctest::Contains("is out of range: expected an integer from 0 to 2147483647"), UserError);
  CHECK_THROWS_WITH_AS(SetSessionOption(settings, "length-penalty=1e400"),
                       doctest::Contains("length-penalty=inf is out of range: expected a number from 0 to 10"),
                       UserError);
  CHECK_THROWS_WITH_AS(SetSessionOption(settings, "temperature=1e-400"),
                       doctest::Contains("temperature=0 is out of range: expected a number > 0"), UserError);
  SetSessionOption(settings, "length-penalty=10");
  CHECK(settings.options.length_penalty == 10);
}

}  // namespace
}  // namespace charlm
