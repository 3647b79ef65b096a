// Generation: prefix warm-up with one whole-sequence forward, then one step per emitted character.
#include "generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "errors.h"
#include "utf8.h"

namespace charlm {

std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what) {
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
                    " character(s) outside the model's vocabulary: " + names +
                    "; remove them, or pass --unknown skip to drop them");
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

int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 double* probs, int* order) {
  auto allowed = [&](int id) { return id != exclude_id; };
  if (options.greedy) {
    int best = -1;
    for (int j = 0; j < vocab_size; ++j) {
      if (allowed(j) && (best < 0 || logits[j] > logits[best])) best = j;
    }
    return best;
  }
  double max_logit = -INFINITY;
  for (int j = 0; j < vocab_size; ++j) {
    if (allowed(j)) max_logit = std::max(max_logit, static_cast<double>(logits[j]));
  }
  double sum = 0;
  for (int j = 0; j < vocab_size; ++j) {
    probs[j] = allowed(j) ? std::exp((logits[j] - max_logit) / options.temperature) : 0.0;
    sum += probs[j];
  }
  int candidates = vocab_size;
  std::iota(order, order + vocab_size, 0);
  if (options.top_k > 0 || options.top_p < 1.0) {
    // Most probable first; ties by id so the order is deterministic.
    std::sort(order, order + vocab_size, [&](int a, int b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
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
  }
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

std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown) {
  const std::u32string prefix = DecodeUtf8(prefix_utf8, "prefix");
  const std::vector<int> ids = EncodeText(vocab, prefix, unknown, "prefix \"" + std::string(prefix_utf8) + "\"");
  if (ids.empty()) {
    throw UserError("prefix \"" + std::string(prefix_utf8) +
                    "\" has no character the model knows: give a prefix of at least one character from the training text");
  }
  const int vocab_size = model.spec().vocab_size;
  const int warmup = static_cast<int>(ids.size()) - 1;
  auto ws = model.MakeWorkspace(std::max(warmup, 1), 1);
  auto state = model.MakeState(1);
  if (warmup > 0) model.Forward(*ws, ids.data(), nullptr, warmup, 1, state, {});
  std::vector<double> probs(vocab_size);
  std::vector<int> order(vocab_size);
  const int exclude = vocab.unk_id().value_or(-1);
  std::u32string out = vocab.Decode(ids);
  int current = ids.back();
  for (int k = 0; k < options.length; ++k) {
    model.Forward(*ws, &current, nullptr, 1, 1, state, {});
    current = SampleNextId(WorkspaceLogits(*ws), vocab_size, options, exclude, rng, probs.data(), order.data());
    out.push_back(vocab.CharAt(current));
  }
  return EncodeUtf8(out);
}

}  // namespace charlm
