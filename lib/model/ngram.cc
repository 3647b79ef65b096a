// Interpolated Kneser-Ney over character ids: counts per level in hash tables keyed by the packed ids.
#include "model/ngram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <string>

#include "util/errors.h"

namespace charlm {

KneserNeyModel::KneserNeyModel(IdView train_ids, int vocab_size, int order)
    : vocab_size_(vocab_size), order_(order) {
  assert(vocab_size >= 1);
  bits_ = std::max(1, static_cast<int>(std::bit_width(static_cast<unsigned>(vocab_size - 1))));
  if (order < 1 || order > kMaxNgramOrder) {
    throw UserError("--order " + std::to_string(order) + " is out of range: expected 1 to " +
                    std::to_string(kMaxNgramOrder) + ", e.g. the default " + std::to_string(kDefaultNgramOrder));
  }
  if (order * bits_ > 128) {
    throw UserError("--order " + std::to_string(order) + " is too high for a vocabulary of " +
                    std::to_string(vocab_size) + " characters: at most " + std::to_string(128 / bits_) +
                    "; give a lower --order");
  }
  const IdView fit = train_ids.first(
      static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(train_ids.size()), kMaxNgramFitChars)));
  train_chars_ = fit.size();
  unigram_counts_.assign(static_cast<std::size_t>(vocab_size), 0);
  for (const int id : fit) {
    assert(id >= 0 && id < vocab_size);
    ++unigram_counts_[static_cast<std::size_t>(id)];
  }
  if (order == 1) return;

  levels_.resize(static_cast<std::size_t>(order));
  // The top level counts every n-gram of the text; each lower level counts, for each of its n-grams, the distinct
  // characters seen before it (the number of distinct n-grams one level up that end with it).
  Level& top = levels_.back();
  for (std::size_t i = static_cast<std::size_t>(order) - 1; i < fit.size(); ++i) {
    ++top.counts[Key(fit.subspan(i + 1 - static_cast<std::size_t>(order), static_cast<std::size_t>(order)))];
  }
  for (int level = order - 1; level >= 1; --level) {
    const NgramKey mask = level * bits_ == 128 ? ~NgramKey{0} : (NgramKey{1} << (level * bits_)) - 1;
    Level& lower = levels_[static_cast<std::size_t>(level - 1)];
    for (const auto& entry : levels_[static_cast<std::size_t>(level)].counts) ++lower.counts[entry.first & mask];
  }
  for (Level& level : levels_) {
    std::uint64_t once = 0, twice = 0;
    for (const auto& [key, count] : level.counts) {
      ContextStats& stats = level.contexts[key >> bits_];
      stats.total += count;
      ++stats.distinct;
      once += count == 1;
      twice += count == 2;
    }
    level.discount = once > 0 ? static_cast<double>(once) / static_cast<double>(once + 2 * twice) : 0.5;
  }
}

KneserNeyModel::NgramKey KneserNeyModel::Key(IdView ids) const {
  NgramKey key = 0;
  for (const int id : ids) key = (key << bits_) | static_cast<NgramKey>(id);
  return key;
}

double KneserNeyModel::Probability(IdView context, int next) const {
  assert(next >= 0 && next < vocab_size_);
  const double uniform = 1.0 / vocab_size_;
  if (order_ == 1) {
    return static_cast<double>(unigram_counts_[static_cast<std::size_t>(next)] + 1) /
           static_cast<double>(train_chars_ + static_cast<std::uint64_t>(vocab_size_));
  }
  double p = uniform;  // below level 1
  for (int level = 1; level <= order_; ++level) {
    const std::size_t history = static_cast<std::size_t>(level - 1);
    if (context.size() < history) break;
    const Level& tables = levels_[static_cast<std::size_t>(level - 1)];
    const NgramKey context_key = Key(context.last(history));
    const auto stats = tables.contexts.find(context_key);
    if (stats == tables.contexts.end()) break;  // an unseen context: its longer extensions are unseen too
    const auto found = tables.counts.find((context_key << bits_) | static_cast<NgramKey>(next));
    const double count = found == tables.counts.end() ? 0.0 : found->second;
    const double total = static_cast<double>(stats->second.total);
    p = (std::max(count - tables.discount, 0.0) + tables.discount * stats->second.distinct * p) / total;
  }
  return p;
}

NgramEvalResult EvaluateNgram(const KneserNeyModel& model, IdView ids) {
  NgramEvalResult result;
  if (ids.size() < 2) return result;
  const std::size_t history = static_cast<std::size_t>(model.order() - 1);
  double loss_sum = 0;
  for (std::size_t k = 1; k < ids.size(); ++k) {
    const std::size_t begin = k > history ? k - history : 0;
    loss_sum -= std::log(model.Probability(ids.subspan(begin, k - begin), ids[k]));
  }
  result.tokens = static_cast<std::int64_t>(ids.size()) - 1;
  result.mean_loss = loss_sum / static_cast<double>(result.tokens);
  result.perplexity = std::exp(result.mean_loss);
  result.bits_per_char = result.mean_loss / std::log(2.0);
  return result;
}

Baseline FitBaseline(IdView train_ids, IdView val_ids, int vocab_size, int order) {
  Baseline baseline;
  baseline.order = order;
  const KneserNeyModel model(train_ids, vocab_size, order);
  baseline.fit_chars = std::min<std::int64_t>(static_cast<std::int64_t>(train_ids.size()), kMaxNgramFitChars);
  baseline.validation = EvaluateNgram(model, val_ids);
  return baseline;
}

std::uint64_t NgramModelBytes(std::int64_t train_chars, int vocab_size, int order) {
  const double chars = static_cast<double>(std::min<std::int64_t>(train_chars, kMaxNgramFitChars));
  double entries = 0;
  for (int k = 2; k <= order; ++k) {
    entries += std::min(chars, std::pow(static_cast<double>(vocab_size), k)) +
               std::min(chars, std::pow(static_cast<double>(vocab_size), k - 1));
  }
  return static_cast<std::uint64_t>(entries) * kNgramEntryBytes +
         static_cast<std::uint64_t>(std::max(vocab_size, 0)) * sizeof(std::uint64_t);
}

nlohmann::json BaselineJson(const Baseline& baseline) {
  return {{"order", baseline.order},
          {"val_perplexity", baseline.validation.perplexity},
          {"val_bpc", baseline.validation.bits_per_char}};
}

std::string FormatBaseline(const Baseline& baseline) {
  char line[320];
  std::snprintf(line, sizeof line,
                "%s %d-gram baseline (fitted on %lld training characters): validation perplexity %.3f, %.4f bits per "
                "character (%lld characters predicted)",
                baseline.order == 1 ? "add-one unigram" : "Kneser-Ney", baseline.order,
                static_cast<long long>(baseline.fit_chars), baseline.validation.perplexity,
                baseline.validation.bits_per_char, static_cast<long long>(baseline.validation.tokens));
  return line;
}

}  // namespace charlm
