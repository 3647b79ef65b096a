// The resolved config of a run, every key, as out_dir/config.json.
#pragma once

#include "run/handler.h"

namespace charlm {

// The resolved config, every key, as out_dir/config.json.
class ConfigWriter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
};

}  // namespace charlm
