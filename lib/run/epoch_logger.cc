// The console's line per epoch.
#include "run/epoch_logger.h"

#include <spdlog/spdlog.h>

#include <string>

#include "run/console_format.h"

namespace charlm {

void EpochLogger::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  // Under a time budget the clock ends the run, and train.epochs is only a ceiling (--minutes sets a million):
  // "epoch 57/1000000" would read as a run barely begun.
  const TrainConfig& tc = run.config().train;
  const std::string epoch =
      tc.max_minutes > 0 ? std::to_string(summary.epoch) : std::to_string(summary.epoch) + "/" + std::to_string(tc.epochs);
  spdlog::info("epoch {}  train perplexity {}  val perplexity {}  lr {:.3g}  {:.0f} tokens/s  {:.1f} s",
               epoch, FormatPerplexityAndBpc(summary.train_perplexity),
               FormatPerplexityAndBpc(summary.val_perplexity), summary.learning_rate, summary.tokens_per_s,
               summary.elapsed_s);
}

}  // namespace charlm
