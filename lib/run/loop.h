// The training loop: epochs of steps, validation and the best score, with the handlers called at every point.
#pragma once

#include <functional>

#include "run/handler.h"
#include "run/run_state.h"
#include "run/step.h"

namespace charlm {

struct LoopOptions {
  std::function<bool()> stop_requested;  // polled after every step; true = save last.ckpt and return
  double log_every_seconds = 0;          // seconds between log points (OnLog); 0 = none (see ResolvedLogSeconds)
  // Data parallelism (lib/parallel/data_parallel.h); left empty, the run is one process's.
  int eval_shard = 0, eval_shards = 1;              // this process validates this block of the streams
  std::function<void(EvalResult&)> reduce_eval;     // sums the shards' validation results
  std::function<void(std::size_t, const EvalOptions::ShardTurn&)> eval_in_shard_order;  // EvalOptions::in_shard_order
  std::function<StopReason(StopReason)> agree_stop;  // after every step: the stop every process takes
  // Before every step of a time-based cosine schedule: the seconds every process anneals by (rank 0's), given this
  // process's own.
  std::function<double(double)> agree_schedule_seconds;
  // The time-based cosine schedule's clock, in seconds from any fixed origin; empty = std::chrono::steady_clock.
  // Tests give a fake one so that they need not sleep.
  std::function<double()> schedule_clock;
};

// Runs `run` from its position to train.epochs, an early stop, a budget or a stop request (the run then saves
// last.ckpt through the handlers' stop checkpoint and returns with `interrupted` or `budget_reached`).
// The learning rate is train.lr_schedule's: per epoch for "none", "step" and "exponential", per step for "cosine"
// (CosineLearningRate), by steps or, with train.max_minutes, by the run's seconds (the resumed checkpoint's
// elapsed_seconds plus this loop's) over the budget's.
// Points after each step, in order: OnStep, a step validation, a log point, the stop (stop_requested polled, then
// agree_stop; a stop saves last.ckpt and returns), a step checkpoint (only when the run goes on).
TrainOutcome RunTrainingLoop(TrainingRun& run, TrainStep& step, HandlerList& handlers, const LoopOptions& options);

}  // namespace charlm
