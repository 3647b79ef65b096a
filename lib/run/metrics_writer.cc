// metrics.jsonl: a row per log point, step validation and epoch, kept up to the resumed step.
#include "run/metrics_writer.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "run/run_files.h"
#include "util/errors.h"
#include "util/json_parse.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

fs::path MetricsPath(const TrainingRun& run) { return fs::path(run.config().train.out_dir) / "metrics.jsonl"; }

nlohmann::json OptionalJson(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

bool SameFile(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

}  // namespace

// Keeps the earlier rows up to the resumed position (a row after it describes training that is being redone),
// copied from the checkpoint's folder when the run resumes into another, so the new folder holds the whole run;
// starts the file afresh otherwise. Rows carry their step; rows written before steps were recorded, their epoch.
void MetricsWriter::OnTrainBegin(TrainingRun& run) {
  const fs::path path = MetricsPath(run);
  const Progress& progress = run.progress();
  std::vector<std::string> kept;
  if (progress.global_step > 0) {
    const fs::path earlier = EarlierRunFile(run, "metrics.jsonl");
    const std::optional<std::vector<std::string>> rows = KeptLines(earlier, [&](const nlohmann::json& j) {
      const std::optional<std::int64_t> step =
          j.contains("step") ? ExactInteger<std::int64_t>(j["step"]) : std::nullopt;
      const std::optional<int> epoch = j.contains("epoch") ? ExactInteger<int>(j["epoch"]) : std::nullopt;
      return j.contains("step") ? step && *step <= progress.global_step : epoch && *epoch <= progress.epochs_completed;
    });
    if (!rows) {
      spdlog::warn("resuming {}: there is no {} beside it, so {} (and report.html's curves) start at step {}",
                   run.resume_path(), earlier.string(), path.string(), progress.global_step);
    } else {
      kept = *rows;
      if (!SameFile(earlier, path)) {
        spdlog::info("resuming {}: copied the {} rows of {} up to step {} into {}", run.resume_path(), kept.size(),
                     earlier.string(), progress.global_step, path.string());
      }
    }
  }
  WriteLines(path, kept);
  // A fine-tuning run says where its weights came from, as its first row.
  if (!run.init_from().empty() && progress.global_step == 0) Append(run, {{"kind", "init"}, {"init_from", run.init_from()}});
}

void MetricsWriter::Append(const TrainingRun& run, const nlohmann::json& row) {
  const fs::path path = MetricsPath(run);
  std::ofstream metrics(path, std::ios::app);
  metrics << row.dump() << '\n';
  metrics.flush();
  if (!metrics) throw UserError(path.string() + " cannot be written: check free space");
}

void MetricsWriter::OnLog(TrainingRun& run, const StepEvent& step) {
  Append(run, {{"kind", "log"},
               {"epoch", step.epoch},
               {"step", step.step},
               {"epoch_fraction", step.num_batches > 0 ? static_cast<double>(step.batch) / step.num_batches : 1.0},
               {"train_loss", step.running_loss},
               {"train_bits_per_char", step.running_loss / std::log(2.0)},
               {"grad_norm", step.grad_norm},
               {"learning_rate", step.learning_rate},
               {"tokens_per_s", step.tokens_per_s},
               {"eta_epoch_s", step.eta_epoch_s},
               {"eta_run_s", step.eta_run_s},
               {"elapsed_s", step.elapsed_s}});
}

void MetricsWriter::OnEval(TrainingRun& run, const EvalEvent& eval) {
  if (eval.epoch_end) return;  // the epoch row holds it
  Append(run, {{"kind", "eval"},
               {"epoch", eval.epoch},
               {"step", eval.step},
               {"val_perplexity", eval.result.perplexity},
               {"val_bits_per_char", eval.result.bits_per_char},
               {"val_chars", eval.result.tokens},
               {"elapsed_s", eval.elapsed_s}});
}

void MetricsWriter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  Append(run, {{"kind", "epoch"},
               {"epoch", summary.epoch},
               {"step", run.progress().global_step},
               {"train_perplexity", summary.train_perplexity},
               {"train_bpc", std::log2(summary.train_perplexity)},
               {"val_perplexity", OptionalJson(summary.val_perplexity)},
               {"val_bpc", summary.val_perplexity ? nlohmann::json(std::log2(*summary.val_perplexity))
                                                  : nlohmann::json(nullptr)},
               {"learning_rate", summary.learning_rate},
               {"tokens_per_s", summary.tokens_per_s},
               {"grad_norm", summary.grad_norm},
               {"elapsed_s", summary.elapsed_s}});
}

}  // namespace charlm
