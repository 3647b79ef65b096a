// Reads a run's folder (metrics, samples, config, baseline, run info, best.ckpt) and lays the page out with
// report/svg's charts.
#include "report/report.h"

#include <spdlog/spdlog.h>
#include "model/restore.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <thread>
#include <type_traits>

#include "format/checkpoint.h"
#include "format/output_guard.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "generate/generate.h"
#include "util/json_parse.h"
#include "report/svg.h"
#include "util/rng.h"
#include "model/summary.h"
#include "report/run_verdict.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using svg::EscapeXml;

constexpr std::uint64_t kMaxMetricsBytes = 256ull << 20;

std::optional<double> Number(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::string ReadIfPresent(const fs::path& path, std::uint64_t limit) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  return ReadRegularFile(path.string(), FileRole{"run file", "check the run folder", limit, "give the folder of a charlm run"});
}

std::optional<nlohmann::json> JsonFile(const fs::path& path) {
  const std::string text = ReadIfPresent(path, 16ull << 20);
  if (text.empty()) return std::nullopt;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string Format(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

const char* kCss = R"(body{font-family:sans-serif;margin:0 auto;max-width:1280px;padding:8px 12px;color:#222;line-height:1.4}
h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,540px),1fr));gap:10px}
.charts svg{background:#fff;border:1px solid #eee}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;word-break:break-all;background:#f7f7f7;padding:6px 8px;margin:.3em 0}
.muted{color:#777}.wrap{overflow-x:auto}.prefix{font-weight:bold;color:#555}
@media (max-width:600px){.charts{display:block;overflow-x:auto}.charts svg{min-width:560px;margin-bottom:10px}}
)";

// A generated text: its prefix marked, then the continuation.
std::string SampleBlock(const std::string& prefix, const std::string& continuation) {
  return "<pre><span class=\"prefix\">" + EscapeXml(prefix) + "</span>" + EscapeXml(continuation) + "</pre>\n";
}

std::string PageStart(const std::string& title, bool live) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  if (live) out += "<meta http-equiv=\"refresh\" content=\"30\">\n";
  out += "<title>" + EscapeXml(title) + "</title>\n<style>" + std::string(kCss) + "</style>\n</head>\n<body>\n";
  return out;
}

void Flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      Flatten(value, path, out);
    } else {
      // A string of blanks or control characters (data.separator's "\n") is shown as JSON, quoted and escaped:
      // as text it was an empty cell.
      const std::string text = value.is_string() ? value.get<std::string>() : std::string();
      const bool plain = value.is_string() && text.find_first_not_of(' ') != std::string::npos &&
                         std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
      out[path] = plain ? text : value.dump();
    }
  }
}

// Whether the run has a validation figure: an epoch's, or an eval row's (a run stopped by train.max_steps inside its
// first epoch has only those). The best is then the best validation, else the best training perplexity.
bool HasValidation(const RunData& run) {
  return std::any_of(run.rows.begin(), run.rows.end(), [](const MetricsRow& r) {
    return (r.kind == "epoch" || r.kind == "eval") && r.val_perplexity;
  });
}

// A row's training perplexity, from the epoch figure or a log row's running loss.
std::optional<double> BestEpochScore(const RunData& run, int* best_epoch, std::optional<std::int64_t>* best_step,
                                     const MetricsRow** best_row = nullptr) {
  std::optional<double> best;
  const bool has_val = HasValidation(run);
  for (const MetricsRow& r : run.rows) {
    // An "eval" row's validation (between epochs, or a time budget's last) can make best.ckpt too, so the page's
    // best is the checkpoint's.
    if (r.kind != "epoch" && !(has_val && r.kind == "eval")) continue;
    const std::optional<double> score = has_val ? r.val_perplexity : r.train_perplexity;
    if (score && std::isfinite(*score) && (!best || *score < *best)) {
      best = score;
      *best_epoch = r.epoch;
      *best_step = r.step;
      if (best_row != nullptr) *best_row = &r;
    }
  }
  return best;
}

// "2 epochs", or "1 epoch and 40% of epoch 2" for a run stopped mid-epoch: epochs counts finished epochs only
// (their "epoch" rows), and a later log or eval row says how far into the next one the run got.
std::string EpochsDone(const RunData& run) {
  int done = 0;
  double furthest = 0;
  for (const MetricsRow& r : run.rows) {
    if (r.kind == "epoch") done = std::max(done, r.epoch);
    furthest = std::max(furthest, r.EpochPosition());
  }
  std::string text = std::to_string(done) + " epoch" + (done == 1 ? "" : "s");
  const double fraction = furthest - done;
  if (fraction > 0 && fraction < 1) {
    text += " and " + Format("%.0f", 100 * fraction) + "% of epoch " + std::to_string(done + 1);
  }
  return text;
}

// The run's wall time: the last row's elapsed_s.
std::optional<double> WallTime(const RunData& run) {
  std::optional<double> wall;
  for (const MetricsRow& r : run.rows) {
    if (r.elapsed_s) wall = *r.elapsed_s;
  }
  return wall;
}

std::string WallTimeText(double seconds) { return Format("%.1f s", seconds); }

std::string Capitalized(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text;
}

// What the page's verdict rests on, from the files: the 5-gram's figure when it scored the whole validation split
// (baseline.json's whole_split; older files lack it and are taken as whole), the validations after the best one,
// and whether a time budget ended the run.
RunVerdictFacts VerdictFacts(const RunData& run, std::optional<double> best_val, int best_epoch,
                             const MetricsRow* best_row) {
  RunVerdictFacts facts;
  facts.best_val_perplexity = best_val;
  facts.best_epoch = best_epoch;
  if (run.baseline && run.baseline->is_object() && run.baseline->contains("val_perplexity") &&
      (*run.baseline)["val_perplexity"].is_number()) {
    const double ppl = (*run.baseline)["val_perplexity"].get<double>();
    const auto whole = run.baseline->find("whole_split");
    const bool comparable = whole == run.baseline->end() || !whole->is_boolean() || whole->get<bool>();
    if (comparable && std::isfinite(ppl) && ppl >= 1) facts.baseline_val_perplexity = ppl;
  }
  if (best_val && best_row != nullptr) {
    bool seen_best = false;
    for (const MetricsRow& r : run.rows) {
      if (seen_best && (r.kind == "epoch" || r.kind == "eval") && r.val_perplexity) ++facts.validations_since_best;
      seen_best = seen_best || &r == best_row;
    }
  }
  if (run.config && run.config->is_object()) {
    const auto train = run.config->find("train");
    if (train != run.config->end() && train->is_object()) {
      const auto minutes = train->find("max_minutes");
      facts.budgeted = minutes != train->end() && minutes->is_number() && minutes->get<double>() > 0;
    }
  }
  return facts;
}

// A series of `value` over the rows of the given kinds, against their place on the epoch axis.
svg::Series MakeSeries(std::span<const MetricsRow> rows, const std::string& name, const std::vector<std::string>& kinds,
                       std::optional<double> (*value)(const MetricsRow&)) {
  svg::Series s;
  s.name = name;
  for (const MetricsRow& r : rows) {
    if (std::find(kinds.begin(), kinds.end(), r.kind) == kinds.end()) continue;
    const std::optional<double> v = value(r);
    if (!v) continue;
    s.x.push_back(r.EpochPosition());
    s.y.push_back(*v);
  }
  s.markers = s.x.size() <= 30;
  return s;
}

// The kinds of rows that hold each curve: training perplexity is also in the log rows, validation in eval rows.
const std::vector<std::string> kTrainingRows = {"log", "epoch"}, kValidationRows = {"eval", "epoch"};

std::optional<double> TrainPpl(const MetricsRow& r) { return r.train_perplexity; }

// Training perplexity: an epoch's mean where the epoch has ended, and the log rows' running figures only past the
// last ended epoch (a live run's progress). A running figure part-way through an ended epoch is of another kind
// than the epoch's mean, and drew kinks among the means (a walkthrough saw them at epochs 6, 10 and 15).
svg::Series TrainingSeries(const RunData& run, const std::string& name) {
  double last_epoch_end = -1;
  for (const MetricsRow& r : run.rows) {
    if (r.kind == "epoch") last_epoch_end = std::max(last_epoch_end, r.EpochPosition());
  }
  std::vector<MetricsRow> shown;
  for (const MetricsRow& r : run.rows) {
    if (r.kind == "epoch" || (r.kind == "log" && r.EpochPosition() > last_epoch_end)) shown.push_back(r);
  }
  return MakeSeries(shown, name, kTrainingRows, TrainPpl);
}

std::optional<double> ValPpl(const MetricsRow& r) { return r.val_perplexity; }
std::optional<double> Lr(const MetricsRow& r) { return r.learning_rate; }
std::optional<double> Tps(const MetricsRow& r) { return r.tokens_per_s; }
std::optional<double> GradNorm(const MetricsRow& r) { return r.grad_norm; }

double Log2(double v) { return std::log2(v); }
double Exp2(double v) { return std::exp2(v); }

// "2.51 (1.33 bpc)": a perplexity to three digits or more, and its bits per character.
std::string PerplexityText(double ppl) {
  return Format(ppl < 10 ? "%.2f" : ppl < 100 ? "%.1f" : "%.0f", ppl) + " (" + Format("%.2f", std::log2(ppl)) + " bpc)";
}

// Perplexity on a log axis is bits per character on a linear one (log2 of it): one chart reads both, one at each
// side.
svg::Chart PerplexityChart(const std::string& title) {
  svg::Chart chart;
  chart.title = title;
  chart.x_label = "epoch";
  chart.y_label = "perplexity (log scale)";
  chart.y_scale = svg::ScaleKind::kLog;
  chart.right_axis = svg::RightAxis{"bits per character", Log2, Exp2};
  return chart;
}

std::string LossChart(const RunData& run) {
  svg::Chart chart = PerplexityChart("Perplexity and bits per character by epoch");
  chart.series.push_back(TrainingSeries(run, "training"));
  svg::Series val = MakeSeries(run.rows, "validation", kValidationRows, ValPpl);
  if (!val.x.empty()) chart.series.push_back(std::move(val));
  int best_epoch = 0;
  std::optional<std::int64_t> best_step;
  const MetricsRow* best_row = nullptr;
  if (const auto best = BestEpochScore(run, &best_epoch, &best_step, &best_row)) {
    // On the curve's point: an eval row sits part-way into its epoch, not at the epoch's end.
    chart.marks.push_back({std::string(run.has_best_checkpoint ? "best.ckpt " : "best ") + PerplexityText(*best),
                           best_row->EpochPosition(), *best});
  }
  if (run.baseline) {
    const std::optional<double> ppl = Number(*run.baseline, "val_perplexity");
    const std::optional<double> order = Number(*run.baseline, "order");
    if (ppl && *ppl > 0) {
      const std::string label = (order ? Format("%.0f", *order) + "-gram" : std::string("n-gram")) + " baseline " +
                                PerplexityText(*ppl);
      chart.references.push_back({label, *ppl, "#555"});
    }
  }
  return svg::RenderChart(chart);
}

// A figure the epoch rows hold as the epoch's mean (learning rate, tokens/s, gradient norm): those rows; before
// the first epoch has ended, the log rows, each of which holds the figure at its step.
struct PerEpochFigure {
  svg::Series series;
  bool from_log_rows = false;
};

PerEpochFigure PerEpochSeries(const RunData& run, const std::string& name,
                              std::optional<double> (*value)(const MetricsRow&)) {
  PerEpochFigure figure{MakeSeries(run.rows, name, {"epoch"}, value)};
  if (figure.series.x.empty()) figure = {MakeSeries(run.rows, name, {"log"}, value), true};
  return figure;
}

std::string PerEpochChart(PerEpochFigure figure, const std::string& title, const std::string& y_label, bool log_y) {
  svg::Chart chart;
  chart.title = title + (figure.from_log_rows ? ", at each log point" : ", mean per epoch");
  chart.x_label = "epoch";
  chart.y_label = y_label + (log_y ? " (log scale)" : "");
  chart.y_scale = log_y ? svg::ScaleKind::kLog : svg::ScaleKind::kLinear;
  chart.series.push_back(std::move(figure.series));
  return svg::RenderChart(chart);
}

// When every learning rate plotted is the same, the line that says so: a chart would take a panel to say one number.
std::optional<std::string> ConstantRateLine(const PerEpochFigure& lr) {
  const std::vector<double>& rates = lr.series.y;
  if (rates.empty()) return std::nullopt;
  const auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
  if (*hi - *lo > 1e-9 * std::abs(*hi)) return std::nullopt;
  const std::string n = std::to_string(rates.size());
  std::string where;
  if (lr.from_log_rows) {
    where = rates.size() == 1 ? " at the first log point" : ", constant over the " + n + " log points so far";
  } else {
    where = rates.size() == 1 ? " in epoch " + Format("%.0f", lr.series.x[0]) : ", constant over all " + n + " epochs";
  }
  return "<p>Learning rate <b>" + Format("%.3g", *hi) + "</b>" + where + ".</p>\n";
}

std::string Row(const std::string& key, const std::string& value) {
  return "<tr><th>" + EscapeXml(key) + "</th><td>" + EscapeXml(value) + "</td></tr>\n";
}

std::string InfoValue(const nlohmann::json& info, const char* key) {
  if (!info.contains(key)) return "";
  const auto& v = info[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return WithThousandsSeparators(v.get<std::int64_t>());
  return v.dump();
}

}  // namespace

double MetricsRow::EpochPosition() const {
  if (kind != "epoch" && epoch_fraction) return epoch - 1 + *epoch_fraction;
  return epoch;
}

namespace {

// Calls `row` with each line of a JSONL file that is an object with a whole-number "epoch"; other lines (a torn
// last line, garbage) are passed over, and counted in `skipped` when given, except blank lines and rows that have
// no epoch by design (the "init" row of a fine-tuning run, whose checkpoint goes to `init_from` when given).
template <typename RowFn>
void ForEachEpochRow(std::string_view jsonl, RowFn row, MetricsSkips* skipped = nullptr,
                     std::string* init_from = nullptr) {
  std::size_t start = 0;
  int line = 0;
  while (start < jsonl.size()) {
    std::size_t end = jsonl.find('\n', start);
    if (end == std::string_view::npos) end = jsonl.size();
    const std::string_view text = jsonl.substr(start, end - start);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    start = end + 1;
    ++line;
    if (j.is_discarded() || !j.is_object() || !j.contains("epoch") || !ExactInteger<int>(j["epoch"])) {
      const bool blank = text.find_first_not_of(" \t\r") == std::string_view::npos;
      const bool init_row = j.is_object() && j.contains("kind") && j["kind"] == "init";
      if (skipped != nullptr && !blank && !init_row && skipped->lines++ == 0) skipped->first_line = line;
      if (init_row && init_from != nullptr && j.contains("init_from") && j["init_from"].is_string()) {
        *init_from = j["init_from"].get<std::string>();
      }
      continue;
    }
    row(j, line);
  }
}

// A resumed run writes a row again for the same point: the later one replaces the earlier, in its place.
template <typename Row, typename Key>
void KeepLatest(std::vector<Row>& rows, std::map<Key, std::size_t>& index, const std::type_identity_t<Key>& key,
                const Row& row) {
  if (const auto it = index.find(key); it != index.end()) {
    rows[it->second] = row;
  } else {
    index[key] = rows.size();
    rows.push_back(row);
  }
}

// An eval row holds its step but not how far into its epoch it was taken. Within a run the place on the epoch axis
// grows linearly with the step (one batch a step), so it is read off the rows around it that say where they are
// (epoch ends, log rows, and step 0 at the start); after the last of them, at the pace between the last two.
void PlaceEvalRows(std::vector<MetricsRow>& rows) {
  std::vector<std::pair<double, double>> known = {{0, 0}};  // (step, place)
  for (const MetricsRow& r : rows) {
    if (r.step && (r.kind == "epoch" || r.epoch_fraction)) known.emplace_back(static_cast<double>(*r.step), r.EpochPosition());
  }
  std::sort(known.begin(), known.end());
  for (MetricsRow& r : rows) {
    if (r.kind == "epoch" || r.epoch_fraction || !r.step) continue;
    const double step = static_cast<double>(*r.step);
    auto after = std::lower_bound(known.begin(), known.end(), step,
                                  [](const std::pair<double, double>& k, double s) { return k.first < s; });
    if (after == known.begin()) ++after;  // a step at or before 0: the first interval
    if (after == known.end()) --after;    // past the last known row: the pace of the last interval
    const auto before = after == known.begin() ? after : std::prev(after);
    double place = after->second;
    if (after->first > before->first) {
      place = before->second + (after->second - before->second) * (step - before->first) / (after->first - before->first);
    }
    r.epoch_fraction = std::clamp(place - (r.epoch - 1), 0.0, 1.0);
  }
}

}  // namespace

constexpr double kMaxElapsedSeconds = 100.0 * 365 * 24 * 3600;

std::vector<MetricsRow> ParseMetrics(std::string_view jsonl, MetricsSkips* skipped, std::string* init_from) {
  std::vector<MetricsRow> rows;
  std::map<std::tuple<std::string, std::int64_t, int>, std::size_t> index;  // (kind, step or -1, epoch) -> row
  // A perplexity is at least 1 (a probability is at most 1); anything else would draw as "-nan bits per character".
  const auto perplexity = [&](std::optional<double> value, int line) -> std::optional<double> {
    if (!value || (std::isfinite(*value) && *value >= 1)) return value;
    if (skipped != nullptr && skipped->values++ == 0) skipped->first_value_line = line;
    return std::nullopt;
  };
  ForEachEpochRow(jsonl, [&](const nlohmann::json& j, int line) {
    MetricsRow r;
    if (j.contains("kind") && j["kind"].is_string()) r.kind = j["kind"].get<std::string>();
    if (r.kind != "epoch" && r.kind != "log" && r.kind != "eval") return;
    r.epoch = *ExactInteger<int>(j["epoch"]);
    if (j.contains("step")) r.step = ExactInteger<std::int64_t>(j["step"]);
    r.epoch_fraction = Number(j, "epoch_fraction");
    r.train_perplexity = Number(j, "train_perplexity");
    if (!r.train_perplexity) {
      if (const auto loss = Number(j, "train_loss")) r.train_perplexity = std::exp(*loss);
    }
    r.train_perplexity = perplexity(r.train_perplexity, line);
    r.val_perplexity = perplexity(Number(j, "val_perplexity"), line);
    r.learning_rate = Number(j, "learning_rate");
    r.tokens_per_s = Number(j, "tokens_per_s");
    r.grad_norm = Number(j, "grad_norm");
    // Seconds since the run began: not negative, and not past a century, or the page would print a
    // 300-digit wall time (a hostile pass wrote 1e308); counted with the dropped values.
    r.elapsed_s = Number(j, "elapsed_s");
    if (r.elapsed_s && !(*r.elapsed_s >= 0 && *r.elapsed_s < kMaxElapsedSeconds)) {
      if (skipped != nullptr && skipped->values++ == 0) skipped->first_value_line = line;
      r.elapsed_s.reset();
    }
    KeepLatest(rows, index, std::make_tuple(r.kind, r.step.value_or(-1), r.step ? 0 : r.epoch), r);
  }, skipped, init_from);
  std::stable_sort(rows.begin(), rows.end(), [](const MetricsRow& a, const MetricsRow& b) {
    if (a.step && b.step && *a.step != *b.step) return *a.step < *b.step;
    return a.EpochPosition() < b.EpochPosition();
  });
  PlaceEvalRows(rows);
  return rows;
}

namespace {

// An older row's text began with its prefix as the model read it: the prefix itself, or with its line breaks made
// spaces or dropped (data.newline). Strips that start; false when the text starts with none of them.
bool StripPrefix(std::string& text, const std::string& prefix) {
  std::string spaced = prefix, dropped;
  for (char& c : spaced) c = c == '\n' || c == '\r' ? ' ' : c;
  for (const char c : prefix) if (c != '\n' && c != '\r') dropped += c;
  for (const std::string& start_text : {prefix, spaced, dropped}) {
    if (text.starts_with(start_text)) {
      text.erase(0, start_text.size());
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<SampleRow> ParseSamples(std::string_view jsonl) {
  std::vector<SampleRow> rows;
  std::map<std::pair<int, std::string>, std::size_t> index;
  ForEachEpochRow(jsonl, [&](const nlohmann::json& j, int) {
    if (!j.contains("prefix") || !j["prefix"].is_string() || !j.contains("text") || !j["text"].is_string()) return;
    SampleRow s{*ExactInteger<int>(j["epoch"]), j["prefix"].get<std::string>(), j["text"].get<std::string>()};
    const std::optional<int> format = j.contains("format") ? ExactInteger<int>(j["format"]) : std::nullopt;
    if (!format || *format < kSamplesFormat) s.text_has_prefix = !StripPrefix(s.text, s.prefix);
    KeepLatest(rows, index, std::make_pair(s.epoch, s.prefix), s);
  });
  std::stable_sort(rows.begin(), rows.end(), [](const SampleRow& a, const SampleRow& b) { return a.epoch < b.epoch; });
  return rows;
}

namespace {

// What ParseMetrics passed over, said once on the log (stderr); a file with no row left is an error, since a page
// of "0 epochs" would pass for a run that had not trained.
void WarnSkipped(const std::string& path, const MetricsSkips& skipped, bool no_rows) {
  if (no_rows) {
    throw UserError(path + " has no readable row" +
                    (skipped.lines > 0 ? " (" + std::to_string(skipped.lines) + " malformed line(s), the first at line " +
                                             std::to_string(skipped.first_line) + ")"
                                       : "") +
                    ": give the folder of a run that has trained at least one epoch");
  }
  if (skipped.lines > 0) {
    spdlog::warn("{}: skipped {} malformed line(s) (not a JSON row with a whole-number epoch), the first at line {}",
                 path, skipped.lines, skipped.first_line);
  }
  if (skipped.values > 0) {
    spdlog::warn("{}: ignored {} value(s) out of range (perplexities below 1 or not finite, elapsed seconds negative or "
                 "beyond a century), the first at line {}", path,
                 skipped.values, skipped.first_value_line);
  }
}

}  // namespace

RunData LoadRun(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UserError("report: " + dir + " is not a folder: give a run's train.out_dir, e.g. charlm report runs/default");
  }
  const fs::path metrics = fs::path(dir) / "metrics.jsonl";
  if (!fs::is_regular_file(metrics, ec)) {
    throw UserError("report: " + dir + " holds no metrics.jsonl: give the train.out_dir of a run that has trained at "
                    "least one epoch");
  }
  RunData run;
  run.dir = dir;
  run.name = fs::path(dir).lexically_normal().filename().string();
  if (run.name.empty()) run.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  MetricsSkips skipped;
  run.rows = ParseMetrics(ReadRegularFile(metrics.string(), FileRole{"metrics file", "check the run folder", kMaxMetricsBytes, "give the folder of a charlm run"}),
                          &skipped, &run.init_from);
  WarnSkipped(metrics.string(), skipped, run.rows.empty());
  run.samples = ParseSamples(ReadIfPresent(fs::path(dir) / "samples.jsonl", kMaxMetricsBytes));
  run.config = JsonFile(fs::path(dir) / "config.json");
  for (const char* name : {"best.ckpt", "last.ckpt"}) {
    if (run.config) break;
    const fs::path ckpt = fs::path(dir) / name;
    if (!fs::is_regular_file(ckpt, ec)) continue;
    try {
      run.config = LoadCheckpoint(ckpt.string()).config;
    } catch (const UserError&) {
      // Unreadable checkpoint: the page goes without the config.
    }
  }
  run.baseline = JsonFile(fs::path(dir) / "baseline.json");
  run.info = JsonFile(fs::path(dir) / "run_info.json");
  run.has_best_checkpoint = fs::is_regular_file(fs::path(dir) / "best.ckpt", ec);
  return run;
}

std::optional<ModelFigures> ComputeModelFigures(const std::string& dir, const std::function<bool()>& stop_requested) {
  const fs::path best = fs::path(dir) / "best.ckpt";
  std::error_code ec;
  if (!fs::is_regular_file(best, ec)) return std::nullopt;
  RestoredModel restored = RestoreModel(best.string());
  ModelFigures figures;
  figures.checkpoint = best.string();
  figures.vocab_size = restored.vocab.size();
  figures.parameters = static_cast<std::int64_t>(restored.model.params().size());
  const Config& config = restored.config;
  figures.summary_table = ModelSummary(MakeModelSpec(config.model, restored.vocab.size()), config.train.batch_size,
                                       config.train.num_steps);
  const SamplingOptions sampling = SamplingFromConfig(config.generate);
  Rng rng(0);
  std::vector<std::string> prefixes = config.generate.prefixes;
  if (prefixes.empty()) {
    // Without configured prefixes the run sampled from a prefix of its own corpus; samples.jsonl says which.
    for (const SampleRow& sample : ParseSamples(ReadIfPresent(fs::path(dir) / "samples.jsonl", kMaxMetricsBytes))) {
      if (std::find(prefixes.begin(), prefixes.end(), sample.prefix) == prefixes.end()) prefixes.push_back(sample.prefix);
    }
  }
  const auto stopped = [&] { return stop_requested && stop_requested(); };
  for (const std::string& prefix : prefixes) {
    try {
      std::string text = stopped() ? "" : GenerateParts(restored.model, restored.vocab, prefix, sampling, rng,
                                                        UnknownPolicy::kSkip, config.data.newline, stopped).continuation;
      figures.continuations.emplace_back(prefix, stopped() ? " (not generated: the run was stopped)" : std::move(text));
    } catch (const UserError& e) {
      figures.continuations.emplace_back(prefix, std::string(" (") + e.what() + ")");
    }
  }
  return figures;
}

std::string RenderRunReport(const RunData& run, const std::optional<ModelFigures>& figures,
                            const ReportOptions& options) {
  std::string out = PageStart("charlm report: " + run.name, options.live);
  out += "<h1>charlm report: " + EscapeXml(run.dir) + "</h1>\n";
  int best_epoch = 0;
  std::optional<std::int64_t> best_step;
  const MetricsRow* best_row = nullptr;
  const std::optional<double> best = BestEpochScore(run, &best_epoch, &best_step, &best_row);
  const bool has_val = HasValidation(run);
  const std::optional<double> wall = WallTime(run);
  out += "<p>";
  if (best) {
    out += "Best " + std::string(has_val ? "validation" : "training") + " perplexity <b>" + Format("%.3f", *best) +
           "</b> (" + Format("%.3f", std::log2(*best)) + " bits per character) " +
           // An eval row (a step validation, a time budget's last) is part-way into its epoch: "epoch 23" would
           // count one epoch more than `train` says were done.
           (best_row->kind == "eval" && best_row->step
                ? "at step " + std::to_string(*best_row->step) + ", part-way into epoch " + std::to_string(best_epoch)
                : "at epoch " + std::to_string(best_epoch)) +
           "; ";
  }
  out += EpochsDone(run);
  if (wall) out += " in " + WallTimeText(*wall);
  // The config says whether there is a validation split; rows without one may only mean no epoch ended yet.
  const nlohmann::json* fraction = nullptr;
  if (run.config && run.config->is_object() && run.config->contains("data") && (*run.config)["data"].is_object() &&
      (*run.config)["data"].contains("val_fraction")) {
    fraction = &(*run.config)["data"]["val_fraction"];
  }
  const bool no_val_split = fraction != nullptr ? fraction->is_number() && fraction->get<double>() == 0 : !has_val;
  if (no_val_split) out += "; no validation split (data.val_fraction is 0): best.ckpt is chosen by training perplexity";
  if (options.live) out += ". <span class=\"muted\">Training: this page reloads every 30 s.</span>";
  out += "</p>\n";
  if (!run.init_from.empty()) {
    out += "<p>Fine-tuned from <code>" + EscapeXml(run.init_from) + "</code> (train --init-from).</p>\n";
  }
  // The same verdict as the end of `train`; a page drawn while training names only the 5-gram's, since the
  // trend of a run still going is not its end.
  RunVerdictFacts facts = VerdictFacts(run, has_val ? best : std::nullopt, best_epoch, best_row);
  facts.on_page = true;
  facts.fine_tuned = !run.init_from.empty();
  facts.dynamic_eval_command = "charlm eval --checkpoint " + (fs::path(run.dir) / "best.ckpt").string() +
                               " --split val --dynamic --mix-ngram";
  const RunVerdict verdict = JudgeRun(facts);
  if (!verdict.against_baseline.empty()) out += "<p class=\"verdict\">" + EscapeXml(Capitalized(verdict.against_baseline)) + ".</p>\n";
  if (!verdict.trend.empty() && !options.live) out += "<p class=\"verdict\">" + EscapeXml(Capitalized(verdict.trend)) + ".</p>\n";

  out += "<h2>Learning curves</h2>\n<div class=\"charts\">\n" + LossChart(run) + "</div>\n";

  out += "<h2>Samples during training</h2>\n";
  if (run.samples.empty()) {
    out += "<p class=\"muted\">None yet (generate.every sets how often they are taken; 0 = never).</p>\n";
  }
  int shown_epoch = -1;
  for (const SampleRow& s : run.samples) {
    if (s.epoch != shown_epoch) {
      out += "<h3>epoch " + std::to_string(s.epoch) + "</h3>\n";
      shown_epoch = s.epoch;
    }
    out += s.text_has_prefix ? "<pre>" + EscapeXml(s.text) + "</pre>\n" : SampleBlock(s.prefix, s.text);
  }
  if (figures) {
    out += "<h2>Continuations from best.ckpt</h2>\n<p class=\"muted\">" + EscapeXml(figures->checkpoint) +
           ", seed 0, the run's generate settings.</p>\n";
    for (const auto& [prefix, text] : figures->continuations) out += SampleBlock(prefix, text);
  }

  // The optimizer's figures come after the samples: they explain a curve, the samples are what a run is for.
  out += "<h2>Learning rate, speed and gradient norm</h2>\n";
  const PerEpochFigure lr = PerEpochSeries(run, "learning rate", Lr);
  const std::optional<std::string> constant_rate = ConstantRateLine(lr);
  if (constant_rate) out += *constant_rate;
  out += "<div class=\"charts\">\n";
  if (!constant_rate) out += PerEpochChart(lr, "Learning rate", "learning rate", true);
  out += PerEpochChart(PerEpochSeries(run, "tokens/s", Tps), "Training speed", "tokens/s", false);
  out += PerEpochChart(PerEpochSeries(run, "gradient norm", GradNorm), "Gradient norm before clipping", "gradient norm",
                       true);
  out += "</div>\n";

  out += "<h2>Run</h2>\n<div class=\"wrap\"><table>\n";
  if (figures) {
    out += Row("vocabulary size", WithThousandsSeparators(figures->vocab_size));
    out += Row("parameters", WithThousandsSeparators(figures->parameters));
  }
  if (run.info) {
    for (const auto& [key, label] : std::vector<std::pair<const char*, const char*>>{
             {"corpus", "corpus"}, {"corpus_chars", "corpus characters"}, {"train_chars", "training split"},
             {"val_chars", "validation split"}, {"test_chars", "test split"}, {"threads", "threads"},
             {"machine", "machine"}, {"charlm_version", "charlm version"}}) {
      const std::string value = InfoValue(*run.info, key);
      if (!value.empty()) out += Row(label, value);
    }
  }
  if (wall) out += Row("wall time", WallTimeText(*wall));
  out += "</table></div>\n";
  if (figures) out += "<h2>Model</h2>\n<div class=\"wrap\"><pre>" + EscapeXml(figures->summary_table) + "</pre></div>\n";
  if (run.config) {
    std::map<std::string, std::string> flat;
    Flatten(*run.config, "", flat);
    out += "<h2>Config</h2>\n<div class=\"wrap\"><table>\n";
    for (const auto& [key, value] : flat) out += Row(key, value);
    out += "</table></div>\n";
  }
  out += "</body>\n</html>\n";
  return out;
}

std::string RenderComparison(const std::vector<RunData>& runs) {
  std::string out = PageStart("charlm comparison", false);
  out += "<h1>charlm comparison: " + std::to_string(runs.size()) + " runs</h1>\n";
  // Keys whose values differ between the runs: what the comparison is about.
  std::vector<std::map<std::string, std::string>> flats;
  std::map<std::string, bool> differs;
  for (const RunData& run : runs) {
    flats.emplace_back();
    if (run.config) Flatten(*run.config, "", flats.back());
  }
  for (const auto& flat : flats) {
    for (const auto& [key, value] : flat) {
      for (const auto& other : flats) {
        const auto it = other.find(key);
        if (it == other.end() || it->second != value) differs[key] = true;
      }
    }
  }
  differs.erase("train.out_dir");
  out += "<div class=\"wrap\"><table>\n<tr><th>run</th><th>best perplexity</th><th>at epoch</th><th>epochs</th>"
         "<th>wall time</th><th>parameters</th>";
  for (const auto& [key, d] : differs) out += "<th>" + EscapeXml(key) + "</th>";
  out += "</tr>\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    int best_epoch = 0;
    std::optional<std::int64_t> best_step;
    const auto best = BestEpochScore(runs[i], &best_epoch, &best_step);
    // Which split the best is of: a run without a validation split is judged on its training perplexity.
    const bool val = HasValidation(runs[i]);
    const std::optional<double> wall = WallTime(runs[i]);
    const std::string parameters = runs[i].info ? InfoValue(*runs[i].info, "parameters") : "";
    out += "<tr><td>" + EscapeXml(runs[i].dir) + "</td><td>" +
           (best ? Format("%.3f", *best) + (val ? " (validation)" : " (training: no validation split)") : "-") +
           "</td><td>" + (best ? std::to_string(best_epoch) : "-") + "</td><td>" + EpochsDone(runs[i]) + "</td><td>" +
           (wall ? WallTimeText(*wall) : "-") + "</td><td>" + EscapeXml(parameters.empty() ? "-" : parameters) +
           "</td>";
    for (const auto& [key, d] : differs) {
      const auto it = flats[i].find(key);
      out += "<td>" + EscapeXml(it == flats[i].end() ? "" : it->second) + "</td>";
    }
    out += "</tr>\n";
  }
  out += "</table></div>\n<div class=\"charts\">\n";
  // Each run keeps its colour (its place in the palette) in both charts.
  for (const bool validation : {true, false}) {
    svg::Chart chart = PerplexityChart(std::string(validation ? "Validation" : "Training") +
                                       " perplexity and bits per character by epoch");
    for (const RunData& run : runs) {
      chart.series.push_back(validation ? MakeSeries(run.rows, run.name, kValidationRows, ValPpl)
                                        : TrainingSeries(run, run.name));
    }
    const bool any = std::any_of(chart.series.begin(), chart.series.end(), [](const svg::Series& s) { return !s.x.empty(); });
    if (any || !validation) out += svg::RenderChart(chart);  // no validation split in any run: the training chart alone
  }
  out += "</div>\n</body>\n</html>\n";
  return out;
}

std::string MachineDescription() {
  std::string cpu;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) cpu = line.substr(std::min(line.size(), colon + 2));
      break;
    }
  }
  struct utsname names {};
  std::string system = ::uname(&names) == 0 ? std::string(names.sysname) + " " + names.machine : "";
  std::string out = cpu.empty() ? system : cpu + ", " + system;
  out += ", " + std::to_string(std::thread::hardware_concurrency()) + " logical cores";
  return out;
}

void RunReport(const ReportCommand& command, std::ostream& out) {
  if (command.run_dirs.empty()) throw UserError("report needs a run folder: e.g. charlm report runs/default");
  if (command.run_dirs.size() > 1 && command.out.empty()) {
    throw UserError("report of " + std::to_string(command.run_dirs.size()) +
                    " runs needs --out FILE for the comparison page: e.g. --out compare.html");
  }
  std::vector<RunData> runs;
  for (const std::string& dir : command.run_dirs) runs.push_back(LoadRun(dir));
  std::string path = command.out;
  if (path.empty()) path = (fs::path(runs[0].dir) / "report.html").string();
  // Every file the page is made from is an input the page must not replace.
  std::vector<CommandInput> inputs;
  for (const std::string& dir : command.run_dirs) {
    for (const std::string& name : RunFileNames()) {
      if (name != "report.html") inputs.push_back({(fs::path(dir) / name).string(), "input (run " + dir + "'s " + name + ")"});
    }
    // The run's text is its file too, wherever it lies (--force replaced it: a hostile pass).
    for (const std::string& corpus : RunCorpusPaths(dir)) inputs.push_back({corpus, "input (run " + dir + "'s corpus)"});
  }
  CheckOutputPath(path, command.out.empty() ? "the default page" : "--out", inputs, OutputKind::kHtml, command.force);
  std::string page;
  if (runs.size() == 1) {
    page = RenderRunReport(runs[0], ComputeModelFigures(runs[0].dir));
  } else {
    page = RenderComparison(runs);
  }
  WriteFileAtomically(path, page, "HTML page");
  out << path << '\n';
}

}  // namespace charlm
