// Generation: prefix warm-up with one whole-sequence forward, then one step per emitted character.
#include "generate/generate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <sstream>

#include "generate/beam_search.h"
#include "ops/blas.h"
#include "text/corpus.h"
#include "util/errors.h"
#include "util/utf8.h"
#include "ops/vecmath.h"

namespace charlm {

std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what,
                            std::string_view fix) {
  std::vector<int> ids;
  ids.reserve(text.size());
  std::u32string missing;
  for (char32_t c : text) {
    if (auto id = vocab.Find(c)) {
      ids.push_back(*id);
      continue;
    }
    if (missing.find(c) == std::u32string::npos) missing.push_back(c);
    if (vocab.unk_id()) ids.push_back(*vocab.unk_id());
  }
  if (vocab.unk_id()) {
    // A character rarer than data.min_freq in the training text is read as <unk>, which the model knows: under
    // kError that is still a character outside the vocabulary, refused as asked, never a silent <unk>.
    if (!missing.empty() && unknown == UnknownPolicy::kError) {
      throw UserError(std::string(what) + " has " + std::to_string(missing.size()) +
                      " character(s) outside the model's vocabulary, which it reads only as <unk> (characters rarer "
                      "than data.min_freq in its training text): " + ListUnknownChars(missing) + "; " +
                      (fix == kUnknownCharsFix ? "remove them, or pass --unknown skip to read them as <unk>"
                                               : std::string(fix)));
    }
    if (!missing.empty()) {
      spdlog::warn("--unknown skip: read {} character(s) of {} as <unk>, which are outside the model's vocabulary: {}",
                   missing.size(), what, ListUnknownChars(missing));
    }
    return ids;
  }
  CheckUnknownChars(missing, unknown, what, fix);
  if (ids.size() < text.size()) {
    // Dropped characters change what the model is given: said, never silent (eval --unknown skip says it too).
    spdlog::warn("--unknown skip: left out {} of the {} characters of {}, which are outside the model's vocabulary: {}",
                 text.size() - ids.size(), text.size(), what, ListUnknownChars(missing));
  }
  return ids;
}

std::string ListUnknownChars(std::u32string_view missing) {
  std::string names;
  const std::size_t shown = std::min(missing.size(), kMaxUnknownCharsListed);
  for (std::size_t k = 0; k < shown; ++k) names += (k == 0 ? "" : ", ") + DescribeCodePoint(missing[k]);
  if (shown < missing.size()) names += " and " + std::to_string(missing.size() - shown) + " more";
  return names;
}

void CheckUnknownChars(std::u32string_view missing, UnknownPolicy unknown, std::string_view what,
                       std::string_view fix) {
  if (!missing.empty() && unknown == UnknownPolicy::kError) {
    throw UserError(std::string(what) + " has " + std::to_string(missing.size()) +
                    " character(s) outside the model's vocabulary: " + ListUnknownChars(missing) + "; " +
                    std::string(fix));
  }
}

std::vector<int> EncodePrefix(const Vocab& vocab, std::string_view prefix_utf8, UnknownPolicy unknown,
                              NewlinePolicy newline) {
  if (prefix_utf8.empty()) {
    // No prefix: the model starts as at the beginning of a line, the state a text's first characters follow
    // (nanoGPT's sampler starts from "\n" too); a space when line breaks became spaces.
    for (const char32_t start : {U'\n', U' '}) {
      if (const std::optional<int> id = vocab.Find(start)) return {*id};
    }
    throw UserError("an empty prefix starts after a line break or a space, and the model knows neither: give a "
                    "prefix of at least one character from the training text");
  }
  const std::string quoted = "prefix \"" + EscapeControlChars(prefix_utf8) + "\"";
  const std::u32string prefix = DecodeText(prefix_utf8, newline, "prefix");
  std::vector<int> ids = EncodeText(vocab, prefix, unknown, quoted);
  if (ids.empty()) {
    throw UserError(quoted + " has no character the model knows: give a prefix of at least one character from the "
                    "training text");
  }
  return ids;
}

SamplingOptions SamplingFromConfig(const GenerateConfig& generate) {
  SamplingOptions options;
  options.length = generate.length;
  options.temperature = generate.temperature;
  options.top_k = generate.top_k;
  options.top_p = generate.top_p;
  options.greedy = generate.greedy;
  return options;
}

namespace {

// Independent partial sums: one dependent chain of adds over a 2,583-entry vocabulary took longer than the
// exponentials themselves once those were vectorized.
constexpr int kLanes = 16;
constexpr int kScanBlock = 64;

// The largest logit over the ids that may be drawn, over kLanes lanes (std::max's one chain does not vectorize).
float MaxAllowedLogit(const float* __restrict logits, int vocab_size, int exclude_id) {
  float lanes[kLanes];
  for (float& lane : lanes) lane = -INFINITY;
  auto fold = [&](int begin, int end) {
    int j = begin;
    for (; j + kLanes <= end; j += kLanes) {
      for (int l = 0; l < kLanes; ++l) lanes[l] = logits[j + l] > lanes[l] ? logits[j + l] : lanes[l];
    }
    for (int l = 0; j < end; ++j, ++l) lanes[l] = logits[j] > lanes[l] ? logits[j] : lanes[l];
  };
  const bool excluding = exclude_id >= 0 && exclude_id < vocab_size;
  fold(0, excluding ? exclude_id : vocab_size);  // two ranges around the excluded id
  if (excluding) fold(exclude_id + 1, vocab_size);
  float best = -INFINITY;
  for (float lane : lanes) best = lane > best ? lane : best;
  return best;
}

// probs[j] = exp((logits[j] - max) / temperature), 0 for the excluded id; returns their sum. The exponentials are
// the model's own branch-free float exp (lib/model/vecmath.h, within 3e-7 relative), the sum is over kLanes lanes in a
// fixed order: libm's double exp, one call per id, and the single chain were ~20 % of a d2l generation step.
double ExpAndSum(const float* __restrict logits, int vocab_size, float max_logit, double temperature,
                 int exclude_id, float* __restrict probs) {
  // A temperature so small that 1/T overflows float is the T -> 0 limit, the argmax: FLT_MAX keeps 0 * (1/T) = 0
  // for the largest logit (an infinity would make it NaN) and sends every smaller one to zero mass.
  const float inverse_temperature = static_cast<float>(std::min(1.0 / temperature, double{FLT_MAX}));
  // FastExp clamps its argument, so a -infinity logit (a banned id) would still get a tiny mass: zero it.
  for (int j = 0; j < vocab_size; ++j) {
    const float p = FastExp((logits[j] - max_logit) * inverse_temperature);
    probs[j] = logits[j] > -INFINITY ? p : 0.0f;
  }
  if (exclude_id >= 0 && exclude_id < vocab_size) probs[exclude_id] = 0.0f;
  double lanes[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= vocab_size; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += probs[j + l];
  }
  for (int l = 0; j < vocab_size; ++j, ++l) lanes[l] += probs[j];
  double sum = 0;
  for (double lane : lanes) sum += lane;
  return sum;
}

}  // namespace

int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 float* probs, int* order) {
  auto allowed = [&](int id) { return id != exclude_id; };
  if (options.greedy) {
    int best = -1;
    for (int j = 0; j < vocab_size; ++j) {
      if (allowed(j) && (best < 0 || logits[j] > logits[best])) best = j;
    }
    return best;
  }
  const float max_logit = MaxAllowedLogit(logits, vocab_size, exclude_id);
  double sum = ExpAndSum(logits, vocab_size, max_logit, options.temperature, exclude_id, probs);
  if (options.top_k <= 0 && options.top_p >= 1.0) {
    // Every id is a candidate, in id order: no order array to fill. Whole blocks are skipped by their sums (a
    // vectorized sum each) instead of one dependent subtraction per id.
    double u = rng.Uniform() * sum;
    int j = 0;
    for (; j + kScanBlock <= vocab_size; j += kScanBlock) {
      double block = 0;
      for (int l = 0; l < kScanBlock; ++l) block += probs[j + l];
      if (u < block) break;
      u -= block;
    }
    for (; j < vocab_size; ++j) {
      u -= probs[j];
      if (u < 0) return j;
    }
    for (int j = vocab_size - 1; j >= 0; --j) {  // rounding left u >= 0: take the last id with mass
      if (probs[j] > 0) return j;
    }
    return 0;
  }
  std::iota(order, order + vocab_size, 0);
  // Most probable first; ties by id so the order is deterministic.
  std::sort(order, order + vocab_size, [&](int a, int b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
  int candidates = vocab_size;
  if (options.top_k > 0) candidates = std::min(candidates, options.top_k);
  if (options.top_p < 1.0) {
    double cumulative = 0;
    for (int r = 0; r < candidates; ++r) {
      cumulative += probs[order[r]] / sum;
      if (cumulative >= options.top_p) {
        candidates = r + 1;
        break;
      }
    }
  }
  sum = 0;
  for (int r = 0; r < candidates; ++r) sum += probs[order[r]];
  double u = rng.Uniform() * sum;
  for (int r = 0; r < candidates; ++r) {
    u -= probs[order[r]];
    if (u < 0) return order[r];
  }
  for (int r = candidates - 1; r >= 0; --r) {  // rounding left u >= 0: take the last candidate with mass
    if (probs[order[r]] > 0) return order[r];
  }
  return order[0];
}

double LogSumExp(const float* logits, int vocab_size, float* scratch) {
  const float max_logit = MaxAllowedLogit(logits, vocab_size, -1);
  if (!(max_logit > -INFINITY)) return -INFINITY;
  return static_cast<double>(max_logit) + std::log(ExpAndSum(logits, vocab_size, max_logit, 1.0, -1, scratch));
}

RepetitionControl::RepetitionControl(const SamplingOptions& options, int vocab_size)
    : penalty_(options.repetition_penalty),
      window_(options.repetition_window),
      ngram_(options.no_repeat_ngram),
      vocab_size_(vocab_size),
      mark_(active() ? static_cast<std::size_t>(vocab_size) : 0) {}

void CheckFiniteLogits(const CharModel<float>& model, const float* logits, int rows) {
  // Summing is the cheapest scan: any NaN or infinity makes the sum non-finite, and a sum of finite floats in
  // double cannot overflow. O(V) a step, against the O(H * V) product that made the logits.
  const std::size_t count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(model.spec().vocab_size);
  double sum = 0;
  for (std::size_t j = 0; j < count; ++j) sum += static_cast<double>(logits[j]);
  CheckFiniteOutput(sum, model.origin(), "logit");
}

bool RepetitionControl::Apply(const float* logits, std::span<const int> context, int exclude_id, float* adjusted) {
  std::copy_n(logits, vocab_size_, adjusted);
  const int size = static_cast<int>(context.size());
  if (penalty_ != 1.0) {
    // Each character once, however often it occurs in the window (as CTRL and its common implementations do).
    const float penalty = static_cast<float>(penalty_);
    for (int i = std::max(0, size - window_); i < size; ++i) {
      const int id = context[static_cast<std::size_t>(i)];
      if (mark_[static_cast<std::size_t>(id)] != 0) continue;
      mark_[static_cast<std::size_t>(id)] = 1;
      touched_.push_back(id);
      float& logit = adjusted[id];
      logit = logit > 0 ? logit / penalty : logit * penalty;
    }
    for (int id : touched_) mark_[static_cast<std::size_t>(id)] = 0;
    touched_.clear();
  }
  if (ngram_ > 0 && size >= ngram_ - 1) {
    // Every id that followed an earlier occurrence of the last ngram_ - 1 characters would complete a repeat.
    const int tail = ngram_ - 1;
    const int* text = context.data();
    int allowed = vocab_size_ - (exclude_id >= 0 && exclude_id < vocab_size_ ? 1 : 0);
    for (int start = 0; start + tail < size; ++start) {
      // An id already banned needs no second look: in text that loops (greedy decoding) every period matches the
      // whole tail, and comparing each match in full cost tail characters a period (a hostile pass: 40,000
      // characters with a ban of 20,000 did not finish in 100 s).
      const int id = text[start + tail];
      if (mark_[static_cast<std::size_t>(id)] != 0) continue;
      if (!std::equal(text + start, text + start + tail, text + size - tail)) continue;
      mark_[static_cast<std::size_t>(id)] = 1;
      touched_.push_back(id);
      if (id != exclude_id) --allowed;
    }
    if (allowed > 0) {
      for (int id : touched_) adjusted[id] = -INFINITY;
    }
    for (int id : touched_) mark_[static_cast<std::size_t>(id)] = 0;
    touched_.clear();
    return allowed > 0;
  }
  return true;
}

void RunPrefix(const CharModel<float>& model, Workspace<float>& ws, std::span<const int> ids,
               RecurrentState<float>& state) {
  for (std::size_t done = 0; done < ids.size();) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(ws.max_steps), ids.size() - done));
    model.Forward(ws, ids.data() + done, nullptr, steps, 1, state, {});
    done += static_cast<std::size_t>(steps);
  }
}

Generator::Generator(const CharModel<float>& model, int max_prefix, int threads)
    : model_(model),
      threads_(std::min(threads, kMaxThreads)),
      ws_(model.MakeGenerationWorkspace(std::clamp(max_prefix - 1, 1, kWarmupChunk), &threads_)),
      state_(model.MakeState(1)),
      probs_(static_cast<std::size_t>(model.spec().vocab_size)),
      order_(static_cast<std::size_t>(model.spec().vocab_size)) {
  threads_.PackWeights();
}

void Generator::Start(std::span<const int> ids) {
  assert(!ids.empty());
  state_.Zero();
  RunPrefix(model_, *ws_, ids.first(ids.size() - 1), state_);
}

const float* Generator::Step(int current) {
  model_.Forward(*ws_, &current, nullptr, 1, 1, state_, {});
  const float* logits = WorkspaceLogits(*ws_);
  CheckFiniteLogits(model_, logits, 1);
  return logits;
}

int Generator::Draw(const float* logits, const SamplingOptions& options, int exclude_id, Rng& rng) {
  return SampleNextId(logits, model_.spec().vocab_size, options, exclude_id, rng, probs_.data(), order_.data());
}

int Generator::Next(int current, const SamplingOptions& options, int exclude_id, Rng& rng) {
  return Draw(Step(current), options, exclude_id, rng);
}

std::vector<std::vector<int>> StopIds(const Vocab& vocab, const std::vector<std::u32string>& stop) {
  std::vector<std::vector<int>> ids;
  for (const std::u32string& s : stop) {
    std::vector<int> encoded;
    for (char32_t c : s) {
      const auto id = vocab.Find(c);
      if (!id) break;
      encoded.push_back(*id);
    }
    // A stop string with a character the model cannot emit never occurs; an empty one is refused earlier.
    if (!s.empty() && encoded.size() == s.size()) ids.push_back(std::move(encoded));
  }
  return ids;
}

int EndingStop(std::span<const int> generated, const std::vector<std::vector<int>>& stop_ids) {
  for (std::size_t i = 0; i < stop_ids.size(); ++i) {
    const std::vector<int>& s = stop_ids[i];
    if (generated.size() >= s.size() && std::equal(s.begin(), s.end(), generated.end() - static_cast<std::ptrdiff_t>(s.size()))) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::size_t StopPrefixHeld(std::span<const int> generated, const std::vector<std::vector<int>>& stop_ids) {
  std::size_t held = 0;
  for (const std::vector<int>& s : stop_ids) {
    for (std::size_t len = std::min(s.size() - 1, generated.size()); len > held; --len) {
      if (std::equal(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(len), generated.end() - static_cast<std::ptrdiff_t>(len))) {
        held = len;
        break;
      }
    }
  }
  return held;
}

namespace {

// Sampling or greedy: one character per step on the batch-1 generator.
Continuation Sample(const CharModel<float>& model, const Vocab& vocab, std::span<const int> prefix,
                    const SamplingOptions& options, Rng& rng, std::ostream* out, bool log_probs,
                    const StopRequested& stop_requested) {
  const int v = model.spec().vocab_size;
  const int exclude = vocab.unk_id().value_or(-1);
  const std::vector<std::vector<int>> stop_ids = StopIds(vocab, options.stop);
  Generator generator(model, static_cast<int>(prefix.size()), BlasThreads());
  generator.Start(prefix);
  RepetitionControl control(options, v);
  std::vector<float> adjusted(control.active() ? static_cast<std::size_t>(v) : 0);
  std::vector<int> context(prefix.begin(), prefix.end());  // (prefix + generated) ids, for the filters
  context.reserve(prefix.size() + static_cast<std::size_t>(std::max(options.length, 0)));
  Continuation result;
  std::u32string pending;
  std::size_t written = 0;  // generated characters passed to `pending`
  auto flush = [&] {
    *out << EncodeUtf8(pending);
    out->flush();
    pending.clear();
  };
  if (out != nullptr) {
    pending = vocab.Decode(prefix);
    flush();
  }
  int current = prefix.back();
  for (int k = 0; k < options.length; ++k) {
    if (stop_requested && stop_requested()) {
      result.interrupted = true;
      break;
    }
    const float* logits = generator.Step(current);
    const float* used = logits;
    if (control.active()) {
      if (!control.Apply(logits, context, exclude, adjusted.data())) {
        // Every character would repeat an n-gram: the text ends here, as at a stop string, so that "never repeat"
        // holds and the shorter text says why.
        result.stopped_by_ngram = true;
        spdlog::warn("no-repeat-ngram {}: every character the model knows would repeat a sequence of {} after {} of "
                     "the {} characters, so the text ends there; raise no-repeat-ngram to write more",
                     options.no_repeat_ngram, options.no_repeat_ngram, k, options.length);
        break;
      }
      used = adjusted.data();
    }
    current = generator.Draw(used, options, exclude, rng);
    context.push_back(current);
    if (log_probs) {
      result.log_probs.push_back(static_cast<double>(logits[current]) - LogSumExp(logits, v, generator.scratch()));
    }
    const std::span<const int> generated = std::span<const int>(context).subspan(prefix.size());
    const int stop = EndingStop(generated, stop_ids);
    if (stop >= 0) {
      const std::size_t n = stop_ids[static_cast<std::size_t>(stop)].size();
      context.resize(context.size() - n);
      if (log_probs) {
        for (std::size_t i = result.log_probs.size() - n; i < result.log_probs.size(); ++i) {
          result.stop_log_prob += result.log_probs[i];
        }
        result.log_probs.resize(result.log_probs.size() - n);
      }
      result.stopped_by = vocab.Decode(stop_ids[static_cast<std::size_t>(stop)]);
      break;
    }
    if (out != nullptr) {
      const std::size_t ready = generated.size() - StopPrefixHeld(generated, stop_ids);
      for (; written < ready; ++written) {
        pending.push_back(vocab.CharAt(generated[written]));
        if (pending.back() == U'\n' || static_cast<int>(pending.size()) >= kStreamChars) flush();
      }
    }
  }
  const std::span<const int> generated = std::span<const int>(context).subspan(prefix.size());
  result.text = vocab.Decode(generated);
  if (out != nullptr) {
    for (; written < generated.size(); ++written) pending.push_back(vocab.CharAt(generated[written]));
    flush();
  }
  for (double lp : result.log_probs) result.log_prob += lp;
  return result;
}

}  // namespace

std::vector<Continuation> Generate(const CharModel<float>& model, const Vocab& vocab, std::span<const int> prefix_ids,
                                   const SamplingOptions& options, Rng& rng, std::ostream* out, bool log_probs,
                                   const StopRequested& stop_requested) {
  assert(!prefix_ids.empty());
  if (options.beam > 0) {
    std::vector<Continuation> beams = BeamSearch(model, vocab, prefix_ids, options, stop_requested);
    if (out != nullptr) {
      *out << EncodeUtf8(vocab.Decode(prefix_ids)) << EncodeUtf8(beams.empty() ? U"" : beams.front().text);
      out->flush();
    }
    return beams;
  }
  return {Sample(model, vocab, prefix_ids, options, rng, out, log_probs, stop_requested)};
}

bool StreamText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                const SamplingOptions& options, Rng& rng, std::ostream& out, UnknownPolicy unknown,
                NewlinePolicy newline, const StopRequested& stop_requested) {
  const std::vector<int> ids = EncodePrefix(vocab, prefix_utf8, unknown, newline);
  return !Generate(model, vocab, ids, options, rng, &out, false, stop_requested).front().interrupted;
}

std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown, NewlinePolicy newline,
                         const StopRequested& stop_requested) {
  std::ostringstream text;
  StreamText(model, vocab, prefix_utf8, options, rng, text, unknown, newline, stop_requested);
  return text.str();
}

GeneratedParts GenerateParts(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                             const SamplingOptions& options, Rng& rng, UnknownPolicy unknown, NewlinePolicy newline,
                             const StopRequested& stop_requested) {
  const std::vector<int> ids = EncodePrefix(vocab, prefix_utf8, unknown, newline);
  const std::vector<Continuation> results = Generate(model, vocab, ids, options, rng, nullptr, false, stop_requested);
  GeneratedParts parts{EncodeUtf8(vocab.Decode(ids)), "", false};
  if (!results.empty()) {
    parts.continuation = EncodeUtf8(results.front().text);
    parts.interrupted = results.front().interrupted;
  }
  return parts;
}

std::uint64_t ParseSeed(const std::string& text, std::string_view option) {
  std::uint64_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw UserError(std::string(option) + " " + text + " is not a whole number from 0 to 18446744073709551615: e.g. " +
                    std::string(option) + " 42");
  }
  return seed;
}

}  // namespace charlm
