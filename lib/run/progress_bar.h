// The progress bar redrawn on a terminal's stderr after every step.
#pragma once

#include <string>
#include <string_view>

#include "run/handler.h"

namespace charlm {

// A bar redrawn on stderr after every step (a terminal only); cleared before anything else is printed.
class ProgressBar : public TrainHandler {
 public:
  void OnStep(TrainingRun& run, const StepEvent& step) override;
  void OnLog(TrainingRun& run, const StepEvent& step) override;
  void OnActivity(TrainingRun& run, std::string_view activity) override;
  void OnEvalBegin(TrainingRun& run) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnTrainEnd(TrainingRun& run, TrainOutcome& outcome) override;
  void OnAbort(TrainingRun& run) noexcept override;

 private:
  void Clear();
  void Draw(const std::string& text);
  bool drawn_ = false;
  StepEvent last_;  // the last step drawn, for the "validating" and "sampling" lines
};

}  // namespace charlm
