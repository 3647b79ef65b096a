// The training loop's event handlers (the shape of Keras' callbacks and Lightning's hooks): each concern of a run
// (metrics file, checkpoints, samples, progress bar, console log, early stopping) is one class, called by the loop
// at its step, eval, checkpoint, epoch and end points. A new concern is a new handler, not a branch in the loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "evaluate.h"
#include "run/training_run.h"
#include "trainer.h"

namespace charlm {

// After each optimizer step.
struct StepEvent {
  int epoch = 0;                 // 1-based epoch the step belongs to
  std::int64_t batch = 0;        // batches done in this epoch, this one included
  std::int64_t num_batches = 0;  // batches in this epoch
  float loss = 0;                // this step's mean loss per token
  double learning_rate = 0;
};

// After a validation pass.
struct EvalEvent {
  int epoch = 0;  // 1-based epoch it belongs to
  EvalResult result;
};

// When an epoch's figures are final: validation done, the best score updated.
struct EpochSummary {
  int epoch = 0;  // 1-based, just completed
  bool last_epoch = false;
  double train_perplexity = 0;
  std::optional<double> val_perplexity;  // when this epoch was validated
  double learning_rate = 0;
  double tokens_per_s = 0;  // training steps only, this process's share of the epoch
  double elapsed_s = 0;     // the run's total, across resumes
  bool improved = false;    // a new best score (validation perplexity, or training perplexity without validation)
};

// A point at which checkpoints may be due.
struct CheckpointPoint {
  enum class Kind { kEpochEnd, kStop };
  Kind kind = Kind::kEpochEnd;
  const EpochSummary* epoch = nullptr;  // kEpochEnd only
};

// Every method has an empty default; a handler overrides the points it cares about. The loop calls the handlers
// in list order at each point (see StandardHandlers for the order that matters).
class TrainHandler {
 public:
  virtual ~TrainHandler() = default;
  virtual void OnTrainBegin(TrainingRun&) {}
  virtual void OnEpochBegin(TrainingRun&, int /*epoch, 1-based*/) {}
  virtual void OnStep(TrainingRun&, const StepEvent&) {}
  virtual void OnEvalBegin(TrainingRun&) {}
  virtual void OnEval(TrainingRun&, const EvalEvent&) {}
  // The epoch's figures are final, before any checkpoint of it: decide (early stopping asks for a stop here).
  virtual void OnEpochScored(TrainingRun&, EpochSummary&) {}
  virtual void OnCheckpoint(TrainingRun&, const CheckpointPoint&) {}
  // After the epoch's checkpoints are saved: report it (metrics rows, console, samples). A failure here loses
  // nothing that was trained.
  virtual void OnEpochEnd(TrainingRun&, const EpochSummary&) {}
  virtual void OnTrainEnd(TrainingRun&, const TrainOutcome&) {}
  // An error is leaving the loop (after this, main prints it): undo what would garble it, such as a half-drawn bar.
  virtual void OnAbort(TrainingRun&) noexcept {}
};

using HandlerList = std::vector<std::unique_ptr<TrainHandler>>;

// metrics.jsonl in out_dir: kept up to the resumed position on start, one row per epoch after its checkpoint.
class MetricsWriter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
};

// At the start: the Kneser-Ney baseline (lib/ngram.h) fitted on the training split, its validation perplexity
// printed and written to out_dir/baseline.json, so every run shows what the recurrent network adds.
class BaselineReporter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
};

// last.ckpt every train.checkpoint_every epochs, at the last epoch and on any stop; best.ckpt on a new best.
class Checkpointer : public TrainHandler {
 public:
  void OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) override;
};

// One console line per epoch: perplexities, learning rate, tokens/s and elapsed time.
class EpochLogger : public TrainHandler {
 public:
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
};

// Text generated from each of generate.prefixes every generate.every epochs.
class SamplePrinter : public TrainHandler {
 public:
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
};

// A bar redrawn on stderr after every step (a terminal only); cleared before anything else is printed.
class ProgressBar : public TrainHandler {
 public:
  void OnStep(TrainingRun& run, const StepEvent& step) override;
  void OnEvalBegin(TrainingRun& run) override;
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnTrainEnd(TrainingRun& run, const TrainOutcome& outcome) override;
  void OnAbort(TrainingRun& run) noexcept override;

 private:
  void Clear();
  bool drawn_ = false;
};

// Stops the run after train.patience epochs without a better score (0 = never).
class EarlyStopping : public TrainHandler {
 public:
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  bool stopped_ = false;
};

// The handlers of `charlm train`. The loop's phases already put every decision before the checkpoints and every
// report after them; within a phase the list order is the order of the console lines (epoch line, samples, early
// stop).
HandlerList StandardHandlers(const Config& config, const TrainHooks& hooks);

}  // namespace charlm
