// Checks beam search, repetition control, stop strings, log-probabilities, scoring and the interactive session on
// a model trained here for a few hundred steps.
#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "generate/beam_search.h"
#include "util/errors.h"
#include "eval/evaluate.h"
#include "generate/generate.h"
#include "generate/generate_session.h"
#include "model/optimizer.h"
#include "util/rng.h"
#include "eval/score.h"
#include "util/utf8.h"

namespace charlm {
namespace {

std::u32string Words(int lines) {
  const char* words[] = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "away", "from", "home"};
  std::uint32_t state = 777;
  std::string text;
  for (int line = 0; line < lines; ++line) {
    for (int w = 0; w < 6; ++w) {
      state = state * 1664525U + 1013904223U;
      text += words[(state >> 16) % 12];
      text += w == 5 ? '\n' : ' ';
    }
  }
  return DecodeUtf8(text, "words");
}

// A GRU trained with Adam for 300 steps on the word text: peaked, text-like distributions, unlike a fresh model's.
struct Trained {
  std::u32string text = Words(400);
  Vocab vocab = Vocab::Build(text);
  CharModel<float> model{Spec(vocab.size())};
  static ModelSpec Spec(int v) {
    ModelSpec spec;
    spec.cell = CellKind::kGru;
    spec.vocab_size = v;
    spec.embedding_size = 8;
    spec.hidden_size = 48;
    return spec;
  }
  Trained() {
    model.Initialize(InitScheme::kKeras, 1);
    const std::vector<int> ids = vocab.Encode(text);
    const int batch = 8, steps = 24;
    auto ws = model.MakeWorkspace(steps, batch);
    auto state = model.MakeState(batch);
    OptimizerConfig adam;
    adam.name = OptimizerKind::kAdam;
    Optimizer optimizer(adam, model.params().size());
    std::vector<int> x(static_cast<std::size_t>(batch) * steps), y(x.size());
    Rng rng(3);
    for (int step = 0; step < 300; ++step) {
      for (int b = 0; b < batch; ++b) {
        const std::size_t start = rng.Below(ids.size() - steps - 1);
        for (int t = 0; t < steps; ++t) {
          x[static_cast<std::size_t>(t) * batch + b] = ids[start + t];
          y[static_cast<std::size_t>(t) * batch + b] = ids[start + t + 1];
        }
      }
      state.Zero();
      model.ZeroGrads();
      model.Forward(*ws, x.data(), y.data(), steps, batch, state, {true, static_cast<std::uint64_t>(step)});
      model.Backward(*ws, nullptr);
      optimizer.Step(model.params(), model.grads(), 0.01, ClipScale(GlobalNorm(model.grads()), 1.0));
    }
  }
  std::vector<int> Ids(std::u32string_view s) const { return vocab.Encode(s); }
};

Trained& Model() {
  static Trained trained;
  return trained;
}

// ln p(text | prefix) by the scoring path: an independent computation of what Generate reports.
double Rescore(const Trained& m, std::u32string_view prefix, std::u32string_view text) {
  const TextScore s = ScoreIds(m.model, m.Ids(std::u32string(prefix) + std::u32string(text)));
  double sum = 0;
  for (std::size_t k = s.log_probs.size() - text.size(); k < s.log_probs.size(); ++k) sum += s.log_probs[k];
  return sum;
}

std::vector<Continuation> Run(const Trained& m, std::u32string_view prefix, const SamplingOptions& options,
                              std::uint64_t seed = 1) {
  Rng rng(seed);
  return Generate(m.model, m.vocab, m.Ids(prefix), options, rng, nullptr, true);
}

const std::vector<std::u32string>& Prefixes() {
  static const std::vector<std::u32string> prefixes = [] {
    std::vector<std::u32string> p;
    const std::u32string text = Words(60);
    for (int k = 0; k < 40; ++k) p.push_back(text.substr(static_cast<std::size_t>(k) * 37 % (text.size() - 12), 1 + k % 9));
    return p;
  }();
  return prefixes;
}

TEST_CASE("decode: the reported log-probabilities are the model's, as scoring computes them") {
  Trained& m = Model();
  SamplingOptions options;
  options.length = 40;
  for (bool greedy : {false, true}) {
    options.greedy = greedy;
    const Continuation c = Run(m, U"the ", options).front();
    REQUIRE(c.text.size() == 40);
    REQUIRE(c.log_probs.size() == 40);
    double sum = 0;
    for (double lp : c.log_probs) sum += lp;
    CHECK(c.log_prob == doctest::Approx(sum));
    CHECK(c.log_prob == doctest::Approx(Rescore(m, U"the ", c.text)).epsilon(1e-4));
  }
}

TEST_CASE("decode: a fixed seed gives the same output in every mode") {
  Trained& m = Model();
  SamplingOptions options;
  options.length = 60;
  options.repetition_penalty = 1.3;
  options.no_repeat_ngram = 5;
  options.stop = {U"dog"};
  CHECK(Run(m, U"a ", options, 9).front().text == Run(m, U"a ", options, 9).front().text);
  CHECK(Run(m, U"a ", options, 9).front().text != Run(m, U"a ", options, 10).front().text);
  options.beam = 3;
  const auto a = Run(m, U"a ", options, 9), b = Run(m, U"a ", options, 10);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].text == b[i].text);  // beam search draws nothing
}

TEST_CASE("decode: beam 1 is greedy decoding, text and log-probabilities") {
  Trained& m = Model();
  SamplingOptions greedy;
  greedy.length = 50;
  greedy.greedy = true;
  SamplingOptions beam1 = greedy;
  beam1.greedy = false;
  beam1.beam = 1;
  for (const std::u32string& prefix : Prefixes()) {
    CAPTURE(EncodeUtf8(prefix));
    const Continuation g = Run(m, prefix, greedy).front();
    const std::vector<Continuation> b = Run(m, prefix, beam1);
    REQUIRE(b.size() == 1);
    CHECK(EncodeUtf8(b.front().text) == EncodeUtf8(g.text));
    CHECK(b.front().log_prob == doctest::Approx(g.log_prob).epsilon(1e-5));
  }
}

TEST_CASE("decode: beam search finds continuations at least as likely as greedy's, best first, all distinct") {
  Trained& m = Model();
  SamplingOptions greedy;
  greedy.length = 40;
  greedy.greedy = true;
  SamplingOptions beam = greedy;
  beam.beam = 4;
  int better = 0;
  for (const std::u32string& prefix : Prefixes()) {
    CAPTURE(EncodeUtf8(prefix));
    const Continuation g = Run(m, prefix, greedy).front();
    const std::vector<Continuation> beams = Run(m, prefix, beam);
    REQUIRE(beams.size() == 4);
    // Both by the independent scoring path, so a wrong sum in either decoder would show.
    const double beam_lp = Rescore(m, prefix, beams.front().text), greedy_lp = Rescore(m, prefix, g.text);
    CHECK(beams.front().log_prob == doctest::Approx(beam_lp).epsilon(1e-4));
    CHECK(beam_lp >= greedy_lp - 1e-4);
    better += beam_lp > greedy_lp + 1e-3 ? 1 : 0;
    std::set<std::u32string> texts;
    for (std::size_t i = 0; i < beams.size(); ++i) {
      CHECK(beams[i].text.size() == 40);
      texts.insert(beams[i].text);
      if (i > 0) CHECK(beams[i - 1].score >= beams[i].score);
    }
    CHECK(texts.size() == beams.size());
  }
  MESSAGE("beam search beat greedy on " << better << " of " << Prefixes().size() << " prefixes");
  CHECK(better > 0);  // else this test could not tell a beam search from greedy decoding
}

TEST_CASE("decode: with stop strings the best beam's text and stop are at least as likely as greedy's") {
  Trained& m = Model();
  SamplingOptions greedy;
  greedy.length = 40;
  greedy.greedy = true;
  greedy.stop = {U"\n", U" "};
  SamplingOptions beam = greedy;
  beam.greedy = false;
  beam.beam = 4;
  beam.length_penalty = 0;  // ranking by the whole log-probability, the quantity compared here
  int stopped = 0;
  for (const std::u32string& prefix : Prefixes()) {
    CAPTURE(EncodeUtf8(prefix));
    const Continuation g = Run(m, prefix, greedy).front();
    const Continuation b = Run(m, prefix, beam).front();
    // stop_log_prob is the stop string's share: text and stop together score as the independent path scores them.
    for (const Continuation* c : {&g, &b}) {
      CHECK(c->log_prob + c->stop_log_prob ==
            doctest::Approx(Rescore(m, prefix, c->text + c->stopped_by)).epsilon(1e-4));
      CHECK((c->stopped_by.empty() ? c->stop_log_prob == 0 : c->stop_log_prob < 0));
    }
    stopped += g.stopped_by.empty() ? 0 : 1;
    CHECK(b.log_prob + b.stop_log_prob >= g.log_prob + g.stop_log_prob - 1e-4);
    CHECK(b.score == doctest::Approx(b.log_prob + b.stop_log_prob).epsilon(1e-6));
  }
  CHECK(stopped > 0);  // else the stop strings' share was never tested
}

TEST_CASE("decode: the repetition penalty divides positive logits and multiplies negative ones, once per character") {
  SamplingOptions options;
  options.repetition_penalty = 2;
  options.repetition_window = 3;
  RepetitionControl control(options, 4);
  const std::vector<float> logits{2.0f, -1.0f, 0.5f, 4.0f};
  std::vector<float> adjusted(4);
  const std::vector<int> context{3, 0, 1, 1};  // the window is the last 3: 0, 1, 1 (id 3 is outside it)
  control.Apply(logits.data(), context, -1, adjusted.data());
  CHECK(adjusted == std::vector<float>{1.0f, -2.0f, 0.5f, 4.0f});
}

TEST_CASE("decode: repetition penalty 1 changes nothing, above 1 it changes the text") {
  Trained& m = Model();
  SamplingOptions plain;
  plain.length = 80;
  SamplingOptions one = plain;
  one.repetition_penalty = 1.0;
  one.repetition_window = 5;
  SamplingOptions strong = plain;
  strong.repetition_penalty = 3.0;
  for (bool greedy : {false, true}) {
    plain.greedy = one.greedy = strong.greedy = greedy;
    const Continuation a = Run(m, U"the cat ", plain, 4).front();
    CHECK(EncodeUtf8(a.text) == EncodeUtf8(Run(m, U"the cat ", one, 4).front().text));
    CHECK(a.log_probs == Run(m, U"the cat ", one, 4).front().log_probs);
    CHECK(EncodeUtf8(a.text) != EncodeUtf8(Run(m, U"the cat ", strong, 4).front().text));
  }
}

TEST_CASE("decode: no-repeat-ngram leaves no repeated K-character sequence, in sampling and in beam search") {
  Trained& m = Model();
  for (int beam : {0, 3}) {
    SamplingOptions options;
    options.length = 120;
    options.greedy = true;  // greedy text repeats itself quickly without the ban
    options.no_repeat_ngram = 6;
    options.beam = beam;
    const std::u32string text = U"the " + Run(m, U"the ", options).front().text;
    std::set<std::u32string> seen;
    for (std::size_t i = 0; i + 6 <= text.size(); ++i) CHECK(seen.insert(text.substr(i, 6)).second);
    options.no_repeat_ngram = 0;
    const std::u32string unbanned = U"the " + Run(m, U"the ", options).front().text;
    seen.clear();
    bool repeats = false;
    for (std::size_t i = 0; i + 6 <= unbanned.size(); ++i) repeats = repeats || !seen.insert(unbanned.substr(i, 6)).second;
    CHECK(repeats);  // so the check above could fail
  }
}

TEST_CASE("decode: a stop string ends the text before it, one that never occurs changes nothing") {
  Trained& m = Model();
  SamplingOptions options;
  options.length = 200;
  const Continuation free_text = Run(m, U"a ", options, 5).front();
  SamplingOptions never = options;
  never.stop = {U"zzz", U"qq"};  // z and q are not in the vocabulary
  const Continuation same = Run(m, U"a ", never, 5).front();
  CHECK(EncodeUtf8(same.text) == EncodeUtf8(free_text.text));
  CHECK(same.stopped_by.empty());
  CHECK(same.text.size() == 200);

  SamplingOptions at_newline = options;
  at_newline.stop = {U"\n", U"dog"};
  const Continuation stopped = Run(m, U"a ", at_newline, 5).front();
  const std::size_t first = std::min(free_text.text.find(U'\n'), free_text.text.find(U"dog"));
  REQUIRE(first != std::u32string::npos);
  CHECK(EncodeUtf8(stopped.text) == EncodeUtf8(free_text.text.substr(0, first)));
  CHECK((stopped.stopped_by == U"\n" || stopped.stopped_by == U"dog"));
  CHECK(stopped.log_probs.size() == stopped.text.size());
  // Streamed, the held-back start of a stop string never shows.
  std::ostringstream out;
  Rng rng(5);
  Generate(m.model, m.vocab, m.Ids(U"a "), at_newline, rng, &out, false);
  CHECK(out.str() == "a " + EncodeUtf8(stopped.text));

  SamplingOptions beam = at_newline;
  beam.beam = 3;
  for (const Continuation& c : Run(m, U"a ", beam)) {
    CHECK(c.text.find(U'\n') == std::u32string::npos);
    CHECK(c.text.find(U"dog") == std::u32string::npos);
  }
}

TEST_CASE("decode: length penalty 0 and 10 (its ends) rank by log-probability / characters^P, as scoring computes it") {
  Trained& m = Model();
  SamplingOptions options;
  options.length = 30;
  options.beam = 4;
  options.stop = {U" ", U"\n"};  // the hypotheses end at different lengths, so P changes their order
  for (double penalty : {0.0, 1.0, kMaxLengthPenalty}) {
    CAPTURE(penalty);
    options.length_penalty = penalty;
    REQUIRE_NOTHROW(CheckSamplingOptions(options, OptionStyle::kCommandLine));
    const std::vector<Continuation> beams = Run(m, U"the cat ", options);
    REQUIRE(beams.size() == 4);
    for (std::size_t i = 0; i < beams.size(); ++i) {
      const Continuation& c = beams[i];
      const double characters = static_cast<double>(c.text.size() + c.stopped_by.size());
      const double log_prob = Rescore(m, U"the cat ", c.text + c.stopped_by);
      CHECK(std::isfinite(c.score));
      CHECK(c.score == doctest::Approx(log_prob / std::pow(characters, penalty)).epsilon(1e-4));
      if (i > 0) CHECK(beams[i - 1].score > beams[i].score);  // distinct hypotheses, never tied at -0
    }
  }
}

TEST_CASE("decode: a stop request ends beam search at once") {
  Trained& m = Model();
  SamplingOptions options;
  options.length = 50;
  options.beam = 3;
  int polls = 0;
  Rng rng(0);
  const auto beams = Generate(m.model, m.vocab, m.Ids(U"a"), options, rng, nullptr, true, [&] { return ++polls > 5; });
  REQUIRE(!beams.empty());
  CHECK(beams.front().interrupted);
  CHECK(beams.front().text.size() == 5);
}

TEST_CASE("score: the total is the sum of the characters and equals a one-stream evaluation's mean loss x count") {
  Trained& m = Model();
  const std::vector<int> ids = m.Ids(Words(30));
  const TextScore s = ScoreIds(m.model, ids, 100);  // chunks of 100 carry the state: the same as one pass
  REQUIRE(s.predicted() == static_cast<std::int64_t>(ids.size()) - 1);
  double sum = 0;
  for (double lp : s.log_probs) sum += lp;
  CHECK(s.log_prob == doctest::Approx(sum));
  EvalOptions one;
  one.streams = 1;
  const EvalResult one_stream = Evaluate(m.model, ids, one);
  CHECK(-s.log_prob == doctest::Approx(one_stream.mean_loss * static_cast<double>(one_stream.tokens)).epsilon(1e-4));
  CHECK(s.perplexity == doctest::Approx(one_stream.perplexity).epsilon(1e-4));
  CHECK(ScoreIds(m.model, ids, 7).log_prob == doctest::Approx(s.log_prob).epsilon(1e-5));
  // The JSON's surprisals add up to the total too.
  const auto j = nlohmann::json::parse(FormatScoreJson(s, m.vocab));
  double bits = 0;
  for (double b : j.at("surprisal_bits")) bits += b;
  CHECK(bits * std::log(2.0) == doctest::Approx(-s.log_prob));
  CHECK(j.at("chars").size() == ids.size() - 1);
  // TSV: a header and one row per predicted character.
  const std::string tsv = FormatScoreTsv(s, m.vocab);
  CHECK(std::count(tsv.begin(), tsv.end(), '\n') == static_cast<long>(ids.size()));
}

TEST_CASE("session: prefixes are answered line by line, :set changes options, bad commands are one line and it goes on") {
  Trained& m = Model();
  const AnswerSetup setup{m.model, m.vocab, NewlinePolicy::kKeep, UnknownPolicy::kError, false};
  GenerateSettings settings;
  settings.options.length = 10;
  settings.options.greedy = true;
  std::istringstream in("the\n:set tempreature=2\n:set length=x\n:set length=-3\n:bogus\n:set length=4\nthe\nz\n::\n:show\n\nthe\n");
  std::ostringstream out, err;
  const int refused = RunSession(setup, settings, in, out, err, false);
  CHECK(refused == 6);  // four bad commands, "z" and ":"
  std::istringstream answers(out.str());
  std::vector<std::string> lines;
  for (std::string line; std::getline(answers, line);) lines.push_back(line);
  // Greedy on "the": 10 then 4 characters; "z" is refused (an empty answer line); "::" is the prefix ":", which
  // the vocabulary lacks too. The line after the empty one is never read.
  REQUIRE(lines.size() >= 4);
  CHECK(DecodeUtf8(lines[0], "a").size() >= 3);
  const std::string errors = err.str();
  CHECK(errors.find("charlm: error: :set tempreature: unknown option, did you mean temperature?") != std::string::npos);
  CHECK(errors.find("charlm: error: length=x is not a whole number: e.g. :set length=100") != std::string::npos);
  CHECK(errors.find("charlm: error: length=-3 is out of range: expected an integer >= 0; e.g. :set length=100") !=
        std::string::npos);
  CHECK(errors.find("charlm: error: unknown command :bogus") != std::string::npos);
  CHECK(errors.find("prefix \"z\" has 1 character(s) outside") != std::string::npos);
  CHECK(errors.find("length=4 temperature=1") != std::string::npos);  // :show
  CHECK(settings.options.length == 4);
  CHECK(settings.seed == 4);  // four prefix lines
  // Each error is one line.
  CHECK(std::count(errors.begin(), errors.end(), '\n') == 7);  // six errors and :show
}

TEST_CASE("session: JSON answers carry the text, log-probabilities, options and seed, and a refused prefix its error") {
  Trained& m = Model();
  const AnswerSetup setup{m.model, m.vocab, NewlinePolicy::kKeep, UnknownPolicy::kError, true};
  GenerateSettings settings;
  settings.options.length = 12;
  settings.seed = 41;
  std::istringstream in(":set beam=2\nthe\nqq\n");
  std::ostringstream out, err;
  RunSession(setup, settings, in, out, err, false);
  std::istringstream answers(out.str());
  std::string line;
  REQUIRE(std::getline(answers, line));
  const auto j = nlohmann::json::parse(line);
  CHECK(j.at("prefix") == "the");
  CHECK(DecodeUtf8(j.at("text").get<std::string>(), "t").size() == 12);
  CHECK(j.at("log_probs").size() == 12);
  CHECK(j.at("seed") == 41);
  CHECK(j.at("options").at("beam") == 2);
  CHECK(j.at("beams").size() == 2);
  CHECK(j.at("beams")[0].at("text") == j.at("text"));
  REQUIRE(std::getline(answers, line));
  const auto refused = nlohmann::json::parse(line);
  CHECK(refused.at("prefix") == "qq");
  CHECK(refused.at("error").get<std::string>().find("outside the model's vocabulary") != std::string::npos);
}

TEST_CASE("session: stop strings take the escapes \\n, \\t, \\r and \\\\, and refuse others") {
  CHECK(ParseStopString("\\n", OptionStyle::kCommandLine) == U"\n");
  CHECK(ParseStopString("a\\\\b\\t", OptionStyle::kCommandLine) == U"a\\b\t");
  CHECK(ParseStopString("。", OptionStyle::kCommandLine) == U"。");
  CHECK_THROWS_WITH_AS(ParseStopString("", OptionStyle::kCommandLine), doctest::Contains("--stop \"\" is empty"), UserError);
  CHECK_THROWS_WITH_AS(ParseStopString("a\\", OptionStyle::kCommandLine), doctest::Contains("lone backslash"), UserError);
  CHECK_THROWS_WITH_AS(ParseStopString("\\x", OptionStyle::kSession), doctest::Contains("unknown escape \\x"), UserError);
}

}  // namespace
}  // namespace charlm
