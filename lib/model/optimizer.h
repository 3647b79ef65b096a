// Optimizers (SGD with momentum, Adam, RMSprop) over the flat parameter buffer, global-norm clipping, LR schedules.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "config/config.h"

namespace charlm {

class ColumnThreads;

// The optimizer's state lives in one flat buffer (saved in checkpoints) with named views into it:
//   SGD with momentum: velocity (N)        Adam: first moment m (N), second moment v (N)
//   RMSprop: mean square s (N)             plain SGD: nothing
// Weight decay is L2 added to the gradient (g += weight_decay * p) before the update.
class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, std::size_t num_params);

  // One update of params with grad_scale * grads at learning rate lr; counts steps for Adam's bias correction.
  // grad_scale is the clipping factor (ClipScale), applied here so the gradients are not rewritten in a pass of
  // their own. Without weight decay the result is bit-identical to scaling them first (ClipGlobalNorm) and
  // stepping with 1; with it, the scaled gradient may be fused into the decay term (one rounding fewer).
  // `threads` (null = the caller alone) split the update by ranges of parameters, bit-identical to one thread.
  void Step(std::span<float> params, std::span<const float> grads, double lr, float grad_scale = 1.0f,
            ColumnThreads* threads = nullptr);

  std::vector<float>& state() { return state_; }
  const std::vector<float>& state() const { return state_; }
  std::int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(std::int64_t steps) { steps_taken_ = steps; }

 private:
  OptimizerConfig config_;
  std::size_t num_params_;
  std::vector<float> state_;
  std::int64_t steps_taken_ = 0;
};

// The global L2 norm of grads (summed in double).
double GlobalNorm(std::span<const float> grads);

// The factor that brings a global norm down to max_norm: max_norm / norm when it is above (and max_norm > 0), else 1.
float ClipScale(double norm, double max_norm);

// Scales grads so their global L2 norm is at most max_norm (max_norm 0 = no clipping). Returns the norm before.
double ClipGlobalNorm(std::span<float> grads, double max_norm);

// The learning rate for a 0-based epoch under the schedule.
double ScheduledLearningRate(const OptimizerConfig& optimizer, const LrScheduleConfig& schedule, int epoch);

}  // namespace charlm
