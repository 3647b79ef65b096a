// out_dir/report.html rewritten as the run goes, and out_dir/run_info.json at its start.
#include "run/report_writer.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "report/report.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/shell_quote.h"

namespace charlm {

namespace fs = std::filesystem;

void ReportWriter::OnTrainBegin(TrainingRun& run) {
  if (!run.config().train.report) return;
  const Dataset& data = run.data();
  const int threads = run.config().train.threads;
  const nlohmann::json info = {
      {"corpus", run.config().data.corpus.Label()},
      {"corpus_chars", data.corpus_chars()},
      {"vocab_size", data.vocab.size()},
      {"train_chars", data.train_chars()},
      {"val_chars", data.val_chars()},
      {"test_chars", data.test_chars()},
      {"parameters", run.model().params().size()},
      {"threads", threads > 0 ? std::to_string(threads) : "all cores (train.threads = 0)"},
      {"machine", MachineDescription()},
      {"charlm_version", CHARLM_VERSION}};
  try {
    WriteFileAtomically((fs::path(run.config().train.out_dir) / "run_info.json").string(), info.dump(2) + "\n", "run information");
  } catch (const UserError& e) {
    spdlog::warn("{}; training goes on without a report", e.what());
    warned_ = true;
  }
}

void ReportWriter::Write(TrainingRun& run, bool live) {
  if (!run.config().train.report || warned_) return;
  const std::string& dir = run.config().train.out_dir;
  const std::string page_path = (fs::path(dir) / "report.html").string();
  page_written_ = false;
  std::string page;
  try {
    ReportOptions options;
    options.live = live;
    const std::function<bool()> stop = [&] { return run.PollStopSignal(stop_requested_); };
    page = RenderRunReport(LoadRun(dir), ComputeModelFigures(dir, stop), options);
  } catch (const UserError& e) {
    // `charlm report` reads the same files with the same limits, so naming it as a retry would send the user to
    // the same refusal.
    spdlog::warn("{} not written: {}; training goes on without a page (charlm report reads the same files, so it "
                 "cannot write one either)",
                 page_path, e.what());
    warned_ = true;
    return;
  }
  try {
    WriteFileAtomically(page_path, page, "report page");
    page_written_ = true;
  } catch (const UserError& e) {
    spdlog::warn("{}; training goes on without a page (after fixing that, charlm report {} writes it)", e.what(),
                 ShellQuote(dir));
    warned_ = true;
  }
}

void ReportWriter::OnEval(TrainingRun& run, const EvalEvent& eval) {
  if (!eval.epoch_end) Write(run, true);
}

void ReportWriter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  Write(run, !summary.last_epoch && run.stop_reason() == StopReason::kNone);
}

void ReportWriter::OnTrainEnd(TrainingRun& run, TrainOutcome& outcome) {
  Write(run, false);
  if (page_written_) outcome.report_page = (fs::path(run.config().train.out_dir) / "report.html").string();
}

}  // namespace charlm
