// One optimizer step: batch -> forward -> backward -> reduce -> clip -> update. It knows nothing of files, logs,
// checkpoints or ranks; what it returns says whether the step was applied.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ops/column_threads.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "text/sampler.h"

namespace charlm {

// Sums this step's gradients, loss and token count over the workers of data-parallel training, before clipping.
// As the model's BackwardListener it hears which gradients are final while Backward still runs, so it may start
// summing those early; the step does not know whether it does, nor over whom.
class GradientReduce : public BackwardListener {
 public:
  // Before Backward. `buffer` is the model's reduce_buffer(): the zeroed gradients, then this worker's loss sum
  // and token count.
  virtual void Begin(std::span<float> buffer) = 0;
  // After Backward: when it returns, every value of the buffer is its sum over the workers.
  virtual void Finish() = 0;
};

struct StepResult {
  float loss = 0;         // mean cross-entropy over the batch's B * T tokens, after the reduce
  double grad_norm = 0;   // global L2 norm before clipping
  bool applied = false;   // false when the loss or the gradient diverged: the weights were not touched
  bool loss_diverged = false;  // NaN or infinite loss, or a loss whose perplexity overflows
};

class TrainStep {
 public:
  // batch_size streams from first_stream on: all of the sampler's, or a data-parallel worker's share of them.
  // `reduce` (borrowed; null = one worker, the gradients are used as they are) sums over the workers.
  TrainStep(CharModel<float>& model, Optimizer& optimizer, int batch_size, int num_steps, double clip_norm,
            GradientReduce* reduce = nullptr, int first_stream = 0);

  // Trains on batch `batch` of the sampler's current epoch. `state` is carried in and out (reset first for the
  // random sampler, whose windows are unrelated); `dropout_seed` seeds this step's masks.
  StepResult Run(const Sampler& sampler, std::int64_t batch, RecurrentState<float>& state, std::uint64_t dropout_seed,
                 double lr);
  // The same on tokens laid out already: x and y (T*B) time-major (charlm bench's random tokens).
  StepResult RunOn(const int* x, const int* y, RecurrentState<float>& state, std::uint64_t dropout_seed, double lr);

  // (num_steps, batch_size) activations, free between steps (charlm bench evaluates in them).
  Workspace<float>& workspace() { return *workspace_; }

  // Where the elementwise phases' time is added from now on (charlm bench --breakdown); null = not timed.
  void set_phase_times(PhaseTimes* times);
  // The threads the cell kernels, the softmax and the optimizer's update are split over: as many as OpenBLAS's
  // (train.threads) when the step is made.
  int row_threads() const { return row_threads_->threads(); }
  // The same pool, for validation between steps.
  ColumnThreads* row_thread_pool() const { return row_threads_.get(); }

 private:
  CharModel<float>& model_;
  Optimizer& optimizer_;
  int batch_size_;
  int num_steps_;
  double clip_norm_;
  GradientReduce* reduce_;
  int first_stream_;
  std::unique_ptr<ColumnThreads> row_threads_;
  std::unique_ptr<Workspace<float>> workspace_;
  PhaseTimes* phase_times_ = nullptr;  // borrowed
  std::vector<int> x_batch_major_, y_batch_major_;  // (B, T) as the sampler writes them
  std::vector<int> x_, y_;                          // (T, B) time-major, as the model reads them
};

}  // namespace charlm
