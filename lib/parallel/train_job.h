// A training job: one run (lib/run/) of one process, or of each process of a data-parallel job (lib/parallel/).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "run/run_state.h"

namespace charlm {




// Trains from scratch (resume_path empty) or continues the run saved in resume_path. When resuming, `config` is
// the configuration to continue with; keys that change the trajectory (data, model, most of train) must equal
// the checkpoint's, or a UserError names the first difference. Only run-length and reporting keys may change.
TrainOutcome Train(const Config& config, const std::string& resume_path, const TrainEnvironment& hooks);



}  // namespace charlm
