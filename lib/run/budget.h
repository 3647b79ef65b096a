// The run's budgets, train.max_steps and train.max_minutes: a stop when either runs out.
#pragma once

#include <chrono>

#include "run/handler.h"

namespace charlm {

// Asks for a stop when train.max_steps (of the whole run) or train.max_minutes (of this process) run out.
// Without watch_clock only max_steps: a data-parallel worker other than rank 0 follows rank 0's clock.
class Budget : public TrainHandler {
 public:
  explicit Budget(bool watch_clock = true) : watch_clock_(watch_clock) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnStep(TrainingRun& run, const StepEvent& step) override;

 private:
  void Check(TrainingRun& run);
  bool watch_clock_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace charlm
