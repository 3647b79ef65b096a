// Generation: prefix warm-up with one whole-sequence forward, then one step per emitted character.
#include "generate.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include "blas.h"
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

namespace {

// Below this vocabulary the exponentials take less time than handing half of them to another thread.
constexpr int kMinSplitVocab = 1024;

struct ExpArgs {
  const float* logits;
  double max_logit, temperature;
  int exclude_id;
  double* probs;
};

// probs[j] = exp((logits[j] - max) / temperature), 0 for the excluded id, for j in [begin, end); returns their sum,
// added in id order. Dividing by 1 is exact, so the default temperature skips the division (a double division per
// id was a visible share of a step).
double ExpAndSum(const ExpArgs& a, int begin, int end) {
  double sum = 0;
  if (a.temperature == 1.0) {
    for (int j = begin; j < end; ++j) {
      a.probs[j] = j != a.exclude_id ? std::exp(a.logits[j] - a.max_logit) : 0.0;
      sum += a.probs[j];
    }
  } else {
    for (int j = begin; j < end; ++j) {
      a.probs[j] = j != a.exclude_id ? std::exp((a.logits[j] - a.max_logit) / a.temperature) : 0.0;
      sum += a.probs[j];
    }
  }
  return sum;
}

void ExpRange(const void* context, int begin, int end) { ExpAndSum(*static_cast<const ExpArgs*>(context), begin, end); }

}  // namespace

int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 double* probs, int* order, ColumnThreads* threads) {
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
  const ExpArgs args{logits, max_logit, options.temperature, exclude_id, probs};
  double sum = 0;
  if (threads != nullptr && vocab_size >= kMinSplitVocab) {
    threads->ParallelFor(vocab_size, 8, ExpRange, &args);
    for (int j = 0; j < vocab_size; ++j) sum += probs[j];  // in id order, one chain: the same sum as unsplit
  } else {
    sum = ExpAndSum(args, 0, vocab_size);
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

Generator::Generator(const CharModel<float>& model, int max_prefix, int threads)
    : model_(model),
      threads_(std::min(threads, kMaxThreads)),
      ws_(model.MakeGenerationWorkspace(std::max(max_prefix - 1, 1), &threads_)),
      state_(model.MakeState(1)),
      probs_(static_cast<std::size_t>(model.spec().vocab_size)),
      order_(static_cast<std::size_t>(model.spec().vocab_size)) {}

void Generator::Start(std::span<const int> ids) {
  assert(!ids.empty() && static_cast<int>(ids.size()) - 1 <= std::max(ws_->max_steps, 1));
  state_.Zero();
  const int warmup = static_cast<int>(ids.size()) - 1;
  if (warmup > 0) model_.Forward(*ws_, ids.data(), nullptr, warmup, 1, state_, {});
}

int Generator::Next(int current, const SamplingOptions& options, int exclude_id, Rng& rng) {
  model_.Forward(*ws_, &current, nullptr, 1, 1, state_, {});
  return SampleNextId(WorkspaceLogits(*ws_), model_.spec().vocab_size, options, exclude_id, rng, probs_.data(),
                      order_.data(), &threads_);
}

std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown) {
  const std::u32string prefix = DecodeUtf8(prefix_utf8, "prefix");
  const std::vector<int> ids = EncodeText(vocab, prefix, unknown, "prefix \"" + std::string(prefix_utf8) + "\"");
  if (ids.empty()) {
    throw UserError("prefix \"" + std::string(prefix_utf8) +
                    "\" has no character the model knows: give a prefix of at least one character from the training text");
  }
  Generator generator(model, static_cast<int>(ids.size()), BlasThreads());
  generator.Start(ids);
  const int exclude = vocab.unk_id().value_or(-1);
  std::u32string out = vocab.Decode(ids);
  int current = ids.back();
  for (int k = 0; k < options.length; ++k) {
    current = generator.Next(current, options, exclude, rng);
    out.push_back(vocab.CharAt(current));
  }
  return EncodeUtf8(out);
}

}  // namespace charlm
