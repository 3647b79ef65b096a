// The console's line per epoch.
#pragma once

#include "run/handler.h"

namespace charlm {

// One console line per epoch: perplexities, learning rate, tokens/s and elapsed time.
class EpochLogger : public TrainHandler {
 public:
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
};

}  // namespace charlm
