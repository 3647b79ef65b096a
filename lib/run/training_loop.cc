// The training loop: the order of steps, evaluations, checkpoints and reports, and nothing else.
#include "run/training_loop.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "errors.h"
#include "optimizer.h"
#include "rng.h"

namespace charlm {
namespace {

using Clock = std::chrono::steady_clock;

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
  throw UserError("training diverged at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) +
                  ": the " + what + "; lower train.optimizer.lr (now " + FormatNumber(lr) +
                  ") or set/lower train.clip_norm (now " + FormatNumber(run.config().train.clip_norm) + "); " +
                  run.KeptCheckpointNote());
}

TrainOutcome RunLoop(TrainingRun& run, TrainStep& step, HandlerList& handlers,
                     const std::function<bool()>& stop_requested) {
  const TrainConfig& tc = run.config().train;
  Progress& progress = run.progress();
  Sampler& sampler = run.sampler();
  const std::int64_t tokens_per_batch = static_cast<std::int64_t>(tc.batch_size) * tc.num_steps;
  TrainOutcome outcome;
  outcome.last_checkpoint = run.last_checkpoint_path();
  outcome.best_checkpoint = run.best_checkpoint_path();

  for (auto& h : handlers) h->OnTrainBegin(run);
  for (int epoch = progress.epochs_completed; epoch < tc.epochs; ++epoch) {
    sampler.BeginEpoch(epoch);
    const double lr = ScheduledLearningRate(tc.optimizer, tc.lr_schedule, epoch);
    if (progress.next_batch == 0) {
      run.state().Zero();  // a new epoch starts from a zero state for both samplers
      progress.partial_loss_sum = 0;
      progress.partial_tokens = 0;
    }
    for (auto& h : handlers) h->OnEpochBegin(run, epoch + 1);
    const auto epoch_start = Clock::now();
    const std::int64_t first_batch = progress.next_batch;
    for (std::int64_t batch = first_batch; batch < sampler.num_batches(); ++batch) {
      const std::uint64_t dropout_seed = MixSeed(MixSeed(tc.seed, kDropoutStream), progress.global_step);
      const StepResult result = step.Run(sampler, batch, run.state(), dropout_seed, lr);
      if (!result.applied) ThrowDiverged(run, result, epoch + 1, batch + 1, lr);
      ++progress.global_step;
      progress.partial_loss_sum += static_cast<double>(result.loss) * static_cast<double>(tokens_per_batch);
      progress.partial_tokens += tokens_per_batch;
      progress.next_batch = batch + 1;
      const StepEvent event{epoch + 1, batch + 1, sampler.num_batches(), result.loss, lr};
      for (auto& h : handlers) h->OnStep(run, event);
      if (stop_requested && stop_requested()) run.RequestStop(StopReason::kSignal);
      if (run.stop_reason() != StopReason::kNone) {
        const CheckpointPoint point{CheckpointPoint::Kind::kStop, nullptr};
        for (auto& h : handlers) h->OnCheckpoint(run, point);
        outcome.interrupted = true;
        outcome.epochs_completed = progress.epochs_completed;
        for (auto& h : handlers) h->OnTrainEnd(run, outcome);
        return outcome;
      }
    }
    const double train_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const std::int64_t epoch_tokens = (sampler.num_batches() - first_batch) * tokens_per_batch;
    EpochSummary summary;
    summary.epoch = epoch + 1;
    summary.last_epoch = epoch + 1 == tc.epochs;
    summary.train_perplexity =
        std::exp(progress.partial_loss_sum / static_cast<double>(std::max<std::int64_t>(progress.partial_tokens, 1)));
    summary.learning_rate = lr;
    summary.tokens_per_s = train_seconds > 0 ? static_cast<double>(epoch_tokens) / train_seconds : 0.0;
    progress.epochs_completed = epoch + 1;
    progress.next_batch = 0;

    const std::span<const int> val_ids = run.val_ids();
    if (!val_ids.empty() && ((epoch + 1) % tc.eval_every == 0 || summary.last_epoch)) {
      for (auto& h : handlers) h->OnEvalBegin(run);
      EvalOptions eval_options;
      eval_options.streams = tc.batch_size;
      eval_options.num_steps = tc.num_steps;
      const EvalEvent eval{epoch + 1, Evaluate(run.model(), val_ids, eval_options)};
      summary.val_perplexity = eval.result.perplexity;
      for (auto& h : handlers) h->OnEval(run, eval);
    }
    summary.elapsed_s = run.ElapsedSeconds();
    // Best is judged on validation perplexity; without a validation split, on training perplexity.
    const std::optional<double> score =
        val_ids.empty() ? std::optional<double>(summary.train_perplexity) : summary.val_perplexity;
    if (score) summary.improved = run.RecordScore(*score);

    for (auto& h : handlers) h->OnEpochScored(run, summary);
    const CheckpointPoint point{CheckpointPoint::Kind::kEpochEnd, &summary};
    for (auto& h : handlers) h->OnCheckpoint(run, point);
    for (auto& h : handlers) h->OnEpochEnd(run, summary);
    outcome.train_perplexity = summary.train_perplexity;
    outcome.val_perplexity = summary.val_perplexity;
    if (run.stop_reason() == StopReason::kEarlyStop) {
      outcome.early_stopped = true;
      break;
    }
  }
  outcome.epochs_completed = progress.epochs_completed;
  outcome.best_val_perplexity = run.val_ids().empty() ? std::nullopt : progress.best_score;
  outcome.sample_prefix = SuggestedPrefix(run.data().vocab, run.config().generate.prefixes);
  for (auto& h : handlers) h->OnTrainEnd(run, outcome);
  return outcome;
}

}  // namespace

TrainOutcome RunTrainingLoop(TrainingRun& run, TrainStep& step, HandlerList& handlers,
                             const std::function<bool()>& stop_requested) {
  try {
    return RunLoop(run, step, handlers, stop_requested);
  } catch (...) {
    for (auto& h : handlers) h->OnAbort(run);
    throw;
  }
}

}  // namespace charlm
