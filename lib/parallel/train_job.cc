// The entry point of training: builds the run, its step and its handlers (lib/run/), and runs the loop.
#include "parallel/train_job.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "ops/blas.h"
#include "parallel/corpus_share.h"
#include "parallel/data_parallel.h"
#include "util/errors.h"
#include "eval/evaluate.h"
#include "run/standard_handlers.h"
#include "run/step.h"
#include "run/loop.h"
#include "run/run_state.h"

namespace charlm {

static_assert(kMaxBatchSize == kMaxEvalStreams, "a run's validation streams must be ones eval --streams accepts");





TrainOutcome Train(const Config& config, const std::string& resume_path, const TrainEnvironment& hooks) {
  std::unique_ptr<Workers> alone;
  Workers& workers = hooks.workers != nullptr ? *hooks.workers : *(alone = SingleProcess());
  const bool parallel = workers.size() > 1;
  const StreamShard shard = ShardOf(workers, config.train.batch_size, config.train.num_steps, !resume_path.empty());
  DatasetLoader share;  // one process reads the whole corpus; a worker of several only what it needs
  if (parallel) share = [&workers](const Config& c, StreamShard s) { return LoadDatasetShare(workers, c, s); };
  if (hooks.init != nullptr) {
    // Fine-tuning reads the corpus as ids of the checkpoint's vocabulary (one process: RunTrain refuses mpirun).
    const InitialWeights* init = hooks.init;
    share = [init](const Config& c, StreamShard) { return LoadDatasetWithVocab(c.data, init->vocab); };
  }
  if (hooks.preloaded != nullptr && !parallel && hooks.init == nullptr && resume_path.empty() &&
      ConfigToJson(config)["data"] == hooks.preloaded_data) {
    std::shared_ptr<Dataset> preloaded = hooks.preloaded;
    share = [preloaded](const Config&, StreamShard) { return std::move(*preloaded); };
  }
  TrainingRun run(config, resume_path, shard, share);
  if (hooks.init != nullptr) run.StartFrom(*hooks.init);
  const TrainConfig& tc = run.config().train;
  if (parallel) CheckWorkersAgree(workers, run);
  workers.SetStallSeconds(tc.stall_seconds);
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
