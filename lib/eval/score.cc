// Scoring a text: one batch-1 stream with targets, the log-softmax of each step's logits taken in double.
#include "eval/score.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "generate/generate.h"
#include "util/utf8.h"

namespace charlm {

ScoreTotals ScoreStream(const CharModel<float>& model, std::span<const int> ids, const ScoreVisitor& visit,
                        int chunk) {
  assert(ids.size() >= 2 && chunk >= 1);
  ScoreTotals totals;
  const std::size_t transitions = ids.size() - 1;
  const int v = model.spec().vocab_size;
  auto ws = model.MakeWorkspace(static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(chunk), transitions)), 1);
  auto state = model.MakeState(1);
  state.Zero();
  std::vector<float> scratch(static_cast<std::size_t>(v));  // (V)
  for (std::size_t start = 0; start < transitions;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(ws->max_steps), transitions - start));
    model.Forward(*ws, ids.data() + start, ids.data() + start + 1, steps, 1, state, {});
    const float* logits = WorkspaceLogits(*ws);  // (steps, V)
    for (int t = 0; t < steps; ++t) {
      const float* row = logits + static_cast<std::size_t>(t) * v;
      const std::size_t k = start + static_cast<std::size_t>(t);
      const double log_prob = static_cast<double>(row[ids[k + 1]]) - LogSumExp(row, v, scratch.data());
      CheckFiniteOutput(log_prob, model.origin(), "log-probability at character " + std::to_string(k + 1));
      totals.log_prob += log_prob;
      ++totals.predicted;
      if (visit) visit(k, log_prob);
    }
    start += static_cast<std::size_t>(steps);
  }
  if (totals.predicted > 0) CheckFinitePerplexity(-totals.log_prob / static_cast<double>(totals.predicted), model.origin());
  return totals;
}

TextScore ScoreIds(const CharModel<float>& model, std::span<const int> ids, int chunk) {
  std::vector<double> log_probs;
  log_probs.reserve(ids.size() - 1);
  ScoreStream(model, ids, [&](std::size_t, double log_prob) { log_probs.push_back(log_prob); }, chunk);
  return TextScoreOf(ids, std::move(log_probs));
}

TextScore TextScoreOf(std::span<const int> ids, std::vector<double> log_probs) {
  assert(ids.size() >= 2 && log_probs.size() == ids.size() - 1);
  TextScore score;
  score.ids.assign(ids.begin(), ids.end());
  score.log_probs = std::move(log_probs);
  ScoreTotals totals;
  for (double lp : score.log_probs) totals.log_prob += lp;
  totals.predicted = static_cast<std::int64_t>(score.log_probs.size());
  score.log_prob = totals.log_prob;
  score.perplexity = totals.perplexity();
  score.bits_per_char = totals.bits_per_char();
  return score;
}

double ScoreTotals::perplexity() const { return std::exp(-log_prob / static_cast<double>(predicted)); }
double ScoreTotals::bits_per_char() const { return -log_prob / static_cast<double>(predicted) / std::log(2.0); }

namespace {

double Bits(double log_prob) { return -log_prob / std::log(2.0); }

// xterm-256 backgrounds, green to red, one per bit of surprisal; black text stays readable on all of them.
constexpr int kScale[] = {46, 82, 118, 154, 190, 226, 220, 214, 208};
constexpr const char* kReset = "\x1b[0m";

std::string SummaryLine(const ScoreTotals& totals, const std::string& what) {
  char line[256];
  std::snprintf(line, sizeof line, ": log-probability %.4f nats over %lld characters, perplexity %.4f, %.4f bits per character\n",
                totals.log_prob, static_cast<long long>(totals.predicted), totals.perplexity(), totals.bits_per_char());
  return what + line;
}

// A JSON string of one character, as nlohmann writes it.
std::string JsonChar(char32_t c) { return nlohmann::json(EncodeUtf8(c)).dump(); }

}  // namespace

ScoreWriter::ScoreWriter(ScoreFormat format, std::ostream& out, const Vocab& vocab, std::span<const int> ids,
                         std::string what)
    : format_(format), out_(out), vocab_(vocab), ids_(ids), what_(std::move(what)) {}

void ScoreWriter::Begin() {
  switch (format_) {
    case ScoreFormat::kSummary:
      break;
    case ScoreFormat::kTsv:
      out_ << "position\tchar\tcode_point\tsurprisal_bits\tprobability\n";
      break;
    case ScoreFormat::kColour:
      out_ << EncodeUtf8(vocab_.CharAt(ids_[0]));
      break;
    case ScoreFormat::kJson:
      // The characters are known before they are scored: written first, so that nothing per character is held.
      out_ << "{\"first_char\":" << JsonChar(vocab_.CharAt(ids_[0])) << ",\"chars\":[";
      for (std::size_t k = 1; k < ids_.size(); ++k) out_ << (k > 1 ? "," : "") << JsonChar(vocab_.CharAt(ids_[k]));
      out_ << "],\"surprisal_bits\":[";
      break;
  }
}

void ScoreWriter::Add(std::size_t k, double log_prob) {
  const char32_t c = vocab_.CharAt(ids_[k + 1]);
  switch (format_) {
    case ScoreFormat::kSummary:
      break;
    case ScoreFormat::kTsv: {
      char fields[96];
      std::snprintf(fields, sizeof fields, "\tU+%04X\t%.4f\t%.6g\n", static_cast<unsigned>(c), Bits(log_prob),
                    std::exp(log_prob));
      out_ << (k + 1) << '\t' << PrintableCodePoint(c) << fields;
      break;
    }
    case ScoreFormat::kColour: {
      const double bits = Bits(log_prob);
      const int level = bits >= 8 ? 196 : kScale[static_cast<int>(std::max(bits, 0.0))];
      // A newline is shown as a coloured space and then the line break, so its surprisal is visible too.
      out_ << "\x1b[30;48;5;" << level << 'm' << (c == U'\n' ? std::string(" ") : EncodeUtf8(c)) << kReset;
      if (c == U'\n') out_ << '\n';
      break;
    }
    case ScoreFormat::kJson:
      out_ << (k > 0 ? "," : "") << nlohmann::json(Bits(log_prob)).dump();
      break;
  }
}

void ScoreWriter::End(const ScoreTotals& totals, const nlohmann::json& extra) {
  switch (format_) {
    case ScoreFormat::kSummary:
      out_ << SummaryLine(totals, what_);
      break;
    case ScoreFormat::kTsv:
      break;
    case ScoreFormat::kColour:
      out_ << kReset << "\nsurprisal: ";
      for (int b = 0; b < 9; ++b) out_ << "\x1b[30;48;5;" << kScale[b] << "m " << b << " " << kReset;
      out_ << "\x1b[30;48;5;196m 8+ " << kReset << " bits\n" << SummaryLine(totals, what_);
      break;
    case ScoreFormat::kJson: {
      nlohmann::ordered_json tail = {{"log_prob", totals.log_prob},
                                     {"perplexity", totals.perplexity()},
                                     {"bits_per_char", totals.bits_per_char()},
                                     {"predicted", totals.predicted}};
      for (const auto& [key, value] : extra.items()) tail[key] = value;
      const std::string members = tail.dump();  // {"log_prob":...}: its members close the object
      out_ << "]," << members.substr(1) << '\n';
      break;
    }
  }
}

namespace {

// A TextScore held whole, through the writer.
std::string Written(ScoreFormat format, const TextScore& score, const Vocab& vocab, const std::string& what = "") {
  std::ostringstream out;
  ScoreWriter writer(format, out, vocab, score.ids, what);
  writer.Begin();
  for (std::size_t k = 0; k < score.log_probs.size(); ++k) writer.Add(k, score.log_probs[k]);
  writer.End({score.log_prob, score.predicted()});
  return out.str();
}

}  // namespace

std::string FormatScoreSummary(const TextScore& score, const std::string& what) {
  return Written(ScoreFormat::kSummary, score, Vocab(), what);
}

std::string FormatScoreTsv(const TextScore& score, const Vocab& vocab) { return Written(ScoreFormat::kTsv, score, vocab); }

std::string FormatScoreColour(const TextScore& score, const Vocab& vocab) {
  const std::string text = Written(ScoreFormat::kColour, score, vocab);
  // Without the summary line the view ends with: that is FormatScoreSummary's.
  return text.substr(0, text.size() - SummaryLine({score.log_prob, score.predicted()}, "").size());
}

std::string FormatScoreJson(const TextScore& score, const Vocab& vocab) {
  return Written(ScoreFormat::kJson, score, vocab);
}

}  // namespace charlm
