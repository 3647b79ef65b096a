// The chart of docs/quality.md: validation loss against minutes, from bench/quality_per_minute.py's results.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace charlm {

// One line of the results file: a side ("charlm auto", "gpt 4x4x128", "5-gram") given `minutes` on a text.
struct QualityResult {
  std::string corpus;
  std::string side;
  double minutes = 0;   // the budget; 0 for the 5-gram
  double val_loss = 0;  // full-context validation loss, nats per character
  std::vector<std::pair<double, double>> curve;  // charlm: (minutes into the run, validation loss) per epoch
};

// Parses the JSON lines (bench/quality_per_minute.py --results); UserError naming the line for a malformed one.
std::vector<QualityResult> ParseQualityResults(const std::string& jsonl, const std::string& source);

// One <svg> chart for the results on `corpus` (matched by file name): each side's loss against its budget, charlm's
// validation curves against the minutes spent, the 5-gram as a reference line. UserError when there are none.
std::string QualityChartSvg(const std::vector<QualityResult>& results, const std::string& corpus);

}  // namespace charlm
