// The base of the training loop's handlers (TrainHandler), the events they receive and the list the loop calls.
// Each concern of a run is one handler class in a file of its own (the shape of Keras' callbacks and Lightning's
// hooks), called by the loop at its step, eval, checkpoint, epoch and end points: a new concern is a new handler,
// not a branch in the loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "eval/evaluate.h"
#include "run/run_state.h"

namespace charlm {

// After each optimizer step, and at each log point (train.log_every_seconds).
struct StepEvent {
  int epoch = 0;                 // 1-based epoch the step belongs to
  std::int64_t step = 0;         // optimizer steps of the whole run, this one included
  std::int64_t batch = 0;        // batches done in this epoch, this one included
  std::int64_t num_batches = 0;  // batches in this epoch
  float loss = 0;                // this step's mean loss per token
  double running_loss = 0;       // mean loss per token over the epoch so far
  double learning_rate = 0;
  double tokens_per_s = 0;  // training steps of this epoch in this process (evaluations and saves left out)
  double eta_epoch_s = 0;   // the rest of the epoch at that rate
  double eta_run_s = 0;     // the rest of the run (train.epochs, or a sooner max_steps/max_minutes) at that rate
  double elapsed_s = 0;     // the run's total, across resumes
  double grad_norm = 0;     // this step's global gradient norm before clipping
};

// After a validation pass: at an epoch end (the whole split) or every train.eval_every_steps steps.
struct EvalEvent {
  int epoch = 0;          // 1-based epoch it belongs to
  std::int64_t step = 0;  // optimizer steps of the whole run
  bool epoch_end = false;
  EvalResult result;  // result.tokens = characters scored
  double elapsed_s = 0;
};

// When an epoch's figures are final: validation done, the best score updated.
struct EpochSummary {
  int epoch = 0;  // 1-based, just completed
  bool last_epoch = false;
  double train_perplexity = 0;
  std::optional<double> val_perplexity;  // when this epoch was validated
  double learning_rate = 0;
  double tokens_per_s = 0;  // training steps only, this process's share of the epoch
  double grad_norm = 0;     // mean gradient norm before clipping over this process's steps of the epoch
  double elapsed_s = 0;     // the run's total, across resumes
  bool improved = false;    // a new best score (validation perplexity, or training perplexity without validation)
};

// A point at which checkpoints may be due.
struct CheckpointPoint {
  enum class Kind { kEpochEnd, kSteps, kStop };  // kSteps: train.checkpoint_every_steps
  Kind kind = Kind::kEpochEnd;
  const EpochSummary* epoch = nullptr;  // kEpochEnd only
  // kStop only: the validation a budget's end runs (Loop::Stopped) found the best model yet, so best.ckpt too.
  bool best = false;
};

// Every method has an empty default; a handler overrides the points it cares about. The loop calls the handlers
// in list order at each point (see StandardHandlers for the order that matters).
class TrainHandler {
 public:
  virtual ~TrainHandler() = default;
  virtual void OnTrainBegin(TrainingRun&) {}
  virtual void OnEpochBegin(TrainingRun&, int /*epoch, 1-based*/) {}
  virtual void OnStep(TrainingRun&, const StepEvent&) {}
  virtual void OnLog(TrainingRun&, const StepEvent&) {}
  // Something long starts ("sampling"), or ended (empty): see TrainingRun::Announce.
  virtual void OnActivity(TrainingRun&, std::string_view /*activity*/) {}
  virtual void OnEvalBegin(TrainingRun&) {}
  virtual void OnEval(TrainingRun&, const EvalEvent&) {}
  // The epoch's figures are final, before any checkpoint of it: decide (early stopping asks for a stop here).
  virtual void OnEpochScored(TrainingRun&, EpochSummary&) {}
  virtual void OnCheckpoint(TrainingRun&, const CheckpointPoint&) {}
  // After the epoch's checkpoints are saved: report it (metrics rows, console, samples). A failure here loses
  // nothing that was trained.
  virtual void OnEpochEnd(TrainingRun&, const EpochSummary&) {}
  virtual void OnTrainEnd(TrainingRun&, TrainOutcome&) {}  // a handler may add the files it wrote
  // An error is leaving the loop (after this, main prints it): undo what would garble it, such as a half-drawn bar.
  virtual void OnAbort(TrainingRun&) noexcept {}
};

using HandlerList = std::vector<std::unique_ptr<TrainHandler>>;

}  // namespace charlm
