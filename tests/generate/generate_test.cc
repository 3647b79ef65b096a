// Checks generation: determinism, greedy, top-k and top-p, and characters outside the vocabulary.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "util/errors.h"
#include "generate/generate.h"
#include "util/rng.h"
#include "util/utf8.h"

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

// Counts flushes, to see that StreamText writes as it goes rather than once at the end.
struct FlushCountingBuffer : std::stringbuf {
  int flushes = 0;
  int sync() override {
    ++flushes;
    return std::stringbuf::sync();
  }
};

TEST_CASE("generate: StreamText writes the text as it is drawn, the same text GenerateText returns") {
  Fixture f;
  SamplingOptions options;
  options.length = 200;
  FlushCountingBuffer buffer;
  std::ostream out(&buffer);
  Rng a(3), b(3);
  StreamText(f.model, f.vocab, "分开", options, a, out);
  CHECK(buffer.str() == GenerateText(f.model, f.vocab, "分开", options, b));
  CHECK(buffer.flushes >= 1 + 200 / kStreamChars);  // the prefix, then every kStreamChars characters at the latest
  FlushCountingBuffer untouched;
  std::ostream nothing(&untouched);
  CHECK_THROWS_AS(StreamText(f.model, f.vocab, "zz", options, a, nothing), UserError);
  CHECK(untouched.str().empty());  // a prefix error comes before any output
}

TEST_CASE("generate: a stop request ends the text at once, keeping what was generated, and is polled per character") {
  Fixture f;
  SamplingOptions options;
  options.length = 40;
  Rng a(5), b(5);
  const std::string whole = GenerateText(f.model, f.vocab, "分开", options, a);
  int polls = 0;
  std::ostringstream out;
  const bool finished = StreamText(f.model, f.vocab, "分开", options, b, out, UnknownPolicy::kError,
                                   NewlinePolicy::kKeep, [&] { return ++polls > 7; });
  CHECK_FALSE(finished);
  CHECK(polls == 8);  // one poll per character: 7 answered no, the 8th yes
  const std::u32string stopped = DecodeUtf8(out.str(), "out");
  CHECK(stopped.size() == 2 + 7);
  CHECK(whole.starts_with(out.str()));  // the same draws up to the stop
  Rng c(5);
  std::ostringstream full;
  polls = 0;
  CHECK(StreamText(f.model, f.vocab, "分开", options, c, full, UnknownPolicy::kError, NewlinePolicy::kKeep,
                   [&] { return ++polls > 1000; }));
  CHECK(full.str() == whole);
  CHECK(polls == 40);
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
  std::vector<float> probs(4);
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

TEST_CASE("generate: sampled frequencies follow the softmax of logits / temperature, and <unk> gets none") {
  // A vocabulary above the 16-lane blocks of the sum, with a tail, so every code path of the draw runs.
  const int v = 37;
  std::vector<float> logits(v);
  for (int j = 0; j < v; ++j) logits[j] = 0.15f * static_cast<float>((j * 7) % 13) - 0.6f;
  logits[5] = 2.5f;  // one id far ahead, as in a trained model
  std::vector<float> probs(v);
  std::vector<int> order(v);
  const int exclude = 20;
  for (double temperature : {1.0, 0.5}) {
    CAPTURE(temperature);
    std::vector<double> expected(v);
    double total = 0;
    for (int j = 0; j < v; ++j) total += expected[j] = j == exclude ? 0.0 : std::exp(logits[j] / temperature);
    SamplingOptions options;
    options.temperature = temperature;
    Rng rng(11);
    const int draws = 40000;
    std::vector<int> counts(v);
    for (int k = 0; k < draws; ++k) ++counts[SampleNextId(logits.data(), v, options, exclude, rng, probs.data(), order.data())];
    CHECK(counts[exclude] == 0);
    for (int j = 0; j < v; ++j) {
      CAPTURE(j);
      const double p = expected[j] / total;
      // Within 5 standard deviations of the binomial count: a wrong exponent, temperature or sum is far outside.
      CHECK(std::abs(counts[j] - draws * p) <= 5.0 * std::sqrt(draws * p * (1 - p)) + 1.0);
    }
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

TEST_CASE("generate: an empty prefix starts after a line break, else after a space, else is refused") {
  const Vocab lines = Vocab::Build(U"ab\ncd ");
  CHECK(EncodePrefix(lines, "", UnknownPolicy::kError, NewlinePolicy::kKeep) == std::vector<int>{*lines.Find(U'\n')});
  const Vocab spaces = Vocab::Build(U"ab cd");
  CHECK(EncodePrefix(spaces, "", UnknownPolicy::kError, NewlinePolicy::kSpace) == std::vector<int>{*spaces.Find(U' ')});
  const Vocab neither = Vocab::Build(U"分开");
  CHECK_THROWS_WITH_AS(EncodePrefix(neither, "", UnknownPolicy::kError, NewlinePolicy::kKeep),
                       doctest::Contains("an empty prefix starts after a line break or a space"), UserError);
}

// The generation path before the input table and the threads: a plain workspace, one Forward per character, the
// draw on the caller. Returns the drawn ids.
std::vector<int> ReferenceIds(const CharModel<float>& model, const std::vector<int>& prefix, int length,
                              const SamplingOptions& options, std::uint64_t seed) {
  const int v = model.spec().vocab_size;
  auto ws = model.MakeWorkspace(1, 1);
  auto state = model.MakeState(1);
  // One character per Forward: a several-step warm-up would take BLAS's sgemm for its projections, whose bits
  // depend on the CPU's kernel (on an Ice Lake Xeon they differ from the one-row products'), while the
  // generator's few-row products keep the one-row bits by construction.
  for (std::size_t i = 0; i + 1 < prefix.size(); ++i) model.Forward(*ws, &prefix[i], nullptr, 1, 1, state, {});
  std::vector<float> probs(static_cast<std::size_t>(v));
  std::vector<int> order(static_cast<std::size_t>(v));
  Rng rng(seed);
  std::vector<int> ids;
  int current = prefix.back();
  for (int k = 0; k < length; ++k) {
    model.Forward(*ws, &current, nullptr, 1, 1, state, {});
    current = SampleNextId(WorkspaceLogits(*ws), v, options, -1, rng, probs.data(), order.data());
    ids.push_back(current);
  }
  return ids;
}

// Sizes above the threshold at which products are split (32K multiply-adds), so that the chunked paths run, and a
// vocabulary above the 16-lane and 64-id blocks of the draw; small enough that tokens repeat and the input table's
// rows are read back, not only filled.
ModelSpec SplitSizedSpec(CellKind cell, int embedding, int layers, bool reset_after) {
  ModelSpec spec;
  spec.cell = cell;
  spec.vocab_size = 1100;
  spec.embedding_size = embedding;
  spec.hidden_size = 192;
  spec.num_layers = layers;
  spec.reset_after = reset_after;
  return spec;
}

TEST_CASE("generate: the input table and the threads leave the generated ids bit-identical, for every cell") {
  struct Case {
    CellKind cell;
    bool reset_after;
  };
  for (const Case c : {Case{CellKind::kRnn, true}, Case{CellKind::kGru, true}, Case{CellKind::kGru, false},
                       Case{CellKind::kLstm, true}}) {
    for (int embedding : {0, 48}) {
      for (int layers : {1, 2}) {
        CAPTURE(EnumName(c.cell));
        CAPTURE(c.reset_after);
        CAPTURE(embedding);
        CAPTURE(layers);
        CharModel<float> model(SplitSizedSpec(c.cell, embedding, layers, c.reset_after));
        model.Initialize(InitScheme::kPytorch, 5);
        // A sharper softmax than at initialization, so a single changed bit of a logit would likely change a draw.
        SamplingOptions options;
        options.temperature = 0.05;
        const std::vector<int> prefix{3, 1099, 3, 512};
        const int length = 300;
        const std::vector<int> reference = ReferenceIds(model, prefix, length, options, 9);
        for (int threads : {1, 2}) {
          CAPTURE(threads);
          Generator generator(model, static_cast<int>(prefix.size()), threads);
          CHECK(generator.threads() == threads);
          generator.Start(prefix);
          Rng rng(9);
          std::vector<int> ids;
          int current = prefix.back();
          for (int k = 0; k < length; ++k) ids.push_back(current = generator.Next(current, options, -1, rng));
          CHECK(ids == reference);
        }
      }
    }
  }
}

TEST_CASE("generate: logits with the input table are bit-identical to the plain path's, and the table needs an embedding") {
  for (int embedding : {0, 48}) {
    CAPTURE(embedding);
    CharModel<float> model(SplitSizedSpec(CellKind::kLstm, embedding, 1, true));
    model.Initialize(InitScheme::kPytorch, 2);
    auto plain = model.MakeWorkspace(1, 1);
    auto tabled = model.MakeGenerationWorkspace(1, nullptr);
    CHECK((tabled->input_table != nullptr) == (embedding > 0));
    auto plain_state = model.MakeState(1), tabled_state = model.MakeState(1);
    const int v = model.spec().vocab_size;
    for (int token : {7, 8, 7, 7, 1099, 8}) {  // repeats: the second use reads the row the first one filled
      model.Forward(*plain, &token, nullptr, 1, 1, plain_state, {});
      model.Forward(*tabled, &token, nullptr, 1, 1, tabled_state, {});
      CHECK(std::memcmp(WorkspaceLogits(*plain), WorkspaceLogits(*tabled), sizeof(float) * v) == 0);
    }
    CHECK(plain_state.h == tabled_state.h);
    CHECK(plain_state.c == tabled_state.c);
  }
}

// Beam search runs its rows as one batch of a generation workspace (few-row products, the input table); each row
// must keep the bits of sampling's batch-1 step, so that its greedy row is greedy decoding.
TEST_CASE("generate: a generation step of several rows gives each row the bits of a batch-1 step") {
  for (int embedding : {0, 48}) {
    CAPTURE(embedding);
    CharModel<float> model(SplitSizedSpec(CellKind::kLstm, embedding, 2, true));
    model.Initialize(InitScheme::kPytorch, 3);
    constexpr int kRows = 5;
    ColumnThreads batch_threads(2), row_threads(1);
    batch_threads.PackWeights();
    auto batched = model.MakeGenerationWorkspace(1, &batch_threads, kRows);
    auto single = model.MakeGenerationWorkspace(1, &row_threads);
    auto batched_state = model.MakeState(kRows);
    batched_state.Zero();
    std::vector<RecurrentState<float>> row_states;
    for (int r = 0; r < kRows; ++r) {
      row_states.push_back(model.MakeState(1));
      row_states.back().Zero();
    }
    const int v = model.spec().vocab_size;
    const std::vector<std::vector<int>> steps{{7, 8, 7, 1099, 3}, {8, 8, 1099, 7, 3}, {3, 7, 7, 8, 1099}};
    for (const std::vector<int>& tokens : steps) {  // repeats within and across steps: filled and reused rows
      model.Forward(*batched, tokens.data(), nullptr, 1, kRows, batched_state, {});
      for (int r = 0; r < kRows; ++r) {
        CAPTURE(r);
        model.Forward(*single, &tokens[static_cast<std::size_t>(r)], nullptr, 1, 1, row_states[static_cast<std::size_t>(r)], {});
        CHECK(std::memcmp(WorkspaceLogits(*batched) + static_cast<std::size_t>(r) * v, WorkspaceLogits(*single),
                          sizeof(float) * v) == 0);
      }
    }
  }
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("generate: no-repeat-ngram stops the text where every character is banned, and says so") {
  // Issue 35: with no character left, the ban was lifted silently and the text broke "never twice".
  Fixture f;
  SamplingOptions options;
  options.length = 100;
  options.no_repeat_ngram = 1;
  Rng rng(5);
  const std::vector<int> prefix = EncodePrefix(f.vocab, "分开", UnknownPolicy::kError, NewlinePolicy::kKeep);
  const Continuation c = Generate(f.model, f.vocab, prefix, options, rng, nullptr, false).front();
  CHECK(c.stopped_by_ngram);
  CHECK(c.stopped_by.empty());
  const std::u32string text = U"分开" + c.text;
  CHECK(text.size() <= static_cast<std::size_t>(f.vocab.size()));
  for (std::size_t i = 0; i < text.size(); ++i) CHECK(text.find(text[i], i + 1) == std::u32string::npos);
  options.no_repeat_ngram = 0;
  CHECK(!Generate(f.model, f.vocab, prefix, options, rng, nullptr, false).front().stopped_by_ngram);
}

TEST_CASE("generate: beam search keeps the no-repeat-ngram ban where every character is banned, and says so") {
  // Issue 35: --beam lifted the ban silently: the greedy row took a banned character once every one was banned.
  Fixture f;
  SamplingOptions options;
  options.length = 100;
  options.no_repeat_ngram = 1;
  const std::vector<int> prefix = EncodePrefix(f.vocab, "分开", UnknownPolicy::kError, NewlinePolicy::kKeep);
  for (const int beam : {1, 3}) {
    CAPTURE(beam);
    options.beam = beam;
    Rng rng(5);
    const std::vector<Continuation> beams = Generate(f.model, f.vocab, prefix, options, rng, nullptr, false);
    REQUIRE(!beams.empty());
    CHECK(beams.front().stopped_by_ngram);
    for (const Continuation& c : beams) {
      const std::u32string text = U"分开" + c.text;
      for (std::size_t i = 0; i < text.size(); ++i) CHECK(text.find(text[i], i + 1) == std::u32string::npos);
      CHECK(std::isfinite(c.score));
    }
  }
}

TEST_CASE("generate: a prefix's \\r\\n is one line break, as the corpus reader reads it") {
  const Vocab lines = Vocab::Build(U"ab\ncd ");
  const int a = *lines.Find(U'a'), b = *lines.Find(U'b');
  // '\r' is not in the vocabulary: before, "a\r\nb" was refused for it; the corpus reads the pair as "\n".
  CHECK(EncodePrefix(lines, "a\r\nb", UnknownPolicy::kError, NewlinePolicy::kKeep) ==
        std::vector<int>{a, *lines.Find(U'\n'), b});
  // With line breaks as spaces, one space, not two.
  CHECK(EncodePrefix(lines, "a\r\nb", UnknownPolicy::kError, NewlinePolicy::kSpace) ==
        std::vector<int>{a, *lines.Find(U' '), b});
}

TEST_CASE("generate: a character that min_freq made <unk> is an error under --unknown error") {
  // "c" is seen once, below min_freq 2: the vocabulary reads it as <unk>.
  const Vocab vocab = Vocab::Build(U"aabbc", 2);
  REQUIRE(vocab.unk_id());
  CHECK_THROWS_WITH_AS(EncodePrefix(vocab, "abc", UnknownPolicy::kError, NewlinePolicy::kKeep),
                       "prefix \"abc\" has 1 character(s) outside the model's vocabulary, which it reads only as <unk> "
                       "(characters rarer than data.min_freq in its training text): U+0063 'c'; remove them, or pass "
                       "--unknown skip to read them as <unk>",
                       UserError);
  CHECK(EncodePrefix(vocab, "abc", UnknownPolicy::kSkip, NewlinePolicy::kKeep) ==
        std::vector<int>{*vocab.Find(U'a'), *vocab.Find(U'b'), *vocab.unk_id()});
}

TEST_CASE("generate: weights that overflow float32 are an error naming their checkpoint, not a text of spaces") {
  // An LSTM: tanh of its saturated cell stays near 1, so 3e38 times it overflows (a GRU's saturated gates keep its
  // state at 0 and its logits at the finite bias).
  const Vocab vocab = Vocab::Build(U"分开不想你我的爱abc");
  ModelSpec spec = Fixture::Spec(vocab.size());
  spec.cell = CellKind::kLstm;
  CharModel<float> model(spec);
  for (float& p : model.params()) p = 3e38f;  // finite, as an imported file can hold them
  model.set_origin("huge.ckpt");
  SamplingOptions options;
  options.length = 5;
  Rng rng(1);
  CHECK_THROWS_WITH_AS(GenerateText(model, vocab, "分开", options, rng),
                       doctest::Contains("the weights of checkpoint huge.ckpt give a non-finite logit"), UserError);
  options.beam = 2;
  CHECK_THROWS_WITH_AS(GenerateText(model, vocab, "分开", options, rng),
                       doctest::Contains("the weights of checkpoint huge.ckpt give a non-finite logit"), UserError);
}

}  // namespace
}  // namespace charlm
