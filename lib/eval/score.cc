// Scoring a text: one batch-1 stream with targets, the log-softmax of each step's logits taken in double.
#include "eval/score.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "generate/generate.h"
#include "util/utf8.h"

namespace charlm {

TextScore ScoreIds(const CharModel<float>& model, std::span<const int> ids, int chunk) {
  assert(ids.size() >= 2 && chunk >= 1);
  TextScore score;
  const std::size_t transitions = ids.size() - 1;
  const int v = model.spec().vocab_size;
  auto ws = model.MakeWorkspace(static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(chunk), transitions)), 1);
  auto state = model.MakeState(1);
  state.Zero();
  std::vector<float> scratch(static_cast<std::size_t>(v));  // (V)
  score.log_probs.reserve(transitions);
  for (std::size_t start = 0; start < transitions;) {
    const int steps = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(ws->max_steps), transitions - start));
    model.Forward(*ws, ids.data() + start, ids.data() + start + 1, steps, 1, state, {});
    const float* logits = WorkspaceLogits(*ws);  // (steps, V)
    for (int t = 0; t < steps; ++t) {
      const float* row = logits + static_cast<std::size_t>(t) * v;
      const int target = ids[start + static_cast<std::size_t>(t) + 1];
      score.log_probs.push_back(static_cast<double>(row[target]) - LogSumExp(row, v, scratch.data()));
      CheckFiniteOutput(score.log_probs.back(), model.origin(),
                        "log-probability at character " + std::to_string(score.log_probs.size()));
    }
    start += static_cast<std::size_t>(steps);
  }
  return TextScoreOf(ids, std::move(score.log_probs));
}

TextScore TextScoreOf(std::span<const int> ids, std::vector<double> log_probs) {
  assert(ids.size() >= 2 && log_probs.size() == ids.size() - 1);
  TextScore score;
  score.ids.assign(ids.begin(), ids.end());
  score.log_probs = std::move(log_probs);
  for (double lp : score.log_probs) score.log_prob += lp;
  const double mean = -score.log_prob / static_cast<double>(score.log_probs.size());
  score.perplexity = std::exp(mean);
  score.bits_per_char = mean / std::log(2.0);
  return score;
}

std::string FormatScoreSummary(const TextScore& score, const std::string& what) {
  char line[256];
  std::snprintf(line, sizeof line, ": log-probability %.4f nats over %lld characters, perplexity %.4f, %.4f bits per character\n",
                score.log_prob, static_cast<long long>(score.predicted()), score.perplexity, score.bits_per_char);
  return what + line;
}

namespace {

double Bits(double log_prob) { return -log_prob / std::log(2.0); }

}  // namespace

std::string FormatScoreTsv(const TextScore& score, const Vocab& vocab) {
  std::string out = "position\tchar\tcode_point\tsurprisal_bits\tprobability\n";
  char fields[96];
  for (std::size_t k = 0; k < score.log_probs.size(); ++k) {
    const char32_t c = vocab.CharAt(score.ids[k + 1]);
    std::snprintf(fields, sizeof fields, "\tU+%04X\t%.4f\t%.6g\n", static_cast<unsigned>(c), Bits(score.log_probs[k]),
                  std::exp(score.log_probs[k]));
    out += std::to_string(k + 1) + "\t" + PrintableCodePoint(c) + fields;
  }
  return out;
}

std::string FormatScoreColour(const TextScore& score, const Vocab& vocab) {
  // xterm-256 backgrounds, green to red, one per bit of surprisal; black text stays readable on all of them.
  static constexpr int kScale[] = {46, 82, 118, 154, 190, 226, 220, 214, 208};
  const std::string reset = "\x1b[0m";
  std::string out = EncodeUtf8(vocab.CharAt(score.ids[0]));
  for (std::size_t k = 0; k < score.log_probs.size(); ++k) {
    const char32_t c = vocab.CharAt(score.ids[k + 1]);
    const double bits = Bits(score.log_probs[k]);
    const int level = bits >= 8 ? 196 : kScale[static_cast<int>(std::max(bits, 0.0))];
    // A newline is shown as a coloured space and then the line break, so its surprisal is visible too.
    out += "\x1b[30;48;5;" + std::to_string(level) + "m" + (c == U'\n' ? std::string(" ") : EncodeUtf8(c)) + reset;
    if (c == U'\n') out += '\n';
  }
  out += reset + "\n";
  out += "surprisal: ";
  for (int b = 0; b < 9; ++b) out += "\x1b[30;48;5;" + std::to_string(kScale[b]) + "m " + std::to_string(b) + " " + reset;
  out += "\x1b[30;48;5;196m 8+ " + reset + " bits\n";
  return out;
}

std::string FormatScoreJson(const TextScore& score, const Vocab& vocab) {
  nlohmann::json chars = nlohmann::json::array(), bits = nlohmann::json::array();
  for (std::size_t k = 0; k < score.log_probs.size(); ++k) {
    chars.push_back(EncodeUtf8(vocab.CharAt(score.ids[k + 1])));
    bits.push_back(Bits(score.log_probs[k]));
  }
  return nlohmann::json{{"first_char", EncodeUtf8(vocab.CharAt(score.ids[0]))},
                        {"chars", chars},
                        {"surprisal_bits", bits},
                        {"log_prob", score.log_prob},
                        {"perplexity", score.perplexity},
                        {"bits_per_char", score.bits_per_char},
                        {"predicted", score.predicted()}}
             .dump() + "\n";
}

}  // namespace charlm
