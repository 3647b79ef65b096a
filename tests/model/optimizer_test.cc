// Checks each optimizer's update against values worked out by hand or by formula, clipping, and the LR schedules.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "model/optimizer.h"
#include "ops/column_threads.h"

namespace charlm {
namespace {

TEST_CASE("optimizer: plain SGD and SGD with momentum and weight decay") {
  OptimizerConfig config;
  config.name = OptimizerKind::kSgd;
  Optimizer sgd(config, 2);
  std::vector<float> p{1.0f, -2.0f}, g{0.5f, 0.25f};
  sgd.Step(p, g, 0.1);
  CHECK(p[0] == doctest::Approx(0.95));
  CHECK(p[1] == doctest::Approx(-2.025));
  CHECK(sgd.state().empty());

  config.momentum = 0.9;
  config.weight_decay = 0.1;
  Optimizer momentum(config, 1);
  std::vector<float> q{1.0f}, h{1.0f};
  momentum.Step(q, h, 0.1);  // v = 1 + 0.1*1 = 1.1; q = 1 - 0.11
  CHECK(q[0] == doctest::Approx(0.89));
  momentum.Step(q, h, 0.1);  // v = 0.9*1.1 + 1 + 0.089 = 2.079; q = 0.89 - 0.2079
  CHECK(q[0] == doctest::Approx(0.6821));
  CHECK(momentum.state().size() == 1);
}

TEST_CASE("optimizer: Adam's first steps move each weight by about lr against its gradient's sign") {
  OptimizerConfig config;
  config.name = OptimizerKind::kAdam;
  config.lr = 0.01;
  Optimizer adam(config, 3);
  std::vector<float> p{0.0f, 0.0f, 0.0f}, g{3.0f, -0.001f, 0.0f};
  adam.Step(p, g, config.lr);
  CHECK(p[0] == doctest::Approx(-0.01).epsilon(1e-4));
  CHECK(p[1] == doctest::Approx(0.01).epsilon(1e-3));
  CHECK(p[2] == 0.0f);
  CHECK(adam.state().size() == 6);
  CHECK(adam.steps_taken() == 1);
  // Second step with the same gradient: m_hat = g, v_hat = g^2, so again lr per step.
  adam.Step(p, g, config.lr);
  CHECK(p[0] == doctest::Approx(-0.02).epsilon(1e-4));
}

TEST_CASE("optimizer: RMSprop divides by the running root mean square") {
  OptimizerConfig config;
  config.name = OptimizerKind::kRmsprop;
  config.decay = 0.9;
  config.eps = 0.0;
  Optimizer rms(config, 1);
  std::vector<float> p{1.0f}, g{2.0f};
  rms.Step(p, g, 0.1);  // s = 0.1*4 = 0.4; p = 1 - 0.1*2/sqrt(0.4)
  CHECK(p[0] == doctest::Approx(1.0 - 0.2 / std::sqrt(0.4)));
}

TEST_CASE("optimizer: global-norm clipping scales only when the norm exceeds the limit") {
  std::vector<float> g{3.0f, 4.0f};
  CHECK(ClipGlobalNorm(g, 10.0) == doctest::Approx(5.0));
  CHECK(g[0] == 3.0f);
  CHECK(ClipGlobalNorm(g, 1.0) == doctest::Approx(5.0));
  CHECK(g[0] == doctest::Approx(0.6));
  CHECK(g[1] == doctest::Approx(0.8));
  std::vector<float> h{3.0f, 4.0f};
  ClipGlobalNorm(h, 0.0);
  CHECK(h[1] == 4.0f);
}

// Without weight decay the bits are those of clipping first; with it, GCC may fuse the scaled gradient into the
// decay term (one rounding fewer), so there the two agree to float precision.
TEST_CASE("optimizer: clipping inside the step gives the bits of clipping the gradients first") {
  for (const double weight_decay : {0.0, 0.01})
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kRmsprop}) {
    CAPTURE(weight_decay);
    OptimizerConfig config;
    config.name = kind;
    config.momentum = 0.9;
    config.weight_decay = weight_decay;
    const std::size_t n = 1000;  // not a multiple of GlobalNorm's 16 lanes
    std::vector<float> p(n), g(n);
    for (std::size_t k = 0; k < n; ++k) {
      p[k] = std::sin(0.37f * static_cast<float>(k));
      g[k] = std::cos(1.3f * static_cast<float>(k)) * (1.0f + static_cast<float>(k % 7));
    }
    double naive = 0;
    for (float x : g) naive += static_cast<double>(x) * x;
    CHECK(GlobalNorm(g) == doctest::Approx(std::sqrt(naive)).epsilon(1e-14));

    Optimizer fused(config, n), reference(config, n);
    std::vector<float> p_fused = p, p_reference = p;
    for (int step = 0; step < 3; ++step) {
      const float scale = ClipScale(GlobalNorm(g), 1.0);
      REQUIRE(scale < 1.0f);
      fused.Step(p_fused, g, 0.01, scale);
      std::vector<float> clipped = g;
      ClipGlobalNorm(clipped, 1.0);
      reference.Step(p_reference, clipped, 0.01);
    }
    if (weight_decay == 0.0) {
      CHECK(p_fused == p_reference);
      CHECK(fused.state() == reference.state());
    } else {
      for (std::size_t k = 0; k < n; ++k) CHECK(p_fused[k] == doctest::Approx(p_reference[k]).epsilon(1e-5));
    }
  }
  CHECK(ClipScale(5.0, 10.0) == 1.0f);
  CHECK(ClipScale(5.0, 0.0) == 1.0f);
  CHECK(ClipScale(5.0, 1.0) == 0.2f);
}

TEST_CASE("optimizer: learning-rate schedules") {
  OptimizerConfig opt;
  opt.lr = 1.0;
  LrScheduleConfig schedule;
  CHECK(ScheduledLearningRate(opt, schedule, 7) == 1.0);
  schedule.name = LrScheduleKind::kStep;
  schedule.step_size = 3;
  schedule.gamma = 0.5;
  CHECK(ScheduledLearningRate(opt, schedule, 2) == 1.0);
  CHECK(ScheduledLearningRate(opt, schedule, 3) == 0.5);
  CHECK(ScheduledLearningRate(opt, schedule, 7) == 0.25);
  schedule.name = LrScheduleKind::kExponential;
  CHECK(ScheduledLearningRate(opt, schedule, 2) == doctest::Approx(0.25));
}

// A 2-layer GRU with an embedding and reset_after: every tensor kind, biases (b, b_h, output.b) between kernels.
ModelSpec EveryKindSpec() {
  ModelSpec spec;
  spec.cell = CellKind::kGru;
  spec.vocab_size = 7;
  spec.embedding_size = 3;
  spec.hidden_size = 5;
  spec.num_layers = 2;
  spec.reset_after = true;
  return spec;
}

bool IsBias(TensorKind kind) {
  return kind == TensorKind::kBias || kind == TensorKind::kRecurrentBias || kind == TensorKind::kOutputBias;
}

TEST_CASE("optimizer: the decay segments mark the embedding and kernels, not the biases, and cover the buffer") {
  const ParamLayout layout(EveryKindSpec());
  const std::vector<DecaySegment> segments = DecaySegments(layout);
  REQUIRE(!segments.empty());
  CHECK(segments.front().begin == 0);
  CHECK(segments.back().end == layout.total());
  for (std::size_t k = 1; k < segments.size(); ++k) {
    CHECK(segments[k].begin == segments[k - 1].end);
    CHECK(segments[k].decayed != segments[k - 1].decayed);  // merged when alike
  }
  for (const ParamTensor& tensor : layout.tensors()) {
    CAPTURE(tensor.name);
    for (const DecaySegment& segment : segments) {
      if (tensor.offset >= segment.begin && tensor.offset < segment.end) {
        CHECK(tensor.offset + tensor.size() <= segment.end);
        CHECK(segment.decayed == !IsBias(tensor.kind));
      }
    }
  }
}

// torch.optim.AdamW's update, in double: the decay first, then Adam with bias correction.
struct AdamwReference {
  std::vector<double> p, m, v;
  void Step(const std::vector<float>& grads, const std::vector<bool>& decayed, const OptimizerConfig& c, double lr,
            double grad_scale, int t) {
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (decayed[k]) p[k] *= 1 - lr * c.weight_decay;
      const double g = grad_scale * grads[k];
      m[k] = c.beta1 * m[k] + (1 - c.beta1) * g;
      v[k] = c.beta2 * v[k] + (1 - c.beta2) * g * g;
      const double m_hat = m[k] / (1 - std::pow(c.beta1, t)), v_hat = v[k] / (1 - std::pow(c.beta2, t));
      p[k] -= lr * m_hat / (std::sqrt(v_hat) + c.eps);
    }
  }
};

TEST_CASE("optimizer: AdamW is torch's decoupled decay then Adam, computed in double, and leaves biases undecayed") {
  const ParamLayout layout(EveryKindSpec());
  const std::size_t n = layout.total();
  std::vector<bool> decayed(n);
  for (const ParamTensor& tensor : layout.tensors()) {
    for (std::size_t k = tensor.offset; k < tensor.offset + tensor.size(); ++k) decayed[k] = !IsBias(tensor.kind);
  }
  OptimizerConfig config;
  config.name = OptimizerKind::kAdamw;
  config.weight_decay = 0.5;  // large, so that a decayed bias or an undecayed weight stands out
  config.beta1 = 0.8;
  config.beta2 = 0.95;
  config.eps = 1e-6;
  std::vector<float> params(n), grads(n);
  for (std::size_t k = 0; k < n; ++k) params[k] = 0.5f + 0.25f * std::sin(0.7f * static_cast<float>(k));
  AdamwReference reference{std::vector<double>(params.begin(), params.end()), std::vector<double>(n),
                           std::vector<double>(n)};
  Optimizer adamw(config, layout);
  CHECK(adamw.state().size() == 2 * n);  // m and v in the one flat buffer, as Adam's
  const double lrs[] = {0.1, 0.05, 0.02, 0.01};
  const float scales[] = {1.0f, 0.5f, 1.0f, 0.25f};
  for (int t = 1; t <= 4; ++t) {
    for (std::size_t k = 0; k < n; ++k) grads[k] = std::cos(1.3f * static_cast<float>(k + t)) * 0.1f;
    adamw.Step(params, grads, lrs[t - 1], scales[t - 1]);
    reference.Step(grads, decayed, config, lrs[t - 1], scales[t - 1], t);
    for (std::size_t k = 0; k < n; ++k) {
      CAPTURE(k);
      CHECK(params[k] == doctest::Approx(reference.p[k]).epsilon(2e-6));
    }
  }

  // A fresh optimizer and zero gradients: Adam's part is zero, so the weights shrink by exactly the decay and the
  // biases stay put.
  Optimizer fresh(config, layout);
  std::vector<float> before = params;
  fresh.Step(params, std::vector<float>(n, 0.0f), 0.1);
  for (std::size_t k = 0; k < n; ++k) {
    CAPTURE(k);
    CHECK(params[k] == (decayed[k] ? static_cast<float>(1 - 0.1 * 0.5) * before[k] : before[k]));
  }

  // Split over threads, the segments cut across the ranges: the same bits as one thread.
  ColumnThreads threads(3);
  threads.set_min_range_work(0);
  Optimizer one(config, layout), split(config, layout);
  std::vector<float> p_one = before, p_split = before;
  for (int t = 0; t < 3; ++t) {
    for (std::size_t k = 0; k < n; ++k) grads[k] = std::sin(0.9f * static_cast<float>(k * (t + 1)));
    one.Step(p_one, grads, 0.05);
    split.Step(p_split, grads, 0.05, 1.0f, &threads);
  }
  CHECK(p_one == p_split);
  CHECK(one.state() == split.state());
}

TEST_CASE("optimizer: adam still adds L2 to every gradient, biases included, where adamw decays the weights only") {
  const ParamLayout layout(EveryKindSpec());
  const std::size_t n = layout.total();
  std::vector<float> start(n, 1.0f);
  const std::vector<float> zero(n, 0.0f);
  OptimizerConfig config;
  config.weight_decay = 0.1;
  config.name = OptimizerKind::kAdam;
  Optimizer adam(config, layout);
  std::vector<float> p_adam = start;
  adam.Step(p_adam, zero, 0.01);
  // L2 in the gradient: g = 0.1 for every parameter, and Adam's first step moves each by lr against its sign.
  for (std::size_t k = 0; k < n; ++k) CHECK(p_adam[k] == doctest::Approx(0.99).epsilon(1e-5));
  // The layout does not change Adam: the same bits as the plain constructor's (every parameter alike).
  Optimizer plain(config, n);
  std::vector<float> p_plain = start;
  plain.Step(p_plain, zero, 0.01);
  CHECK(p_plain == p_adam);

  config.name = OptimizerKind::kAdamw;
  Optimizer adamw(config, layout);
  std::vector<float> p_adamw = start;
  adamw.Step(p_adamw, zero, 0.01);
  const ParamTensor& bias = layout.Get("output.b");
  const ParamTensor& kernel = layout.Get("output.w");
  CHECK(p_adamw[bias.offset] == 1.0f);
  CHECK(p_adamw[kernel.offset] == static_cast<float>(1 - 0.01 * 0.1));
}

TEST_CASE("optimizer: cosine schedule by steps: the warm-up, the midpoint, the end and the floor") {
  OptimizerConfig opt;
  opt.lr = 1.0;
  LrScheduleConfig schedule;
  schedule.name = LrScheduleKind::kCosine;
  schedule.warmup_steps = 10;
  schedule.min_lr = 0.1;
  const std::int64_t total = 110;
  auto at = [&](std::int64_t step) {
    return CosineLearningRate(opt, schedule, step, CosineProgressBySteps(step, schedule.warmup_steps, total));
  };
  // Warm-up: lr / W at the first step, lr at the W-th, and the cosine starts from lr.
  CHECK(at(0) == doctest::Approx(0.1));
  CHECK(at(4) == doctest::Approx(0.5));
  CHECK(at(9) == doctest::Approx(1.0));
  CHECK(at(10) == doctest::Approx(1.0));
  // Midpoint of the cosine (50 of its 100 steps): halfway between lr and min_lr.
  CHECK(at(60) == doctest::Approx(0.55));
  CHECK(at(35) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25))));
  // The last step of the run is just above min_lr; the end reaches it and past it the floor holds.
  CHECK(at(109) > 0.1);
  CHECK(at(109) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.99))));
  CHECK(at(110) == doctest::Approx(0.1));
  CHECK(at(500) == doctest::Approx(0.1));
  for (std::int64_t step = 11; step < 110; ++step) CHECK(at(step) < at(step - 1));
  // Without warm-up the first step takes lr; a run all warm-up never starts the cosine.
  schedule.warmup_steps = 0;
  CHECK(CosineLearningRate(opt, schedule, 0, CosineProgressBySteps(0, 0, total)) == 1.0);
  CHECK(CosineProgressBySteps(3, 5, 5) == 0.0);
  CHECK(CosineProgressBySteps(7, 5, 5) == 1.0);
  // The per-epoch function gives the base rate for cosine (the loop sets it per step).
  schedule.name = LrScheduleKind::kCosine;
  CHECK(ScheduledLearningRate(opt, schedule, 3) == 1.0);
}

TEST_CASE("optimizer: cosine schedule by time: progress is the budget's share, the warm-up stays in steps") {
  OptimizerConfig opt;
  opt.lr = 2.0;
  LrScheduleConfig schedule;
  schedule.name = LrScheduleKind::kCosine;
  schedule.min_lr = 0.0;
  CHECK(CosineLearningRate(opt, schedule, 1000, 0.0) == 2.0);
  CHECK(CosineLearningRate(opt, schedule, 1000, 0.5) == doctest::Approx(1.0));
  CHECK(CosineLearningRate(opt, schedule, 1000, 1.0) == doctest::Approx(0.0));
  CHECK(CosineLearningRate(opt, schedule, 1000, 1.7) == CosineLearningRate(opt, schedule, 1000, 1.0));
  // Warm-up of 4 steps while the clock has already run a quarter: the line until it meets the cosine.
  schedule.warmup_steps = 4;
  const double cosine_at_quarter = 1.0 * (1 + std::cos(std::numbers::pi * 0.25));  // ~1.707
  CHECK(CosineLearningRate(opt, schedule, 0, 0.25) == doctest::Approx(0.5));
  CHECK(CosineLearningRate(opt, schedule, 2, 0.25) == doctest::Approx(1.5));
  CHECK(CosineLearningRate(opt, schedule, 3, 0.25) == doctest::Approx(cosine_at_quarter));  // 2.0 capped
  CHECK(CosineLearningRate(opt, schedule, 4, 0.25) == doctest::Approx(cosine_at_quarter));
}

}  // namespace
}  // namespace charlm
