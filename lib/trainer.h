// Training: truncated BPTT over the sampler's minibatches, evaluation, generation, metrics, checkpoints,
// resuming, early stopping, and a clean stop on request (signals).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "model/model.h"

namespace charlm {

class Workers;

struct TrainHooks {
  std::function<bool()> stop_requested;  // polled after every step; true = save last.ckpt and return
  bool progress_bar = false;              // redraw a bar on stderr (a terminal); otherwise log lines only
  bool stdout_is_terminal = false;        // decides train.log_every_seconds's default (ResolvedLogSeconds)
  // The processes of a data-parallel job (lib/dist/workers.h; borrowed): each trains its block of the batch's
  // streams and rank 0 alone writes files and prints. Null = one process.
  Workers* workers = nullptr;
  // Called once every check has passed, right before the first step: from then on a stop saves last.ckpt.
  std::function<void()> loop_started;
};

struct TrainOutcome {
  int epochs_completed = 0;
  double train_perplexity = 0;
  std::optional<double> val_perplexity;
  std::optional<double> best_val_perplexity;
  bool early_stopped = false;
  bool interrupted = false;  // stop_requested fired; last.ckpt holds the exact position
  bool budget_reached = false;  // train.max_steps or train.max_minutes ran out; last.ckpt holds the exact position
  std::string budget;           // which, for the user: "train.max_steps 500" or "train.max_minutes 60"
  std::string last_checkpoint;
  // By validation perplexity, or by training perplexity without a validation split; empty when out_dir has no
  // best.ckpt (a run resumed into another folder, its best epoch before the checkpoint, whose best.ckpt was not
  // there to copy): the outcome never names a file that is not on disk.
  std::string best_checkpoint;
  std::string sample_prefix;    // a prefix in this vocabulary to suggest for `charlm generate` (SuggestedPrefix)
};

// A UserError when the parameters, gradients and optimizer state of `spec` alone would exceed the machine's
// physical memory, instead of std::bad_alloc (or the OOM killer) later.
void CheckModelFitsInMemory(const ModelSpec& spec);
// UserError when the model and one training step's activations (WorkspaceFloats) exceed the machine's memory, so
// a huge batch is refused with its sizes before anything is allocated, not by the allocator 8 GB later.
void CheckStepFitsInMemory(const ModelSpec& spec, int batch_size, int num_steps);

// Trains from scratch (resume_path empty) or continues the run saved in resume_path. When resuming, `config` is
// the configuration to continue with; keys that change the trajectory (data, model, most of train) must equal
// the checkpoint's, or a UserError names the first difference. Only run-length and reporting keys may change.
TrainOutcome Train(const Config& config, const std::string& resume_path, const TrainHooks& hooks);

// The trainer state of a run before its first step (epoch 0, batch 0, no best score), as a checkpoint stores it.
nlohmann::json InitialTrainerState();

// What `charlm import` writes: InitialTrainerState plus kImportedFromKey, the safetensors file. `train --resume` on
// such a checkpoint is fine-tuning: a new run from epoch 1 on its weights, which moves an earlier run in its out_dir
// aside as any new run does, and says so.
inline constexpr const char* kImportedFromKey = "imported_from";
nlohmann::json ImportedTrainerState(std::string_view safetensors_path);

// The keys that may differ between a checkpoint's config and the config a run resumes with.
const std::vector<std::string>& ResumableConfigKeys();

}  // namespace charlm
