// out_dir/report.html rewritten as the run goes, and out_dir/run_info.json at its start.
#pragma once

#include <functional>
#include <utility>

#include "run/handler.h"

namespace charlm {

// out_dir/report.html (lib/report/) rewritten atomically after every validation and epoch end, and
// out_dir/run_info.json (corpus and split sizes, machine, threads, version) at the start; train.report = false
// leaves both out. A page that cannot be made or written is a warning, once: the training goes on, and the end of
// the run names the page only when it was written.
class ReportWriter : public TrainHandler {
 public:
  // stop_requested: as SamplePrinter's; a stopped run's page leaves out the continuations.
  explicit ReportWriter(std::function<bool()> stop_requested = {}) : stop_requested_(std::move(stop_requested)) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnEval(TrainingRun& run, const EvalEvent& eval) override;  // step validations; epoch ends come below
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;
  void OnTrainEnd(TrainingRun& run, TrainOutcome& outcome) override;  // names the page when its last write succeeded

 private:
  void Write(TrainingRun& run, bool live);
  bool warned_ = false;
  bool page_written_ = false;  // the last Write put a current page on disk
  std::function<bool()> stop_requested_;
};

}  // namespace charlm
