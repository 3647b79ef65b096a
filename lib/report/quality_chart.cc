// Validation loss against minutes for docs/quality.md, drawn with the report's SVG charts.
#include "report/quality_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "report/svg.h"
#include "util/errors.h"

namespace charlm {
namespace {

std::string FileName(const std::string& path) { return std::filesystem::path(path).filename().string(); }

double FiniteNumber(const nlohmann::json& row, const char* key, const std::string& where) {
  if (!row.contains(key) || !row[key].is_number() || !std::isfinite(row[key].get<double>())) {
    throw UserError(where + ": \"" + key + "\" is missing or not a finite number; rerun bench/quality_per_minute.py");
  }
  return row[key].get<double>();
}

}  // namespace

std::vector<QualityResult> ParseQualityResults(const std::string& jsonl, const std::string& source) {
  std::vector<QualityResult> results;
  std::size_t start = 0;
  for (int line = 1; start < jsonl.size(); ++line) {
    std::size_t end = jsonl.find('\n', start);
    if (end == std::string::npos) end = jsonl.size();
    const std::string text = jsonl.substr(start, end - start);
    start = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + ":" + std::to_string(line);
    const nlohmann::json row = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("corpus") || !row["corpus"].is_string() || !row.contains("side") ||
        !row["side"].is_string()) {
      throw UserError(where + ": expected a JSON object with \"corpus\" and \"side\"; rerun bench/quality_per_minute.py");
    }
    QualityResult result;
    result.corpus = row["corpus"].get<std::string>();
    result.side = row["side"].get<std::string>();
    result.minutes = FiniteNumber(row, "minutes", where);
    result.val_loss = FiniteNumber(row, "val_loss", where);
    if (row.contains("curve") && row["curve"].is_array()) {
      for (const nlohmann::json& point : row["curve"]) {
        if (point.is_array() && point.size() == 2 && point[0].is_number() && point[1].is_number()) {
          result.curve.emplace_back(point[0].get<double>(), point[1].get<double>());
        }
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

std::string QualityChartSvg(const std::vector<QualityResult>& results, const std::string& corpus) {
  svg::Chart chart;
  chart.title = "Validation loss against minutes: " + FileName(corpus);
  chart.x_label = "minutes";
  chart.y_label = "validation loss (nats per character)";
  std::map<std::string, svg::Series> by_side;  // each side's final losses against its budget
  double lo = INFINITY, hi = 0;
  bool any = false;
  for (const QualityResult& r : results) {
    if (FileName(r.corpus) != FileName(corpus)) continue;
    any = true;
    if (r.side == "5-gram") {
      // One line however many runs measured it (each run of the script scores the 5-gram again, alike).
      const bool drawn = std::any_of(chart.references.begin(), chart.references.end(),
                                     [&](const svg::ReferenceLine& line) { return line.y == r.val_loss; });
      char label[32];
      std::snprintf(label, sizeof label, "5-gram %.3f", r.val_loss);
      if (!drawn) chart.references.push_back({label, r.val_loss});
      continue;
    }
    svg::Series& series = by_side[r.side];
    series.name = r.side + " (end of budget)";
    series.markers = true;
    series.x.push_back(r.minutes);
    series.y.push_back(r.val_loss);
    lo = std::min(lo, r.minutes);
    hi = std::max(hi, r.minutes);
    if (!r.curve.empty()) {
      svg::Series curve;
      curve.name = r.side + ", " + std::to_string(static_cast<int>(std::lround(r.minutes))) + "-minute run";
      curve.dashed = true;
      for (const auto& [minutes, loss] : r.curve) {
        curve.x.push_back(minutes);
        curve.y.push_back(loss);
      }
      chart.series.push_back(std::move(curve));
    }
  }
  if (!any) throw UserError("no results for " + corpus + " in the results file; run bench/quality_per_minute.py on it");
  for (auto& side_and_series : by_side) {
    // A named reference, not a structured binding: C++17 lambdas cannot capture bindings (clang refuses).
    const svg::Series& series = side_and_series.second;
    // Points in budget order, so the line joins neighbouring budgets.
    std::vector<std::size_t> order(series.x.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return series.x[a] < series.x[b]; });
    svg::Series sorted = series;
    for (std::size_t i = 0; i < order.size(); ++i) {
      sorted.x[i] = series.x[order[i]];
      sorted.y[i] = series.y[order[i]];
    }
    chart.series.push_back(std::move(sorted));
  }
  if (hi > 0 && lo > 0 && hi / lo >= 5) chart.x_scale = svg::ScaleKind::kLog;
  return svg::RenderChart(chart);
}

}  // namespace charlm
