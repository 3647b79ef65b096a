// Checks each optimizer's update against values worked out by hand, clipping, and the LR schedules.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "model/optimizer.h"

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

}  // namespace
}  // namespace charlm
