// One optimizer step: batch -> forward -> backward -> reduce -> clip -> update. It knows nothing of files, logs,
// checkpoints or ranks; what it returns says whether the step was applied.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/model.h"
#include "model/optimizer.h"
#include "text/sampler.h"

namespace charlm {

// Combines the gradients and the loss of this step across workers before clipping (an allreduce that averages
// them, for data-parallel training). Empty = one worker: the gradients are used as they are.
using GradientReduce = std::function<void(std::span<float> grads, float& loss)>;

struct StepResult {
  float loss = 0;         // mean cross-entropy over the batch's B * T tokens, after the reduce
  double grad_norm = 0;   // global L2 norm before clipping
  bool applied = false;   // false when the loss or the gradient diverged: the weights were not touched
  bool loss_diverged = false;  // NaN or infinite loss, or a loss whose perplexity overflows
};

class TrainStep {
 public:
  // batch_size streams from first_stream on: all of the sampler's, or a data-parallel worker's share of them.
  TrainStep(CharModel<float>& model, Optimizer& optimizer, int batch_size, int num_steps, double clip_norm,
            GradientReduce reduce = {}, int first_stream = 0);

  // Trains on batch `batch` of the sampler's current epoch. `state` is carried in and out (reset first for the
  // random sampler, whose windows are unrelated); `dropout_seed` seeds this step's masks.
  StepResult Run(const Sampler& sampler, std::int64_t batch, RecurrentState<float>& state, std::uint64_t dropout_seed,
                 double lr);

 private:
  CharModel<float>& model_;
  Optimizer& optimizer_;
  int batch_size_;
  int num_steps_;
  double clip_norm_;
  GradientReduce reduce_;
  int first_stream_;
  std::unique_ptr<Workspace<float>> workspace_;
  std::vector<int> x_batch_major_, y_batch_major_;  // (B, T) as the sampler writes them
  std::vector<int> x_, y_;                          // (T, B) time-major, as the model reads them
};

}  // namespace charlm
