// Early stopping: a stop after train.patience epochs without a better score.
#include "run/early_stopping.h"

#include <spdlog/spdlog.h>

#include "run/console_format.h"

namespace charlm {

void EarlyStopping::OnEpochScored(TrainingRun& run, EpochSummary&) {
  const int patience = run.config().train.patience;
  if (patience > 0 && run.progress().epochs_since_best >= patience) {
    run.RequestStop(StopReason::kEarlyStop);
    stopped_ = run.stop_reason() == StopReason::kEarlyStop;
  }
}

void EarlyStopping::OnEpochEnd(TrainingRun& run, const EpochSummary&) {
  if (!stopped_) return;
  spdlog::info("early stop: validation perplexity has not improved for {} epochs (best {})",
               run.config().train.patience, FormatPerplexityAndBpc(run.progress().best_score));
}

}  // namespace charlm
