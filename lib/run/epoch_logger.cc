// The console's line per epoch.
#include "run/epoch_logger.h"

#include <spdlog/spdlog.h>

#include "run/console_format.h"

namespace charlm {

void EpochLogger::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  spdlog::info("epoch {}/{}  train perplexity {}  val perplexity {}  lr {:.3g}  {:.0f} tokens/s  {:.1f} s",
               summary.epoch, run.config().train.epochs, FormatPerplexityAndBpc(summary.train_perplexity),
               FormatPerplexityAndBpc(summary.val_perplexity), summary.learning_rate, summary.tokens_per_s,
               summary.elapsed_s);
}

}  // namespace charlm
