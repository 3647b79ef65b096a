// The console's progress lines: one per log point and one per step validation.
#include "run/progress_logger.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "run/console_format.h"

namespace charlm {

void ProgressLogger::OnLog(TrainingRun& run, const StepEvent& step) {
  spdlog::info("epoch {}/{}  step {} ({:.1f}% of the epoch)  train loss {:.4f} ({:.3f} bits/char)  {:.0f} tokens/s  "
               "ETA epoch {}, run {}",
               step.epoch, run.config().train.epochs, step.step,
               step.num_batches > 0 ? 100.0 * static_cast<double>(step.batch) / step.num_batches : 100.0,
               step.running_loss, step.running_loss / std::log(2.0), step.tokens_per_s,
               FormatDuration(step.eta_epoch_s), FormatDuration(step.eta_run_s));
}

void ProgressLogger::OnEval(TrainingRun&, const EvalEvent& eval) {
  if (eval.epoch_end) return;  // the epoch line holds it
  spdlog::info("step {}: val perplexity {:.3f} ({:.3f} bits/char) on {} characters", eval.step,
               eval.result.perplexity, eval.result.bits_per_char, eval.result.tokens);
}

}  // namespace charlm
