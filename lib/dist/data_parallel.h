// Data-parallel training over Workers: each process trains a contiguous block of the batch's streams, and these
// pieces (the step's reduce, the start-up check, the state gathered for checkpoints, the split validation, the
// agreed stop, the handlers of the processes other than rank 0) make the N processes train the one model a single
// process would. The step and the loop stay unaware of ranks: Train() composes these into them.
#pragma once

#include "dist/workers.h"
#include "run/handlers.h"
#include "run/train_step.h"
#include "run/training_loop.h"
#include "run/training_run.h"

namespace charlm {

// Rank r's block [r * B / N, (r + 1) * B / N) of train.batch_size B. UserError when B does not divide by N.
StreamShard ShardOf(const Workers& workers, int batch_size);

// Sums every worker's gradients and mean loss and divides by the workers: each worker's figures are the mean over
// its equal share of the batch, so the result is the mean over the whole batch that one process would compute.
GradientReduce AveragingReduce(Workers& workers);

// Every worker must train from the same config, corpus, vocabulary and starting weights (a hash of each,
// gathered); otherwise a UserError naming the first disagreement, raised by every worker alike.
void CheckWorkersAgree(Workers& workers, const TrainingRun& run);

// The loop's validation shard and reduce and its agreed stop (the most pressing stop any worker asks for).
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
