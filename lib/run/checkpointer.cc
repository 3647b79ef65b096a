// last.ckpt and best.ckpt: when each is saved, and the best.ckpt a run resumed into another folder copies.
#include "run/checkpointer.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "config/config.h"
#include "format/checkpoint.h"
#include "run/console_format.h"
#include "run/out_dir.h"
#include "run/run_files.h"
#include "util/errors.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// Why `best`, read from `source`, is not the resumed run's best so far; nullopt when it is.
std::optional<std::string> NotTheRunsBest(const CheckpointMetadata& best, const TrainingRun& run,
                                          const std::string& source) {
  if (!(best.vocab == run.data().vocab.ToJson())) return "its vocabulary differs from the checkpoint's";
  if (!best.config.is_object() || !best.config.contains("model") ||
      !(best.config["model"] == ConfigToJson(run.config())["model"])) {
    return "its model differs from the checkpoint's";
  }
  const Progress saved = Progress::FromJson(best.trainer_state, source);  // UserError when unreadable
  if (saved.global_step > run.progress().global_step) {
    return "it was saved at step " + std::to_string(saved.global_step) + ", after the checkpoint's step " +
           std::to_string(run.progress().global_step) + " (a later run in that folder)";
  }
  if (saved.best_score != run.progress().best_score) {
    return "its best score is not the checkpoint's (another run's model)";
  }
  return std::nullopt;
}

}  // namespace

void Checkpointer::OnTrainBegin(TrainingRun& run) {
  const std::optional<double> best_score = run.progress().best_score;
  if (!run.resumed() || !run.imported_from().empty() || !best_score) return;  // no best yet: the first epoch makes it
  const fs::path source = EarlierRunFile(run, "best.ckpt");
  const fs::path target = run.best_checkpoint_path();
  if (ResumedInPlace(run)) return;  // best.ckpt is there
  std::error_code ec;
  const std::string until = "so " + target.string() + " is written when " +
                            (run.val_ids().empty() ? "training" : "validation") + " perplexity improves on " +
                            FormatPerplexityAndBpc(best_score) + ", the best before the checkpoint";
  if (!fs::is_regular_file(source, ec)) {
    spdlog::warn("resuming {}: there is no {} beside it, {}", run.resume_path(), source.string(), until);
    return;
  }
  // Checked on its JSON sections alone, so that a best.ckpt that is not copied (a later run's, another model's, a
  // damaged one) is never held whole; the copy then needs every byte, and checks what it copies again, since
  // another run may have replaced the file in between.
  std::optional<std::string> reason;
  CheckpointData best;
  try {
    reason = NotTheRunsBest(LoadCheckpointMetadata(source.string()), run, source.string());
    if (!reason) {
      best = LoadCheckpoint(source.string());
      reason = NotTheRunsBest({best.config, best.vocab, best.trainer_state}, run, source.string());
    }
  } catch (const UserError& e) {
    reason = std::string("it cannot be read (") + e.what() + ")";
  }
  if (reason) {
    spdlog::warn("resuming {}: {} is not copied: {}; {}", run.resume_path(), source.string(), *reason, until);
    return;
  }
  SaveCheckpoint(target.string(), best);  // atomically, as every checkpoint: temp file, fsync, rename
  spdlog::info("resuming {}: copied {} (the run's best so far, {} perplexity {}) into {}", run.resume_path(),
               source.string(), run.val_ids().empty() ? "training" : "validation", FormatPerplexityAndBpc(best_score),
               target.string());
}

void Checkpointer::OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) {
  if (point.kind != CheckpointPoint::Kind::kEpochEnd) {
    if (point.best) run.Save(run.best_checkpoint_path());
    run.Save(run.last_checkpoint_path());
    return;
  }
  const EpochSummary& epoch = *point.epoch;
  if (epoch.improved) run.Save(run.best_checkpoint_path());
  if (epoch.epoch % run.config().train.checkpoint_every == 0 || epoch.last_epoch ||
      run.stop_reason() != StopReason::kNone) {
    run.Save(run.last_checkpoint_path());
  }
}

}  // namespace charlm
