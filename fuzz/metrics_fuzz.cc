// libFuzzer target: metrics.jsonl (and samples.jsonl) as `charlm report` reads them: ParseMetrics and ParseSamples
// are safe on any bytes, keep only perplexities a page can draw, and the page renders from whatever they accept.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "report/report.h"

namespace {

// A perplexity kept for the page is at least 1 and finite: anything else draws as "-nan bits per character".
bool Drawable(const std::optional<double>& perplexity) {
  return !perplexity || (std::isfinite(*perplexity) && *perplexity >= 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  charlm::MetricsSkips skipped;
  charlm::RunData run;
  run.dir = "fuzz_run";
  run.name = "fuzz_run";
  run.rows = charlm::ParseMetrics(text, &skipped);
  run.samples = charlm::ParseSamples(text);
  std::size_t lines = 0;
  for (const char c : text) lines += c == '\n' ? 1 : 0;
  lines += !text.empty() && text.back() != '\n' ? 1 : 0;
  // Skip counts name lines of this file: never more lines than it has, and a first line only when one was skipped.
  if (skipped.lines < 0 || static_cast<std::size_t>(skipped.lines) > lines) std::abort();
  if ((skipped.lines > 0) != (skipped.first_line > 0) || static_cast<std::size_t>(skipped.first_line) > lines) std::abort();
  if (skipped.values > 0 && (skipped.first_value_line < 1 || static_cast<std::size_t>(skipped.first_value_line) > lines)) {
    std::abort();
  }
  for (const charlm::MetricsRow& row : run.rows) {
    if (row.kind != "epoch" && row.kind != "log" && row.kind != "eval") std::abort();
    if (!Drawable(row.train_perplexity) || !Drawable(row.val_perplexity)) std::abort();
  }
  // `report` refuses a file with no row; with rows it renders a page, whatever their values.
  if (!run.rows.empty() && charlm::RenderRunReport(run, std::nullopt).empty()) std::abort();
  return 0;
}
