// The training loop: the order of steps, evaluations, checkpoints and reports, and nothing else.
#include "run/loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "util/errors.h"
#include "model/optimizer.h"
#include "util/rng.h"

namespace charlm {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string FormatNumber(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

[[noreturn]] void ThrowDiverged(const TrainingRun& run, const StepResult& result, int epoch, std::int64_t batch,
                                double lr) {
  const std::string what = !result.loss_diverged       ? "gradient norm is not finite"
                           : std::isfinite(result.loss) ? "loss is " + FormatNumber(result.loss) + " (perplexity overflows)"
                                                        : "loss is " + FormatNumber(result.loss);
  // Fine-tuning whose first step diverges has changed nothing yet: the weights it started from are to blame (an
  // imported file with weights near float32's largest value), and no learning rate would help.
  if (!run.init_from().empty() && run.progress().global_step == 0) {
    throw UserError("fine-tuning diverged at its first step: the " + what + " before any update, so the weights of " +
                    run.init_from() + " (train --init-from) are to blame, not train.optimizer.lr: they overflow "
                    "float32 in their products; start from a checkpoint with trained, finite-sized weights; " +
                    run.KeptCheckpointNote());
  }
  throw UserError("training diverged at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) +
                  ": the " + what + "; lower train.optimizer.lr (now " + FormatNumber(lr) +
                  ") or set/lower train.clip_norm (now " + FormatNumber(run.config().train.clip_norm) + "); " +
                  run.KeptCheckpointNote());
}

// The rest of the run in batches: this epoch's, the later epochs' (as many as this one), cut by max_steps.
double RemainingRunBatches(const TrainConfig& tc, const Progress& progress, int epoch, std::int64_t batch,
                           std::int64_t num_batches) {
  double batches = static_cast<double>(num_batches - batch) +
                   static_cast<double>(tc.epochs - epoch - 1) * static_cast<double>(num_batches);
  if (tc.max_steps > 0) batches = std::min(batches, static_cast<double>(tc.max_steps - progress.global_step));
  return std::max(batches, 0.0);
}

// What an epoch sums over this process's steps, for its step events and its summary.
struct EpochTally {
  int epoch = 0;  // 0-based
  double lr = 0;                 // the epoch's learning rate; a per-step schedule's are summed below instead
  double step_lr_sum = 0;        // per-step schedule: over this process's steps of the epoch
  std::int64_t step_lr_count = 0;
  std::int64_t first_batch = 0;  // where the epoch starts in this run: a resumed one midway
  double step_seconds = 0;       // this epoch's training steps in this process
  double grad_norm_sum = 0;      // over the same steps
};

class Loop {
 public:
  Loop(TrainingRun& run, TrainStep& step, HandlerList& handlers, const LoopOptions& options)
      : run_(run), step_(step), handlers_(handlers), options_(options), tc_(run.config().train),
        tokens_per_batch_(static_cast<std::int64_t>(tc_.batch_size) * tc_.num_steps),
        per_step_lr_(tc_.lr_schedule.name == LrScheduleKind::kCosine),
        lr_by_time_(per_step_lr_ && tc_.max_minutes > 0) {}

  TrainOutcome Run() {
    Begin();
    for (int epoch = run_.progress().epochs_completed; epoch < tc_.epochs; ++epoch) {
      EpochTally tally = BeginEpoch(epoch);
      for (std::int64_t batch = tally.first_batch; batch < run_.sampler().num_batches(); ++batch) {
        if (run_.stop_reason() != StopReason::kNone) return Stopped();
        const StepEvent event = TrainBatch(batch, tally);
        // The points after a step, in this order (loop.h): OnStep, a step validation, a log point, the stop, a
        // step checkpoint.
        for (auto& h : handlers_) h->OnStep(run_, event);
        if (tc_.eval_every_steps > 0 && run_.progress().global_step % tc_.eval_every_steps == 0 &&
            !run_.val_ids().empty()) {
          Validate(event.epoch, false);  // a stop request cuts it short; the check below then stops
        }
        LogPointIfDue(event);
        run_.PollStopSignal(options_.stop_requested);
        AgreeOnStop();
        if (run_.stop_reason() != StopReason::kNone) return Stopped();
        if (tc_.checkpoint_every_steps > 0 && run_.progress().global_step % tc_.checkpoint_every_steps == 0) {
          CheckpointAt({CheckpointPoint::Kind::kSteps, nullptr});
        }
      }
      const EpochEnd end = EndEpoch(tally);
      if (end == EpochEnd::kStopped) return Stopped();
      if (end == EpochEnd::kEarlyStop) {
        outcome_.early_stopped = true;
        break;
      }
    }
    return Finish();
  }

 private:
  enum class EpochEnd { kNextEpoch, kEarlyStop, kStopped };

  void Begin() {
    outcome_.last_checkpoint = run_.last_checkpoint_path();
    outcome_.best_checkpoint = run_.best_checkpoint_path();
    run_.set_activity_listener([this](std::string_view activity) {
      for (auto& h : handlers_) h->OnActivity(run_, activity);
    });
    started_ = Clock::now();
    schedule_clock_start_ = ScheduleClockNow();
    last_log_elapsed_ = run_.ElapsedSeconds();
    // The run's length in steps, for the cosine by steps: max_steps when it comes before the last epoch's end.
    schedule_total_steps_ = static_cast<std::int64_t>(tc_.epochs) * run_.sampler().num_batches();
    if (tc_.max_steps > 0) schedule_total_steps_ = std::min(schedule_total_steps_, tc_.max_steps);
    for (auto& h : handlers_) h->OnTrainBegin(run_);
  }

  EpochTally BeginEpoch(int epoch) {
    Progress& progress = run_.progress();
    run_.sampler().BeginEpoch(epoch);
    EpochTally tally;
    tally.epoch = epoch;
    tally.lr = ScheduledLearningRate(tc_.optimizer, tc_.lr_schedule, epoch);
    if (progress.next_batch == 0) {
      run_.state().Zero();  // a new epoch starts from a zero state for both samplers
      progress.partial_loss_sum = 0;
      progress.partial_tokens = 0;
    }
    for (auto& h : handlers_) h->OnEpochBegin(run_, epoch + 1);
    tally.first_batch = progress.next_batch;
    return tally;
  }

  double ScheduleClockNow() const {
    return options_.schedule_clock ? options_.schedule_clock()
                                   : std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  }

  // The seconds the time-based cosine has run: the resumed checkpoint's, then this loop's, as every process agrees.
  double ScheduleSeconds(bool agreed) const {
    const double mine = run_.ElapsedBeforeResume() + (ScheduleClockNow() - schedule_clock_start_);
    return agreed && options_.agree_schedule_seconds ? options_.agree_schedule_seconds(mine) : mine;
  }

  // The per-step schedule's learning rate for the next step (global_step steps done). `agreed`: every process calls
  // this at the same point, so the time-based progress may be shared.
  double CosineRate(bool agreed) const {
    const std::int64_t step = run_.progress().global_step;
    const double progress =
        lr_by_time_ ? ScheduleSeconds(agreed) / (tc_.max_minutes * 60)
                    : CosineProgressBySteps(step, tc_.lr_schedule.warmup_steps, schedule_total_steps_);
    return CosineLearningRate(tc_.optimizer, tc_.lr_schedule, step, progress);
  }

  // One optimizer step on `batch`, counted into the run's position and the epoch's tally.
  StepEvent TrainBatch(std::int64_t batch, EpochTally& tally) {
    Progress& progress = run_.progress();
    const auto step_start = Clock::now();
    const double lr = per_step_lr_ ? CosineRate(true) : tally.lr;
    const std::uint64_t dropout_seed = MixSeed(MixSeed(tc_.seed, kDropoutStream), progress.global_step);
    const StepResult result = step_.Run(run_.sampler(), batch, run_.state(), dropout_seed, lr);
    if (!result.applied) ThrowDiverged(run_, result, tally.epoch + 1, batch + 1, lr);
    if (per_step_lr_) {
      tally.step_lr_sum += lr;
      ++tally.step_lr_count;
    }
    ++progress.global_step;
    progress.partial_loss_sum += static_cast<double>(result.loss) * static_cast<double>(tokens_per_batch_);
    progress.partial_tokens += tokens_per_batch_;
    progress.next_batch = batch + 1;
    tally.step_seconds += SecondsSince(step_start);
    tally.grad_norm_sum += result.grad_norm;
    return MakeStepEvent(batch, result, tally, lr);
  }

  StepEvent MakeStepEvent(std::int64_t batch, const StepResult& result, const EpochTally& tally, double lr) const {
    const Progress& progress = run_.progress();
    const std::int64_t num_batches = run_.sampler().num_batches();
    StepEvent event;
    event.epoch = tally.epoch + 1;
    event.step = progress.global_step;
    event.batch = batch + 1;
    event.num_batches = num_batches;
    event.loss = result.loss;
    event.running_loss = progress.partial_loss_sum / static_cast<double>(progress.partial_tokens);
    event.learning_rate = lr;
    event.grad_norm = result.grad_norm;
    const double batches_done = static_cast<double>(batch + 1 - tally.first_batch);
    const double seconds_per_batch = tally.step_seconds / batches_done;
    event.tokens_per_s =
        tally.step_seconds > 0 ? batches_done * static_cast<double>(tokens_per_batch_) / tally.step_seconds : 0;
    event.eta_epoch_s = seconds_per_batch * static_cast<double>(num_batches - batch - 1);
    event.eta_run_s = seconds_per_batch * RemainingRunBatches(tc_, progress, tally.epoch, batch + 1, num_batches);
    if (tc_.max_minutes > 0) {
      event.eta_run_s = std::min(event.eta_run_s, std::max(0.0, tc_.max_minutes * 60 - SecondsSince(started_)));
    }
    event.elapsed_s = run_.ElapsedSeconds();
    return event;
  }

  // On the run's own clock, read once: the logged elapsed_s are then at least the interval apart (the step event's
  // reading comes before a validation of any length).
  void LogPointIfDue(StepEvent event) {
    const double now_elapsed = run_.ElapsedSeconds();
    if (options_.log_every_seconds > 0 && now_elapsed - last_log_elapsed_ >= options_.log_every_seconds) {
      last_log_elapsed_ = now_elapsed;
      event.elapsed_s = now_elapsed;
      for (auto& h : handlers_) h->OnLog(run_, event);
    }
  }

  // Data parallelism: every process takes the stop any of them asked for, at the same point (one process: as is).
  void AgreeOnStop() {
    if (!options_.agree_stop) return;
    const StopReason agreed = options_.agree_stop(run_.stop_reason());
    if (agreed != StopReason::kNone) run_.RequestStop(agreed);
  }

  void CheckpointAt(const CheckpointPoint& point) {
    for (auto& h : handlers_) h->OnCheckpoint(run_, point);
  }

  // The epoch's figures from its tally, before validation.
  EpochSummary SummarizeEpoch(const EpochTally& tally) const {
    const Progress& progress = run_.progress();
    const std::int64_t num_batches = run_.sampler().num_batches();
    const std::int64_t epoch_tokens = (num_batches - tally.first_batch) * tokens_per_batch_;
    EpochSummary summary;
    summary.epoch = tally.epoch + 1;
    summary.last_epoch = tally.epoch + 1 == tc_.epochs;
    summary.train_perplexity = std::exp(progress.partial_loss_sum /
                                        static_cast<double>(std::max<std::int64_t>(progress.partial_tokens, 1)));
    summary.learning_rate = tally.lr;
    if (per_step_lr_) {
      // The mean over the epoch's steps; an epoch resumed with no step left reports the rate of the step to come.
      summary.learning_rate = tally.step_lr_count > 0 ? tally.step_lr_sum / static_cast<double>(tally.step_lr_count)
                                                      : CosineRate(false);
    }
    summary.tokens_per_s = tally.step_seconds > 0 ? static_cast<double>(epoch_tokens) / tally.step_seconds : 0.0;
    summary.grad_norm =
        num_batches > tally.first_batch ? tally.grad_norm_sum / static_cast<double>(num_batches - tally.first_batch)
                                        : 0.0;
    return summary;
  }

  // After the epoch's last step: validation, the best score, then the handlers' decisions, checkpoints and reports.
  EpochEnd EndEpoch(const EpochTally& tally) {
    Progress& progress = run_.progress();
    EpochSummary summary = SummarizeEpoch(tally);
    progress.epochs_completed = summary.epoch;
    progress.next_batch = 0;
    if (!run_.val_ids().empty() && (summary.epoch % tc_.eval_every == 0 || summary.last_epoch)) {
      summary.val_perplexity = Validate(summary.epoch, true);
      if (!summary.val_perplexity) {
        // Stopped while validating: saved as "all batches done, epoch not yet scored", so a resume validates it.
        progress.epochs_completed = tally.epoch;
        progress.next_batch = run_.sampler().num_batches();
        return EpochEnd::kStopped;
      }
    }
    summary.elapsed_s = run_.ElapsedSeconds();
    // Best is judged on validation perplexity; without a validation split, on training perplexity.
    const std::optional<double> score =
        run_.val_ids().empty() ? std::optional<double>(summary.train_perplexity) : summary.val_perplexity;
    if (score) summary.improved = run_.RecordScore(*score);
    if (summary.improved) outcome_.best_epoch = summary.epoch;

    for (auto& h : handlers_) h->OnEpochScored(run_, summary);
    CheckpointAt({CheckpointPoint::Kind::kEpochEnd, &summary});
    for (auto& h : handlers_) h->OnEpochEnd(run_, summary);
    // A signal taken while rank 0 sampled or wrote the report must stop every process at the same point.
    AgreeOnStop();
    outcome_.train_perplexity = summary.train_perplexity;
    outcome_.val_perplexity = summary.val_perplexity;
    if (run_.stop_reason() == StopReason::kEarlyStop) return EpochEnd::kEarlyStop;
    // A budget that ran out with the epoch's last step stops here, with the epoch complete.
    if (run_.stop_reason() != StopReason::kNone && !summary.last_epoch) return EpochEnd::kStopped;
    return EpochEnd::kNextEpoch;
  }

  // Epoch ends score the whole validation split; step validations the first train.eval_max_chars characters.
  // The stop flag is polled after every chunk, so a signal does not wait for a long split: nullopt when it came.
  std::optional<double> Validate(int epoch, bool epoch_end, bool whole_split = false) {
    EvalOptions eval_options;
    eval_options.streams = tc_.batch_size;
    eval_options.num_steps = tc_.num_steps;
    eval_options.row_threads = step_.row_thread_pool();
    whole_split = whole_split || epoch_end;
    if (!whole_split) eval_options.max_chars = tc_.eval_max_chars;  // 0 = all
    eval_options.shard = options_.eval_shard;
    eval_options.shards = options_.eval_shards;
    eval_options.in_shard_order = options_.eval_in_shard_order;
    // One process only: a rank leaving the sharded validation alone would leave the others in its reduction.
    if (options_.eval_shards == 1) {
      eval_options.progress = [this](std::int64_t, std::int64_t) {
        return !run_.PollStopSignal(options_.stop_requested);
      };
    }
    for (auto& h : handlers_) h->OnEvalBegin(run_);
    EvalEvent eval;
    eval.epoch = epoch;
    eval.step = run_.progress().global_step;
    eval.epoch_end = epoch_end;
    eval.result = Evaluate(run_.model(), run_.val_ids(), eval_options);
    if (eval.result.cancelled) return std::nullopt;
    if (options_.reduce_eval) options_.reduce_eval(eval.result);
    eval.elapsed_s = run_.ElapsedSeconds();
    if (whole_split) last_whole_validation_step_ = eval.step;
    for (auto& h : handlers_) h->OnEval(run_, eval);
    return eval.result.perplexity;
  }

  // A stop before train.epochs: last.ckpt saved at the exact position, and why the run stopped. A budget's end
  // scores the model it stops with on the validation split first (its first train.eval_max_chars characters when
  // that is set; unless that step was just scored), so the
  // steps since the last epoch end count, and best.ckpt is the best model there is: under a cosine schedule, often
  // the last one. Its time is the budget's to keep (`train --minutes` does).
  TrainOutcome Stopped() {
    bool best = false;
    if (run_.stop_reason() == StopReason::kBudget && !run_.val_ids().empty() &&
        last_whole_validation_step_ != run_.progress().global_step) {
      // Capped as the step validations are when train.eval_max_chars says so (a budget on a long split sets it).
      const std::optional<double> perplexity = Validate(run_.progress().epochs_completed + 1, /*epoch_end=*/false,
                                                        /*whole_split=*/tc_.eval_max_chars == 0);
      if (perplexity) {
        best = run_.RecordScore(*perplexity);
        if (best) outcome_.best_epoch = run_.progress().epochs_completed + 1;
        outcome_.val_perplexity = perplexity;
      }
    }
    CheckpointAt({CheckpointPoint::Kind::kStop, nullptr, best});
    if (run_.stop_reason() == StopReason::kBudget) {
      outcome_.budget_reached = true;
      outcome_.budget = run_.stop_detail();
    } else {
      outcome_.interrupted = true;
    }
    return Finish();
  }

  // The outcome's figures and files, whichever way the run ended, then OnTrainEnd.
  TrainOutcome Finish() {
    outcome_.epochs_completed = run_.progress().epochs_completed;
    outcome_.best_val_perplexity = run_.val_ids().empty() ? std::nullopt : run_.progress().best_score;
    outcome_.validations_since_best = run_.progress().epochs_since_best;
    outcome_.baseline_val_perplexity = run_.baseline_val_perplexity();
    KeepOnlySavedBest();
    outcome_.sample_prefix =
        SuggestedPrefix(run_.data().vocab, SamplePrefixes(run_.config().generate.prefixes, run_.data()));
    for (auto& h : handlers_) h->OnTrainEnd(run_, outcome_);
    return outcome_;
  }

  // The outcome names a best.ckpt only when it is on disk: a run resumed into another folder whose best epoch
  // came before the checkpoint has none unless the earlier folder's could be copied (Checkpointer), and a message
  // naming a missing file would be a false success.
  void KeepOnlySavedBest() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(outcome_.best_checkpoint, ec)) outcome_.best_checkpoint.clear();
  }

  TrainingRun& run_;
  TrainStep& step_;
  HandlerList& handlers_;
  const LoopOptions& options_;
  const TrainConfig& tc_;
  const std::int64_t tokens_per_batch_;  // train.batch_size * train.num_steps
  TrainOutcome outcome_;
  const bool per_step_lr_;  // "cosine": the learning rate is set before each step, not once per epoch
  const bool lr_by_time_;   // ... and its progress is the run's seconds over train.max_minutes
  Clock::time_point started_;
  double schedule_clock_start_ = 0;        // ScheduleClockNow() when this loop began
  std::int64_t schedule_total_steps_ = 0;  // the cosine by steps anneals over these
  double last_log_elapsed_ = 0;  // run_.ElapsedSeconds() at the last progress line (or the loop's start)
  std::int64_t last_whole_validation_step_ = -1;  // the global step the whole split was last scored at
};

}  // namespace

TrainOutcome RunTrainingLoop(TrainingRun& run, TrainStep& step, HandlerList& handlers, const LoopOptions& options) {
  try {
    Loop loop(run, step, handlers, options);
    TrainOutcome outcome = loop.Run();
    run.set_activity_listener({});
    return outcome;
  } catch (...) {
    run.set_activity_listener({});
    for (auto& h : handlers) h->OnAbort(run);
    throw;
  }
}

}  // namespace charlm
