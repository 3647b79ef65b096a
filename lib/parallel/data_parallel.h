// Data-parallel training over Workers: each process trains a contiguous block of the batch's streams, and these
// pieces (the step's reduce, the start-up check, the state gathered for checkpoints, the split validation, the
// agreed stop, the handlers of the processes other than rank 0) make the N processes train the one model a single
// process would. The step and the loop stay unaware of ranks: Train() composes these into them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "parallel/workers.h"
#include "util/errors.h"
#include "run/handler.h"
#include "run/step.h"
#include "run/loop.h"
#include "run/run_state.h"

namespace charlm {

// FNV-1a, 64 bits: a fingerprint for comparing workers' inputs, not a defence against anyone.
inline constexpr std::uint64_t kFingerprintStart = 1469598103934665603ULL;
std::uint64_t Fingerprint(std::string_view bytes, std::uint64_t hash = kFingerprintStart);
std::uint64_t Fingerprint(const std::vector<float>& values, std::uint64_t hash);

// 2^24: the token count is summed as a float, with the gradients in one buffer.
inline constexpr std::int64_t kMaxReducedTokens = std::int64_t{1} << 24;

// Rank r's block [r * B / N, (r + 1) * B / N) of train.batch_size B. UserError when B does not divide by N, or
// when a job of several processes has more tokens per step (B * T) than the reduce counts exactly (2^24).
// `resuming`: the batch size is the checkpoint's, so the message names only the process counts that fit.
StreamShard ShardOf(const Workers& workers, int batch_size, int num_steps, bool resuming = false);

// The step's reduce over Workers: the model's reduce buffer (gradients, loss sum, token count) summed in place.
// Without overlap, in one allreduce after Backward. With overlap, the first `overlap` suffixes Backward reports
// final (the output layer's gradients with the tail, then the top recurrent layer's) start as non-blocking sums
// while the lower layers' backward runs, and Finish() sums the rest and waits for them.
class WorkersReduce final : public GradientReduce {
 public:
  static constexpr int kOverlapOutputAndTop = 2;
  WorkersReduce(Workers& workers, int overlap) : workers_(workers), overlap_(overlap) {}

  void Begin(std::span<float> buffer) override;
  void GradientsFinalFrom(std::size_t first) override;
  void Progress() override;
  void Finish() override;

  // Seconds spent in Finish() since construction: the reduction time the backward pass did not hide.
  double finish_seconds() const { return finish_seconds_; }

 private:
  Workers& workers_;
  int overlap_;
  std::span<float> buffer_;
  float tokens_ = 0;           // this worker's token count, the buffer's last value before the sum
  std::size_t unstarted_ = 0;  // buffer_[0, unstarted_) is not being summed yet
  int started_ = 0;            // non-blocking sums started in this step
  double finish_seconds_ = 0;
};

// Every worker must train from the same config, corpus, vocabulary and starting weights (a hash of each,
// gathered); otherwise a UserError naming the first disagreement, raised by every worker alike.
void CheckWorkersAgree(Workers& workers, const TrainingRun& run);

// The config part of that check, made before the corpus is read in parts (whose collectives follow the config).
void CheckConfigsAgree(Workers& workers, const Config& config);

// "process 1 of 2 disagrees with process 0 on <what>: start every process with the same command line ...".
inline constexpr const char* kConfigDiffers = "the config (its --config, --set or train.* keys differ)";
UserError Disagreement(int rank, int size, const std::string& what);

// The loop's validation shard and reduce, its agreed stop (the most pressing stop any worker asks for) and the
// time-based schedule's seconds (rank 0's).
void AddDataParallelOptions(Workers& workers, LoopOptions& options);

// Before a checkpoint that holds the carried state (a step checkpoint or a stop, consecutive sampler), gathers
// every stream's state into the run on every worker, so that rank 0's checkpoint does not depend on N. First in
// every worker's handler list.
class CarriedStateGather : public TrainHandler {
 public:
  explicit CarriedStateGather(Workers& workers) : workers_(workers) {}
  void OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) override;

 private:
  Workers& workers_;
};

// The handlers of a worker other than rank 0, which writes no file and prints nothing: the state gather and the
// decisions every worker must take alike (max_steps, early stopping); train.max_minutes is rank 0's clock alone.
HandlerList WorkerHandlers(Workers& workers);

}  // namespace charlm
