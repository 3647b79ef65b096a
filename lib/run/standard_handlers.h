// The handlers of `charlm train` (a data-parallel job's other processes have theirs in lib/parallel/).
#pragma once

#include "config/config.h"
#include "run/handler.h"
#include "run/run_state.h"

namespace charlm {

// The handlers of `charlm train`. The loop's phases already put every decision before the checkpoints and every
// report after them; within a phase the list order is the order of the console lines (epoch line, samples, early
// stop).
HandlerList StandardHandlers(const Config& config, const TrainEnvironment& hooks);

}  // namespace charlm
