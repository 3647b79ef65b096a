// The console's progress lines: one per log point and one per step validation.
#pragma once

#include "run/handler.h"

namespace charlm {

// Progress lines at each log point, and a line per step validation.
class ProgressLogger : public TrainHandler {
 public:
  void OnLog(TrainingRun& run, const StepEvent& step) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;
};

}  // namespace charlm
