// The progress bar redrawn on a terminal's stderr after every step.
#include "run/progress_bar.h"

#include <cmath>
#include <cstdio>

#include "run/console_format.h"

namespace charlm {

void ProgressBar::Draw(const std::string& text) {
  // Pads to 110 columns, the width Clear() blanks, so a shorter line leaves no tail of the previous one (a longer
  // line is not cut, and its tail outlives Clear).
  std::fprintf(stderr, "\r%-110s", text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::OnStep(TrainingRun& run, const StepEvent& step) {
  last_ = step;
  const int width = 30;
  const int filled = step.num_batches > 0 ? static_cast<int>(width * step.batch / step.num_batches) : width;
  char line[256];
  std::snprintf(line, sizeof line, "epoch %d/%d [%s%s] %lld/%lld  train ppl %.3f  %.0f tok/s  ETA %s, run %s",
                step.epoch, run.config().train.epochs, std::string(filled, '#').c_str(),
                std::string(width - filled, ' ').c_str(), static_cast<long long>(step.batch),
                static_cast<long long>(step.num_batches), std::exp(step.running_loss), step.tokens_per_s,
                FormatDuration(step.eta_epoch_s).c_str(), FormatDuration(step.eta_run_s).c_str());
  Draw(line);
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r%110s\r", "");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::OnLog(TrainingRun&, const StepEvent&) { Clear(); }  // the log line follows; the next step redraws

void ProgressBar::OnActivity(TrainingRun& run, std::string_view activity) {
  if (activity.empty()) {
    Clear();
    return;
  }
  Draw("epoch " + std::to_string(last_.epoch) + "/" + std::to_string(run.config().train.epochs) + "  " +
       std::string(activity) + "...");
}

void ProgressBar::OnEvalBegin(TrainingRun& run) { OnActivity(run, "validating"); }
void ProgressBar::OnEval(TrainingRun&, const EvalEvent&) { Clear(); }
void ProgressBar::OnEpochScored(TrainingRun&, EpochSummary&) { Clear(); }
void ProgressBar::OnTrainEnd(TrainingRun&, TrainOutcome&) { Clear(); }
void ProgressBar::OnAbort(TrainingRun&) noexcept { Clear(); }

}  // namespace charlm
