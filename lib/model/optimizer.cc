// Optimizer updates, clipping and schedules: flat loops over the parameter buffer.
#include "model/optimizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

#include "ops/column_threads.h"

namespace charlm {

namespace {

bool IsDecayed(TensorKind kind) {
  switch (kind) {
    case TensorKind::kEmbedding:
    case TensorKind::kInputKernel:
    case TensorKind::kRecurrentKernel:
    case TensorKind::kOutputKernel: return true;
    case TensorKind::kBias:
    case TensorKind::kRecurrentBias:
    case TensorKind::kOutputBias: return false;
  }
  return true;
}

std::size_t StateSlots(const OptimizerConfig& config) {
  switch (config.name) {
    case OptimizerKind::kSgd: return config.momentum > 0 ? 1 : 0;
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamw: return 2;
    case OptimizerKind::kRmsprop: return 1;
  }
  return 0;
}

}  // namespace

std::vector<DecaySegment> DecaySegments(const ParamLayout& layout) {
  std::vector<DecaySegment> segments;
  for (const ParamTensor& tensor : layout.tensors()) {
    if (tensor.size() == 0) continue;
    const bool decayed = IsDecayed(tensor.kind);
    const std::size_t end = tensor.offset + tensor.size();
    if (!segments.empty() && segments.back().decayed == decayed && segments.back().end == tensor.offset) {
      segments.back().end = end;
    } else {
      segments.push_back({tensor.offset, end, decayed});
    }
  }
  return segments;
}

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t num_params)
    : config_(config), num_params_(num_params), segments_{{0, num_params, true}} {
  state_.assign(StateSlots(config) * num_params, 0.0f);
}

Optimizer::Optimizer(const OptimizerConfig& config, const ParamLayout& layout)
    : config_(config), num_params_(layout.total()), segments_(DecaySegments(layout)) {
  state_.assign(StateSlots(config) * num_params_, 0.0f);
}

void Optimizer::AdamwRange(float* params, const float* grads, int begin, int end, float decay_factor, float step,
                           float eps, float grad_scale) {
  const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
  // Raw restrict pointers so GCC vectorizes the loop, as Adam's.
  float* __restrict p = params + begin;
  const float* __restrict grad = grads + begin;
  float* __restrict m = state_.data() + begin;
  float* __restrict v = state_.data() + num_params_ + begin;
  const int count = end - begin;
  for (int k = 0; k < count; ++k) {
    const float g = grad_scale * grad[k];
    m[k] = b1 * m[k] + (1 - b1) * g;
    v[k] = b2 * v[k] + (1 - b2) * g * g;
    p[k] = decay_factor * p[k] - step * m[k] / (std::sqrt(v[k]) + eps);
  }
}

void Optimizer::Step(std::span<float> params, std::span<const float> grads, double lr, float grad_scale,
                     ColumnThreads* threads) {
  assert(params.size() == num_params_ && grads.size() == num_params_);
  ++steps_taken_;
  const float wd = static_cast<float>(config_.weight_decay);
  const float rate = static_cast<float>(lr);
  const int n = static_cast<int>(num_params_);
  assert(num_params_ <= static_cast<std::size_t>(std::numeric_limits<int>::max()));
  // Each update reads and writes its own parameter's values only, so any split into ranges gives the same bits;
  // ranges start on 16-float (64-byte) boundaries so that two threads never write one cache line.
  auto split = [&](const auto& update_range) { ParallelRanges(threads, n, 16, static_cast<long>(n), update_range); };
  switch (config_.name) {
    case OptimizerKind::kSgd: {
      if (config_.momentum <= 0) {
        split([&](int begin, int end) {
          for (int k = begin; k < end; ++k) params[k] -= rate * (grad_scale * grads[k] + wd * params[k]);
        });
        break;
      }
      float* velocity = state_.data();
      const float mu = static_cast<float>(config_.momentum);
      split([&](int begin, int end) {
        for (int k = begin; k < end; ++k) {
          velocity[k] = mu * velocity[k] + grad_scale * grads[k] + wd * params[k];
          params[k] -= rate * velocity[k];
        }
      });
      break;
    }
    case OptimizerKind::kAdam: {
      const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
      const double t = static_cast<double>(steps_taken_);
      // Bias corrections folded into the step size and epsilon, as in the Adam paper's efficient form.
      const float step = static_cast<float>(lr * std::sqrt(1.0 - std::pow(config_.beta2, t)) /
                                            (1.0 - std::pow(config_.beta1, t)));
      const float eps = static_cast<float>(config_.eps * std::sqrt(1.0 - std::pow(config_.beta2, t)));
      float* const state = state_.data();
      split([&](int begin, int end) {
        // Raw restrict pointers so GCC vectorizes the loop (with -fno-math-errno, sqrt has no errno branch).
        float* __restrict p = params.data() + begin;
        const float* __restrict grad = grads.data() + begin;
        float* __restrict m = state + begin;
        float* __restrict v = state + num_params_ + begin;
        const int count = end - begin;
        for (int k = 0; k < count; ++k) {
          const float g = grad_scale * grad[k] + wd * p[k];
          m[k] = b1 * m[k] + (1 - b1) * g;
          v[k] = b2 * v[k] + (1 - b2) * g * g;
          p[k] -= step * m[k] / (std::sqrt(v[k]) + eps);
        }
      });
      break;
    }
    case OptimizerKind::kAdamw: {
      const double t = static_cast<double>(steps_taken_);
      // Adam's step size and epsilon with the bias corrections folded in; the decay is decoupled from them.
      const float step = static_cast<float>(lr * std::sqrt(1.0 - std::pow(config_.beta2, t)) /
                                            (1.0 - std::pow(config_.beta1, t)));
      const float eps = static_cast<float>(config_.eps * std::sqrt(1.0 - std::pow(config_.beta2, t)));
      const float decay_factor = static_cast<float>(1.0 - lr * config_.weight_decay);
      split([&](int begin, int end) {
        for (const DecaySegment& segment : segments_) {
          const int from = std::max(begin, static_cast<int>(segment.begin));
          const int to = std::min(end, static_cast<int>(segment.end));
          if (from < to) {
            AdamwRange(params.data(), grads.data(), from, to, segment.decayed ? decay_factor : 1.0f, step, eps,
                       grad_scale);
          }
        }
      });
      break;
    }
    case OptimizerKind::kRmsprop: {
      float* s = state_.data();
      const float rho = static_cast<float>(config_.decay), eps = static_cast<float>(config_.eps);
      split([&](int begin, int end) {
        for (int k = begin; k < end; ++k) {
          const float g = grad_scale * grads[k] + wd * params[k];
          s[k] = rho * s[k] + (1 - rho) * g * g;
          params[k] -= rate * g / (std::sqrt(s[k]) + eps);
        }
      });
      break;
    }
  }
}

double GlobalNorm(std::span<const float> grads) {
  // Sixteen independent partial sums (one vector of doubles per pass) instead of one dependent chain: the chain
  // cost a floating-point add latency per parameter, and the partial sums vectorize.
  constexpr std::size_t kLanes = 16;
  double lane[kLanes] = {};
  const float* __restrict g = grads.data();
  const std::size_t n = grads.size(), full = n - n % kLanes;
  for (std::size_t k = 0; k < full; k += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) lane[j] += static_cast<double>(g[k + j]) * g[k + j];
  }
  double sum = 0;
  for (std::size_t k = full; k < n; ++k) sum += static_cast<double>(g[k]) * g[k];
  for (double s : lane) sum += s;
  return std::sqrt(sum);
}

float ClipScale(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / norm) : 1.0f;
}

double ClipGlobalNorm(std::span<float> grads, double max_norm) {
  const double norm = GlobalNorm(grads);
  const float scale = ClipScale(norm, max_norm);
  if (scale != 1.0f) {
    for (float& g : grads) g *= scale;
  }
  return norm;
}

double ScheduledLearningRate(const OptimizerConfig& optimizer, const LrScheduleConfig& schedule, int epoch) {
  switch (schedule.name) {
    case LrScheduleKind::kNone: return optimizer.lr;
    case LrScheduleKind::kStep: return optimizer.lr * std::pow(schedule.gamma, epoch / schedule.step_size);
    case LrScheduleKind::kExponential: return optimizer.lr * std::pow(schedule.gamma, epoch);
    case LrScheduleKind::kCosine: return optimizer.lr;
  }
  return optimizer.lr;
}

double CosineLearningRate(const OptimizerConfig& optimizer, const LrScheduleConfig& schedule, std::int64_t step,
                          double progress) {
  const double p = std::clamp(progress, 0.0, 1.0);
  const double cosine =
      schedule.min_lr + (optimizer.lr - schedule.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  if (step >= schedule.warmup_steps) return cosine;
  const double warmup = optimizer.lr * static_cast<double>(step + 1) / static_cast<double>(schedule.warmup_steps);
  return std::min(warmup, cosine);
}

double CosineProgressBySteps(std::int64_t step, std::int64_t warmup_steps, std::int64_t total_steps) {
  if (step <= warmup_steps) return 0.0;
  if (total_steps <= warmup_steps) return 1.0;
  return static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
}

}  // namespace charlm
