// Wall time of a training step's elementwise phases, summed over steps, for charlm bench --breakdown.
#pragma once

#include <chrono>

namespace charlm {

// Seconds, summed since the struct was zeroed. The matrix products and the rest of a step are the step's time
// minus these.
struct PhaseTimes {
  double cell_forward = 0;      // recurrent layers' per-step gate kernels (and masks, bf16 rounding), forward
  double cell_backward = 0;     // the same, backward
  double softmax = 0;           // output bias, softmax and loss
  double softmax_backward = 0;  // dL/dlogits and the output bias gradient
  double optimizer = 0;         // the gradient norm and the optimizer's update
};

// Adds the time from its construction to its destruction to *total; total null: reads no clock at all.
class PhaseTimer {
 public:
  explicit PhaseTimer(double* total) : total_(total) {
    if (total_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~PhaseTimer() {
    if (total_ != nullptr) *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  double* total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace charlm
