// The handlers of `charlm train`, in the order the loop calls them.
#include "run/standard_handlers.h"

#include <memory>

#include "run/baseline_reporter.h"
#include "run/budget.h"
#include "run/checkpointer.h"
#include "run/config_writer.h"
#include "run/early_stopping.h"
#include "run/epoch_logger.h"
#include "run/metrics_writer.h"
#include "run/out_dir.h"
#include "run/progress_bar.h"
#include "run/progress_logger.h"
#include "run/report_writer.h"
#include "run/sample_printer.h"

namespace charlm {

HandlerList StandardHandlers(const Config& config, const TrainEnvironment& hooks) {
  HandlerList handlers;
  // First, and locked here: the lock comes before any file is written and any line is logged.
  handlers.push_back(std::make_unique<OutDirGuard>(config.train.out_dir));
  if (hooks.progress_bar) handlers.push_back(std::make_unique<ProgressBar>());
  handlers.push_back(std::make_unique<BaselineReporter>());
  handlers.push_back(std::make_unique<ConfigWriter>());
  handlers.push_back(std::make_unique<Budget>());
  handlers.push_back(std::make_unique<Checkpointer>());
  handlers.push_back(std::make_unique<ProgressLogger>());
  handlers.push_back(std::make_unique<EpochLogger>());
  handlers.push_back(std::make_unique<MetricsWriter>());
  handlers.push_back(std::make_unique<SamplePrinter>(hooks.stop_requested));
  handlers.push_back(std::make_unique<ReportWriter>(hooks.stop_requested));  // after the metrics row and samples it shows
  handlers.push_back(std::make_unique<EarlyStopping>());
  return handlers;
}

}  // namespace charlm
