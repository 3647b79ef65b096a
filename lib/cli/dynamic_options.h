// What eval and score share for --dynamic and --mix-ngram: the options' checks, the run, its JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "eval/dynamic.h"
#include "model/restore.h"
#include "text/dataset.h"

namespace charlm {

// The mixture's weight is chosen on this many characters at the end of the training split (at most a tenth of it),
// with an n-gram fitted on the characters before them, so the n-gram has not seen what it is tuned on.
inline constexpr std::int64_t kMixTuneChars = 20000;

// What --dynamic and --mix-ngram scored, per transition, and how.
struct AdaptiveRun {
  std::string method;  // "dynamic", "ngram" or "dynamic+ngram"
  DynamicOptions dynamic;
  std::vector<double> log_probs;  // (transitions): ln p of each next character under the method
  std::int64_t tokens = 0;
  double perplexity = 0, bits_per_char = 0;
  bool cancelled = false;
  std::string stats_source;      // --dynamic: "training split" or "scored text"
  std::int64_t stats_chars = 0;  // --dynamic: characters the statistics came from (0: the scored text's past)
  double ngram_weight = 0;       // --mix-ngram: the n-gram's share of the mixture
  std::int64_t ngram_tune_chars = 0;
};

// What --dynamic and --mix-ngram hold per scored character at most (log-probabilities, the n-gram's, the mixture's,
// and without --dynamic a copy of the ids): checked against memory before anything is allocated.
inline constexpr double kAdaptiveBytesPerChar = 32;
// UserError when `chars` characters need more than half of `memory_bytes` (0 = unknown: no check).
void CheckAdaptiveFits(std::int64_t chars, std::uint64_t memory_bytes);

// The settings, checked (a one-line UserError naming the value otherwise); --dynamic-* without --dynamic is an error.
DynamicOptions CheckDynamicOptions(const DynamicCommandOptions& given);

// Scores ids with --dynamic and/or --mix-ngram (given.dynamic or given.mix_ngram). The gradient statistics come
// from the tail of the checkpoint's training split (`corpus` when already loaded, else loaded here) or, when that
// split cannot be had, from the scored text's own past; says which on stderr. --mix-ngram needs the split.
AdaptiveRun RunAdaptive(const RestoredModel& restored, IdView ids, const DynamicCommandOptions& given,
                        const Dataset* corpus, std::function<bool(std::int64_t, std::int64_t)> progress);

// method, and the settings of what it used: dynamic_segment, dynamic_lr, dynamic_decay, stats_source, stats_chars;
// ngram_order, ngram_weight, ngram_tune_chars.
nlohmann::json AdaptiveJson(const AdaptiveRun& run);

}  // namespace charlm
