// The training loop: epochs of steps, validation and the best score, with the handlers called at every point.
#pragma once

#include <functional>

#include "run/handlers.h"
#include "run/train_step.h"
#include "run/training_run.h"
#include "trainer.h"

namespace charlm {

// Runs `run` from its position to train.epochs, an early stop or a stop request (polled after every step; the
// run then saves last.ckpt through the handlers' stop checkpoint and returns with `interrupted`).
TrainOutcome RunTrainingLoop(TrainingRun& run, TrainStep& step, HandlerList& handlers,
                             const std::function<bool()>& stop_requested);

}  // namespace charlm
