// The training loop's event handlers (the shape of Keras' callbacks and Lightning's hooks): each concern of a run
// (metrics file, checkpoints, samples, progress bar, console log, early stopping) is one class, called by the loop
// at its step, eval, checkpoint, epoch and end points. A new concern is a new handler, not a branch in the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <optional>
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
  virtual void OnTrainEnd(TrainingRun&, const TrainOutcome&) {}
  // An error is leaving the loop (after this, main prints it): undo what would garble it, such as a half-drawn bar.
  virtual void OnAbort(TrainingRun&) noexcept {}
};

using HandlerList = std::vector<std::unique_ptr<TrainHandler>>;

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

// At the start: the Kneser-Ney baseline (lib/model/ngram.h) fitted on the training split, its validation perplexity
// printed and written to out_dir/baseline.json, so every run shows what the recurrent network adds.
class BaselineReporter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
};

// The resolved config, every key, as out_dir/config.json.
class ConfigWriter : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
};

// Progress lines at each log point, and a line per step validation.
class ProgressLogger : public TrainHandler {
 public:
  void OnLog(TrainingRun& run, const StepEvent& step) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;
};

// Asks for a stop when train.max_steps (of the whole run) or train.max_minutes (of this process) run out.
// Without watch_clock only max_steps: a data-parallel worker other than rank 0 follows rank 0's clock.
class Budget : public TrainHandler {
 public:
  explicit Budget(bool watch_clock = true) : watch_clock_(watch_clock) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnStep(TrainingRun& run, const StepEvent& step) override;

 private:
  void Check(TrainingRun& run);
  bool watch_clock_;
  std::chrono::steady_clock::time_point started_;
};

// last.ckpt every train.checkpoint_every epochs and every train.checkpoint_every_steps steps, at the last epoch
// and on any stop; best.ckpt on a new best. A run resumed into another folder starts by copying the best.ckpt of
// the folder it resumed from, when that file is this run's best so far (same model and vocabulary, saved at or
// before the checkpoint's step with the checkpoint's best score): the run's best score refers to it, and without
// it the run would end naming a best.ckpt that is not there. Otherwise it says why out_dir has no best.ckpt yet.
class Checkpointer : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
  void OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) override;
};

// One console line per epoch: perplexities, learning rate, tokens/s and elapsed time.
class EpochLogger : public TrainHandler {
 public:
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
};

// Text generated from each of generate.prefixes every generate.every epochs, printed (prefix and continuation, as
// the book prints them) and appended to out_dir/samples.jsonl as {"format": kSamplesFormat, "epoch", "prefix",
// "text"}, text being the continuation alone as in `charlm generate --json` (kept up to the resumed epoch on start).
// A stop request (stop_requested true) ends a sample at once: the epoch is saved before, the samples are dropped.
class SamplePrinter : public TrainHandler {
 public:
  explicit SamplePrinter(std::function<bool()> stop_requested = {}) : stop_requested_(std::move(stop_requested)) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  std::function<bool()> stop_requested_;
};

// A bar redrawn on stderr after every step (a terminal only); cleared before anything else is printed.
class ProgressBar : public TrainHandler {
 public:
  void OnStep(TrainingRun& run, const StepEvent& step) override;
  void OnLog(TrainingRun& run, const StepEvent& step) override;
  void OnActivity(TrainingRun& run, std::string_view activity) override;
  void OnEvalBegin(TrainingRun& run) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnTrainEnd(TrainingRun& run, const TrainOutcome& outcome) override;
  void OnAbort(TrainingRun& run) noexcept override;

 private:
  void Clear();
  void Draw(const std::string& text);
  bool drawn_ = false;
  StepEvent last_;  // the last step drawn, for the "validating" and "sampling" lines
};

// out_dir/report.html (lib/report/) rewritten atomically after every validation and epoch end, and
// out_dir/run_info.json (corpus and split sizes, machine, threads, version) at the start; train.report = false
// leaves both out. A page that cannot be written is a warning: the training goes on.
class ReportWriter : public TrainHandler {
 public:
  // stop_requested: as SamplePrinter's; a stopped run's page leaves out the continuations.
  explicit ReportWriter(std::function<bool()> stop_requested = {}) : stop_requested_(std::move(stop_requested)) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;  // step validations; epoch ends come below
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
  void OnTrainEnd(TrainingRun& run, const TrainOutcome& outcome) override;

 private:
  void Write(TrainingRun& run, bool live);
  bool warned_ = false;
  std::function<bool()> stop_requested_;
};

// Stops the run after train.patience epochs without a better score (0 = never).
class EarlyStopping : public TrainHandler {
 public:
  void OnEpochScored(TrainingRun& run, EpochSummary& summary) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  bool stopped_ = false;
};

// "1h02m", "3m05s", "12s": a duration for an ETA.
std::string FormatDuration(double seconds);

// The handlers of `charlm train`. The loop's phases already put every decision before the checkpoints and every
// report after them; within a phase the list order is the order of the console lines (epoch line, samples, early
// stop).
HandlerList StandardHandlers(const Config& config, const TrainEnvironment& hooks);

}  // namespace charlm
