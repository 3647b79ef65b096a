// The Kneser-Ney baseline a run starts with, printed and written to out_dir/baseline.json.
#pragma once

#include "run/handler.h"

namespace charlm {

// At the start: the Kneser-Ney baseline (lib/model/ngram.h) fitted on the training split, its validation perplexity
// printed and written to out_dir/baseline.json, so every run shows what the recurrent network adds.
class BaselineReporter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
};

}  // namespace charlm
