// How likely a text is under a model: total log-probability, perplexity and each character's surprisal, with the
// views `charlm score` prints (summary line, coloured text, TSV, JSON).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "text/vocab.h"

namespace charlm {

struct TextScore {
  std::vector<int> ids;           // the text as scored: ids[0] is context only, every later one is predicted
  std::vector<double> log_probs;  // (ids.size() - 1): ln p(ids[k + 1] | ids[0 .. k]) from a zero state
  double log_prob = 0;            // their sum, in nats
  double perplexity = 0;          // exp(-log_prob / predicted)
  double bits_per_char = 0;       // -log_prob / predicted / ln 2
  std::int64_t predicted() const { return static_cast<std::int64_t>(log_probs.size()); }
};

// Runs the text as one stream from a zero state (in chunks of `chunk` steps, carrying the state), the same
// transitions `charlm eval` scores with one stream; ids needs at least 2 entries.
TextScore ScoreIds(const CharModel<float>& model, std::span<const int> ids, int chunk = 256);

// The TextScore of ids from each transition's log-probability, however they were had (dynamic evaluation).
TextScore TextScoreOf(std::span<const int> ids, std::vector<double> log_probs);

// "<what>: log-probability -12.3456 nats over 99 characters, perplexity 3.4567, 1.7890 bits per character\n"
std::string FormatScoreSummary(const TextScore& score, const std::string& what);
// One row per predicted character: position (in the text, from 0), character (control characters escaped),
// code point, surprisal in bits and probability, after a header row.
std::string FormatScoreTsv(const TextScore& score, const Vocab& vocab);
// The text with each predicted character on a background from green (under 1 bit) to red (8 bits and more),
// ANSI 256-colour escapes, then a legend line.
std::string FormatScoreColour(const TextScore& score, const Vocab& vocab);
// One JSON object: first_char, chars, surprisal_bits (aligned with chars), log_prob, perplexity, bits_per_char,
// predicted.
std::string FormatScoreJson(const TextScore& score, const Vocab& vocab);

}  // namespace charlm
