// How likely a text is under a model: total log-probability, perplexity and each character's surprisal, with the
// views `charlm score` prints (summary line, coloured text, TSV, JSON).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
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

// The totals of a score, which is all a streamed score keeps.
struct ScoreTotals {
  double log_prob = 0;        // in nats
  std::int64_t predicted = 0;  // transitions scored
  double perplexity() const;
  double bits_per_char() const;
};

// Receives each transition's log-probability as it is scored: k from 0, ln p(ids[k + 1] | ids[0 .. k]).
using ScoreVisitor = std::function<void(std::size_t k, double log_prob)>;

// Runs the text as one stream from a zero state (in chunks of `chunk` steps, carrying the state), the same
// transitions `charlm eval` scores with one stream, handing each log-probability to `visit` and keeping none:
// memory does not grow with the text. ids needs at least 2 entries.
ScoreTotals ScoreStream(const CharModel<float>& model, std::span<const int> ids, const ScoreVisitor& visit,
                        int chunk = 256);
// The same, every log-probability kept.
TextScore ScoreIds(const CharModel<float>& model, std::span<const int> ids, int chunk = 256);

// The TextScore of ids from each transition's log-probability, however they were had (dynamic evaluation).
TextScore TextScoreOf(std::span<const int> ids, std::vector<double> log_probs);

enum class ScoreFormat { kSummary, kTsv, kColour, kJson };

// Writes one of `charlm score`'s views to `out` as the log-probabilities arrive, so that a text of millions of
// characters is printed without being held: Begin once, Add for each transition in order, then End.
//   kSummary: "<what>: log-probability -12.3456 nats over 99 characters, perplexity 3.4567, 1.7890 bits per
//             character\n"
//   kTsv:     one row per predicted character: position (in the text, from 0), character (control characters
//             escaped), code point, surprisal in bits and probability, after a header row.
//   kColour:  the text with each predicted character on a background from green (under 1 bit) to red (8 bits and
//             more), ANSI 256-colour escapes, a legend line, then the summary.
//   kJson:    one JSON object: first_char, chars, surprisal_bits (aligned with chars), log_prob, perplexity,
//             bits_per_char, predicted, then the members of `extra` (how the text was adapted).
class ScoreWriter {
 public:
  ScoreWriter(ScoreFormat format, std::ostream& out, const Vocab& vocab, std::span<const int> ids, std::string what);
  void Begin();
  void Add(std::size_t k, double log_prob);
  void End(const ScoreTotals& totals, const nlohmann::json& extra = nlohmann::json::object());

 private:
  ScoreFormat format_;
  std::ostream& out_;
  const Vocab& vocab_;
  std::span<const int> ids_;
  std::string what_;
};

// The views above of a TextScore held whole, as strings.
std::string FormatScoreSummary(const TextScore& score, const std::string& what);
std::string FormatScoreTsv(const TextScore& score, const Vocab& vocab);
std::string FormatScoreColour(const TextScore& score, const Vocab& vocab);  // without the summary
std::string FormatScoreJson(const TextScore& score, const Vocab& vocab);

}  // namespace charlm
