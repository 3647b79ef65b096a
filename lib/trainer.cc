// The entry point of training: builds the run, its step and its handlers (lib/run/), and runs the loop.
#include "trainer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "model/blas.h"
#include "dist/corpus_share.h"
#include "dist/data_parallel.h"
#include "errors.h"
#include "evaluate.h"
#include "run/handlers.h"
#include "run/train_step.h"
#include "run/training_loop.h"
#include "run/training_run.h"

namespace charlm {

static_assert(kMaxBatchSize == kMaxEvalStreams, "a run's validation streams must be ones eval --streams accepts");

const std::vector<std::string>& ResumableConfigKeys() {
  static const std::vector<std::string> keys = {"train.epochs",         "train.patience", "train.eval_every",
                                                "train.checkpoint_every", "train.out_dir",  "train.threads",
                                                "train.checkpoint_every_steps", "train.eval_every_steps",
                                                "train.eval_max_chars", "train.log_every_seconds",
                                                "train.max_steps", "train.max_minutes", "train.report",
                                                "train.precision",
                                                "generate.*"};
  return keys;
}

nlohmann::json InitialTrainerState() { return Progress{}.ToJson(); }

nlohmann::json ImportedTrainerState(std::string_view safetensors_path) {
  nlohmann::json state = InitialTrainerState();
  state[kImportedFromKey] = std::string(safetensors_path);
  return state;
}

void CheckStepFitsInMemory(const ModelSpec& spec, int batch_size, int num_steps) {
  const double model_gb = 4.0 * sizeof(float) * ParameterCount(spec) / 1e9;
  const double step_gb = sizeof(float) * WorkspaceFloats(spec, num_steps, batch_size) / 1e9;
  const double machine_gb =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  if (machine_gb > 0 && model_gb + step_gb > machine_gb) {
    char message[512];
    std::snprintf(message, sizeof message,
                  "train.batch_size %d x train.num_steps %d = %.0f characters a step, whose activations need up to "
                  "%.1f GB (the model itself %.1f GB), more than this machine's %.1f GB of memory: lower "
                  "train.batch_size or train.num_steps",
                  batch_size, num_steps, static_cast<double>(batch_size) * num_steps, step_gb, model_gb, machine_gb);
    throw UserError(message);
  }
}

void CheckModelFitsInMemory(const ModelSpec& spec) {
  // ParamLayout's count, from the sizes alone: building the layout of 2^31 layers would itself take gigabytes.
  const double params = ParameterCount(spec);
  // Parameters, gradients and up to two optimizer moments: four floats each, before any activation.
  const double needed_gb = 4.0 * sizeof(float) * params / 1e9;
  const double machine_gb =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  if (machine_gb > 0 && needed_gb > machine_gb) {
    char message[400];
    std::snprintf(message, sizeof message,
                  "the model has %.0f parameters, which with gradients and optimizer state need %.1f GB, more than "
                  "this machine's %.1f GB of memory: make model.hidden_size, model.num_layers or model.embedding_size "
                  "smaller",
                  params, needed_gb, machine_gb);
    throw UserError(message);
  }
}

TrainOutcome Train(const Config& config, const std::string& resume_path, const TrainHooks& hooks) {
  std::unique_ptr<Workers> alone;
  Workers& workers = hooks.workers != nullptr ? *hooks.workers : *(alone = SingleProcess());
  const bool parallel = workers.size() > 1;
  const StreamShard shard = ShardOf(workers, config.train.batch_size, config.train.num_steps, !resume_path.empty());
  DatasetLoader share;  // one process reads the whole corpus; a worker of several only what it needs
  if (parallel) share = [&workers](const Config& c, StreamShard s) { return LoadDatasetShare(workers, c, s); };
  TrainingRun run(config, resume_path, shard, share);
  const TrainConfig& tc = run.config().train;
  if (parallel) CheckWorkersAgree(workers, run);
  if (tc.threads == 0 && workers.local_size() > 1) {
    // train.threads 0: the machine's cores shared among this job's processes on it.
    const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
    SetBlasThreads(std::max(1, cores / workers.local_size()));
  }
  WorkersReduce reduce(workers, WorkersReduce::kOverlapOutputAndTop);
  TrainStep step(run.model(), run.optimizer(), shard.count, tc.num_steps, tc.clip_norm, parallel ? &reduce : nullptr,
                 shard.first);
  // Rank 0 writes the files and prints; the other workers only take part in the decisions every worker shares.
  // Rank 0 locks out_dir here (OutDirGuard): every check is done before the first line of the run is logged.
  HandlerList handlers = workers.rank() == 0 ? StandardHandlers(run.config(), hooks) : WorkerHandlers(workers);
  run.LogStart();
  if (parallel && workers.rank() == 0) handlers.insert(handlers.begin(), std::make_unique<CarriedStateGather>(workers));
  LoopOptions options;
  options.stop_requested = hooks.stop_requested;
  options.log_every_seconds = ResolvedLogSeconds(tc.log_every_seconds, hooks.stdout_is_terminal);
  if (parallel) AddDataParallelOptions(workers, options);
  if (tc.log_every_seconds == kLogEverySecondsAuto && options.log_every_seconds > 0) {
    spdlog::info("a progress line every {:g} s (stdout is not a terminal; set train.log_every_seconds to change it)",
                 options.log_every_seconds);
  }
  if (parallel) {
    spdlog::info("data-parallel over {} processes: {} streams each of train.batch_size {}", workers.size(),
                 shard.count, tc.batch_size);
  }
  if (hooks.loop_started) hooks.loop_started();
  return RunTrainingLoop(run, step, handlers, options);
}

}  // namespace charlm
