// The baseline: an interpolated Kneser-Ney character n-gram model, fitted on the training split, scored like Evaluate.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/token_ids.h"

namespace charlm {

// Order 5 by default: within 4 % of the best order (7) on the lyrics and on an English text
// (docs/evaluation.md has the measured table), and 5 ids of any Unicode vocabulary fit a key.
inline constexpr int kDefaultNgramOrder = 5;
inline constexpr int kMaxNgramOrder = 10;
// The model is fitted on at most this many characters (the first ones of the training split), which bounds its
// hash tables to order x this many entries (a few hundred MB at worst) and the fit to seconds.
inline constexpr std::int64_t kMaxNgramFitChars = 5'000'000;
// The baseline printed as training starts scores at most this many validation characters (the first ones), so a
// gigabyte corpus's 100 MB split does not hold up the first step for minutes; `charlm baseline` scores them all.
inline constexpr std::int64_t kMaxStartBaselineChars = 2'000'000;

// P(next | the order - 1 characters before it) over ids 0 .. vocab_size - 1.
//   order 1: add-one unigram, (c(w) + 1) / (N + V): the classic yardstick.
//   order >= 2: interpolated Kneser-Ney (Chen & Goodman): the top order uses raw counts, every lower order the
//   number of distinct characters seen before its n-gram (continuation counts), each level discounted by
//   D = n1 / (n1 + 2 n2) (0.5 when no n-gram of that level occurs once), the lowest interpolated with the uniform
//   1 / V, so every character of the vocabulary, seen or not, gets a non-zero probability and they sum to 1.
//   A context never seen in training backs off entirely to the next lower order.
class KneserNeyModel {
 public:
  // UserError when order is outside [1, kMaxNgramOrder] or `order` ids of this vocabulary do not fit a 128-bit key.
  KneserNeyModel(IdView train_ids, int vocab_size, int order);

  int order() const { return order_; }
  int vocab_size() const { return vocab_size_; }
  double Discount(int level) const { return levels_[static_cast<std::size_t>(level - 1)].discount; }  // level 1..order
  // Uses the last order - 1 ids of context (fewer if it is shorter).
  double Probability(IdView context, int next) const;

 private:
  struct ContextStats {
    std::uint64_t total = 0;     // sum of the level's counts over every next character
    std::uint32_t distinct = 0;  // next characters with a non-zero count
  };
  __extension__ typedef unsigned __int128 NgramKey;  // ids packed bits_ apiece, the last one lowest
  struct KeyHash {
    std::size_t operator()(NgramKey key) const {
      const std::uint64_t mixed = static_cast<std::uint64_t>(key) ^ (static_cast<std::uint64_t>(key >> 64) * 0x9E3779B97F4A7C15ULL);
      return std::hash<std::uint64_t>{}(mixed * 0xBF58476D1CE4E5B9ULL);
    }
  };
  struct Level {
    std::unordered_map<NgramKey, std::uint32_t, KeyHash> counts;  // n-gram (level ids) -> raw or continuation count
    std::unordered_map<NgramKey, ContextStats, KeyHash> contexts;  // context (level - 1 ids) -> stats
    double discount = 0.5;
  };
  NgramKey Key(IdView ids) const;

  int vocab_size_ = 0, order_ = 1, bits_ = 1;
  std::vector<std::uint64_t> unigram_counts_;  // (V) raw counts, for order 1
  std::uint64_t train_chars_ = 0;
  std::vector<Level> levels_;  // (order), levels_[k - 1] holds k-grams
};

struct NgramEvalResult {
  double mean_loss = 0;  // nats per predicted character
  double perplexity = 0;
  double bits_per_char = 0;
  std::int64_t tokens = 0;  // ids.size() - 1, as Evaluate counts them
};

// Scores every transition ids[k] -> ids[k+1] once, the context being the ids before it within `ids`.
NgramEvalResult EvaluateNgram(const KneserNeyModel& model, IdView ids);

// What `charlm baseline` and the start of `train` report: the model fitted on train, scored on validation.
struct Baseline {
  int order = kDefaultNgramOrder;
  std::int64_t fit_chars = 0;  // training characters it was fitted on (at most kMaxNgramFitChars)
  NgramEvalResult validation;
};
Baseline FitBaseline(IdView train_ids, IdView val_ids, int vocab_size, int order);
// An upper bound of the memory FitBaseline's model takes for `train_chars` training characters (it fits at most
// kMaxNgramFitChars) of a vocabulary of vocab_size, for the check before it is fitted: each level k >= 2 holds at
// most one entry per distinct k-gram and one per distinct context, min(chars, V^k) and min(chars, V^(k-1)), of
// kNgramEntryBytes each.
std::uint64_t NgramModelBytes(std::int64_t train_chars, int vocab_size, int order);
// An entry of a level's hash tables: an unordered_map node with its 128-bit key, the allocator's header and its
// bucket. Measured: order 5 on 3.06 million random characters of 3,000 (21.4 million entries) peaked at 1.92 GB.
inline constexpr std::uint64_t kNgramEntryBytes = 88;
// {"order": N, "val_perplexity": ..., "val_bpc": ...}: the contents of out_dir/baseline.json.
nlohmann::json BaselineJson(const Baseline& baseline);
// "Kneser-Ney 3-gram baseline (fitted on 56953 training characters): validation perplexity 410.1, 8.680 bits ..."
std::string FormatBaseline(const Baseline& baseline);

}  // namespace charlm
