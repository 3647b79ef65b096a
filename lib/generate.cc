// Generation: prefix warm-up with one whole-sequence forward, then one step per emitted character.
#include "generate.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <sstream>

#include "blas.h"
#include "corpus.h"
#include "errors.h"
#include "utf8.h"
#include "vecmath.h"

namespace charlm {

std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what,
                            std::string_view fix) {
  std::vector<int> ids;
  ids.reserve(text.size());
  std::u32string missing;
  for (char32_t c : text) {
    if (auto id = vocab.Find(c)) {
      ids.push_back(*id);
    } else if (vocab.unk_id()) {
      ids.push_back(*vocab.unk_id());
    } else if (missing.find(c) == std::u32string::npos) {
      missing.push_back(c);
    }
  }
  if (!missing.empty() && unknown == UnknownPolicy::kError) {
    std::string names;
    for (char32_t c : missing) names += (names.empty() ? "" : ", ") + DescribeCodePoint(c);
    throw UserError(std::string(what) + " has " + std::to_string(missing.size()) +
                    " character(s) outside the model's vocabulary: " + names + "; " + std::string(fix));
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
// the model's own branch-free float exp (lib/vecmath.h, within 3e-7 relative), the sum is over kLanes lanes in a
// fixed order: libm's double exp, one call per id, and the single chain were ~20 % of a d2l generation step.
double ExpAndSum(const float* __restrict logits, int vocab_size, float max_logit, double temperature,
                 int exclude_id, float* __restrict probs) {
  const float inverse_temperature = static_cast<float>(1.0 / temperature);
  for (int j = 0; j < vocab_size; ++j) probs[j] = FastExp((logits[j] - max_logit) * inverse_temperature);
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

Generator::Generator(const CharModel<float>& model, int max_prefix, int threads)
    : model_(model),
      threads_(std::min(threads, kMaxThreads)),
      ws_(model.MakeGenerationWorkspace(std::max(max_prefix - 1, 1), &threads_)),
      state_(model.MakeState(1)),
      probs_(static_cast<std::size_t>(model.spec().vocab_size)),
      order_(static_cast<std::size_t>(model.spec().vocab_size)) {
  threads_.PackWeights();
}

void Generator::Start(std::span<const int> ids) {
  assert(!ids.empty() && static_cast<int>(ids.size()) - 1 <= std::max(ws_->max_steps, 1));
  state_.Zero();
  const int warmup = static_cast<int>(ids.size()) - 1;
  if (warmup > 0) model_.Forward(*ws_, ids.data(), nullptr, warmup, 1, state_, {});
}

int Generator::Next(int current, const SamplingOptions& options, int exclude_id, Rng& rng) {
  model_.Forward(*ws_, &current, nullptr, 1, 1, state_, {});
  return SampleNextId(WorkspaceLogits(*ws_), model_.spec().vocab_size, options, exclude_id, rng, probs_.data(),
                      order_.data());
}

bool StreamText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                const SamplingOptions& options, Rng& rng, std::ostream& out, UnknownPolicy unknown,
                NewlinePolicy newline, const StopRequested& stop_requested) {
  const std::u32string prefix = ApplyNewlinePolicy(DecodeUtf8(prefix_utf8, "prefix"), newline);
  const std::string quoted = "prefix \"" + EscapeControlChars(prefix_utf8) + "\"";
  const std::vector<int> ids = EncodeText(vocab, prefix, unknown, quoted);
  if (ids.empty()) {
    throw UserError(quoted + " has no character the model knows: give a prefix of at least one character from the "
                    "training text");
  }
  Generator generator(model, static_cast<int>(ids.size()), BlasThreads());
  generator.Start(ids);
  const int exclude = vocab.unk_id().value_or(-1);
  std::u32string pending = vocab.Decode(ids);
  auto flush = [&] {
    out << EncodeUtf8(pending);
    out.flush();
    pending.clear();
  };
  flush();
  int current = ids.back();
  for (int k = 0; k < options.length; ++k) {
    if (stop_requested && stop_requested()) {
      flush();
      return false;
    }
    current = generator.Next(current, options, exclude, rng);
    pending.push_back(vocab.CharAt(current));
    if (pending.back() == U'\n' || static_cast<int>(pending.size()) >= kStreamChars) flush();
  }
  flush();
  return true;
}

std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown, NewlinePolicy newline,
                         const StopRequested& stop_requested) {
  std::ostringstream text;
  StreamText(model, vocab, prefix_utf8, options, rng, text, unknown, newline, stop_requested);
  return text.str();
}

}  // namespace charlm
