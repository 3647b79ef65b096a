// Early stopping: a stop after train.patience epochs without a better score.
#pragma once

#include "run/handler.h"

namespace charlm {

// Stops the run after train.patience epochs without a better score (0 = never).
class EarlyStopping : public TrainHandler {
 public:
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  bool stopped_ = false;
};

}  // namespace charlm
