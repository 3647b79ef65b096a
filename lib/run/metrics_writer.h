// metrics.jsonl: a row per log point, step validation and epoch, kept up to the resumed step.
#pragma once

#include <nlohmann/json.hpp>

#include "run/handler.h"

namespace charlm {

// metrics.jsonl in out_dir, one JSON row per event with `kind` and `step`: "log" at each log point, "eval" after
// each step validation, "epoch" after an epoch's checkpoints. On start the rows up to the resumed step are kept.
class MetricsWriter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
  void OnLog(TrainingRun& run, const StepEvent& step) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  void Append(const TrainingRun& run, const nlohmann::json& row);
};

}  // namespace charlm
