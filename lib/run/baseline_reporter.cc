// The Kneser-Ney baseline a run starts with, printed and written to out_dir/baseline.json.
#include "run/baseline_reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <filesystem>

#include "model/ngram.h"
#include "run/run_files.h"

namespace charlm {

void BaselineReporter::OnTrainBegin(TrainingRun& run) {
  const IdView all_val_ids = run.val_ids();
  if (all_val_ids.size() < 2) return;  // nothing to compare against
  const IdView val_ids = all_val_ids.first(
      std::min(all_val_ids.size(), static_cast<std::size_t>(kMaxStartBaselineChars)));
  // Rank 0's share of a data-parallel run starts at the text's beginning and holds at least the characters the
  // fit reads (kMaxNgramFitChars), so the baseline does not depend on the number of processes.
  assert(run.data().train_begin == 0);
  const Baseline baseline = FitBaseline(run.data().TrainHeld(), val_ids, run.data().vocab.size(),
                                        kDefaultNgramOrder);
  // Not a command to paste: the binary's path and the corpus options are the user's (charlm baseline --help).
  spdlog::info("{} (the baseline command fits other orders: baseline --corpus FILE --order N)", FormatBaseline(baseline));
  // Compared at the end only when it scored the same characters as the run's validation.
  if (val_ids.size() == all_val_ids.size()) run.set_baseline_val_perplexity(baseline.validation.perplexity);
  const std::filesystem::path path = std::filesystem::path(run.config().train.out_dir) / "baseline.json";
  // whole_split: whether the figure is comparable with the run's validation (the report's verdict needs it).
  nlohmann::json row = BaselineJson(baseline);
  row["whole_split"] = val_ids.size() == all_val_ids.size();
  WriteOutDirFile(path, row.dump() + '\n');
}

}  // namespace charlm
