// The run's budgets, train.max_steps and train.max_minutes: a stop when either runs out.
#include "run/budget.h"

#include <cstdio>
#include <string>

namespace charlm {

void Budget::OnTrainBegin(TrainingRun& run) {
  started_ = std::chrono::steady_clock::now();  // a run already at train.max_steps never gets here (TrainingRun)
  Check(run);
}

void Budget::OnStep(TrainingRun& run, const StepEvent&) { Check(run); }

void Budget::Check(TrainingRun& run) {
  const TrainConfig& tc = run.config().train;
  if (tc.max_steps > 0 && run.progress().global_step >= tc.max_steps) {
    run.RequestStop(StopReason::kBudget, "train.max_steps " + std::to_string(tc.max_steps));
  }
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count() / 60;
  if (watch_clock_ && tc.max_minutes > 0 && minutes >= tc.max_minutes) {
    char detail[64];
    std::snprintf(detail, sizeof detail, "train.max_minutes %.3g", tc.max_minutes);
    run.RequestStop(StopReason::kBudget, detail);
  }
}

}  // namespace charlm
