// Optimizers (SGD with momentum, Adam, AdamW, RMSprop) over the flat parameter buffer, global-norm clipping, LR schedules.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "config/config.h"
#include "model/model.h"

namespace charlm {

class ColumnThreads;

// [begin, end) of the flat parameter buffer, and whether AdamW decays it.
struct DecaySegment {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool decayed = true;
};

// The buffer cut into segments in order, weights (the embedding and the kernels) decayed and biases not, as nanoGPT
// does: a bias shifts a unit rather than scaling an input, and pulling it to zero only biases the unit. Adjacent
// segments of the same kind are merged, so a layer's biases between two kernels make one undecayed segment.
std::vector<DecaySegment> DecaySegments(const ParamLayout& layout);

// The optimizer's state lives in one flat buffer (saved in checkpoints) with named views into it:
//   SGD with momentum: velocity (N)        Adam, AdamW: first moment m (N), second moment v (N)
//   RMSprop: mean square s (N)             plain SGD: nothing
// SGD, Adam and RMSprop: weight decay is L2 added to the gradient (g += weight_decay * p) before the update, on
// every parameter. AdamW: decoupled weight decay (Loshchilov & Hutter, as torch.optim.AdamW), applied to the
// parameters before the Adam update and only on the decayed segments: p *= 1 - lr * weight_decay.
class Optimizer {
 public:
  // Every parameter is a weight: AdamW decays them all.
  Optimizer(const OptimizerConfig& config, std::size_t num_params);
  // AdamW decays the segments DecaySegments(layout) marks, the others (biases) not.
  Optimizer(const OptimizerConfig& config, const ParamLayout& layout);

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
  // AdamW's update of [begin, end), one segment of one kind: the decay factor is 1 on biases.
  void AdamwRange(float* params, const float* grads, int begin, int end, float decay_factor, float step, float eps,
                  float grad_scale);

  OptimizerConfig config_;
  std::size_t num_params_;
  std::vector<DecaySegment> segments_;  // covering [0, num_params_) in order
  std::vector<float> state_;
  std::int64_t steps_taken_ = 0;
};

// The global L2 norm of grads (summed in double).
double GlobalNorm(std::span<const float> grads);

// The factor that brings a global norm down to max_norm: max_norm / norm when it is above (and max_norm > 0), else 1.
float ClipScale(double norm, double max_norm);

// Scales grads so their global L2 norm is at most max_norm (max_norm 0 = no clipping). Returns the norm before.
double ClipGlobalNorm(std::span<float> grads, double max_norm);

// The learning rate for a 0-based epoch under the schedule; "cosine" is set per step (CosineLearningRate) and
// gives the base learning rate here.
double ScheduledLearningRate(const OptimizerConfig& optimizer, const LrScheduleConfig& schedule, int epoch);

// "cosine"'s learning rate for the step with 0-based index `step` (the optimizer steps before it), W = warmup_steps:
//   warm-up  lr * (step + 1) / W                                      (infinite from step W on: no cap)
//   cosine   min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2   progress clamped to [0, 1]
//   result   the smaller of the two
// By steps, progress = (step - W) / (total_steps - W): lr through the warm-up's last step, then down to min_lr at
// total_steps (the step after the last; held there past it). By time, progress is the seconds trained over the
// budget's, from the start: the warm-up's line then meets the cosine where it is, with no jump.
double CosineLearningRate(const OptimizerConfig& optimizer, const LrScheduleConfig& schedule, std::int64_t step,
                          double progress);

// Cosine progress by steps: (step - W) / (total_steps - W), 0 during the warm-up and 1 when nothing is left after it.
double CosineProgressBySteps(std::int64_t step, std::int64_t warmup_steps, std::int64_t total_steps);

}  // namespace charlm
