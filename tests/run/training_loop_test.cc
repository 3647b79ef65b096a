// The training loop's order of events: checkpoints before the reports of an epoch, a failing report keeps the
// epoch, the step is the same with an identity reduce hook, handlers see every point, and the per-step schedule's
// rate (by steps, by an injected clock, agreed, resumed) reaches each step.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "config/config.h"
#include "model/optimizer.h"
#include "run/budget.h"
#include "run/checkpointer.h"
#include "run/metrics_writer.h"
#include "run/step.h"
#include "run/loop.h"
#include "run/run_state.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

Config LoopConfig(const testing::TempDir& dir) {
  std::string text;
  for (int k = 0; k < 60; ++k) text += k % 2 ? "the cat sat on the mat\n" : "a dog ran far away\n";
  testing::WriteFile(dir / "corpus.txt", text);
  Config c;
  c.data.corpus.paths = {(dir / "corpus.txt").string()};
  c.model.cell = CellKind::kGru;
  c.model.hidden_size = 8;
  c.train.batch_size = 4;
  c.train.num_steps = 8;
  c.train.epochs = 3;
  c.train.threads = 1;
  c.train.out_dir = (dir / "run").string();
  c.generate.every = 0;
  return c;
}

std::size_t MetricsRows(const fs::path& out_dir) {
  std::ifstream in(out_dir / "metrics.jsonl");
  std::size_t rows = 0;
  for (std::string line; std::getline(in, line);) ++rows;
  return rows;
}

// Records what is on disk when an epoch is reported, and fails the report of epoch `fail_at`.
class ReportSpy : public TrainHandler {
 public:
  explicit ReportSpy(int fail_at) : fail_at_(fail_at) {}
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override {
    const CheckpointData last = LoadCheckpoint(run.last_checkpoint_path());
    CHECK(last.trainer_state.at("epochs_completed").get<int>() == summary.epoch);
    // Only this spy's row position matters: it runs before MetricsWriter, so the row is not written yet.
    CHECK(MetricsRows(run.config().train.out_dir) == static_cast<std::size_t>(summary.epoch - 1));
    ++reported;
    if (summary.epoch == fail_at_) throw std::runtime_error("report failed");
  }
  int reported = 0;

 private:
  int fail_at_;
};

TEST_CASE("training loop: an epoch's checkpoint is saved before it is reported, and a failing report keeps it") {
  testing::TempDir dir;
  const Config c = LoopConfig(dir);
  TrainingRun run(c, "");
  TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm);
  HandlerList handlers;
  handlers.push_back(std::make_unique<Checkpointer>());
  auto spy = std::make_unique<ReportSpy>(2);
  ReportSpy* spy_view = spy.get();
  handlers.push_back(std::move(spy));
  handlers.push_back(std::make_unique<MetricsWriter>());
  CHECK_THROWS_WITH(RunTrainingLoop(run, step, handlers, LoopOptions{}), "report failed");
  CHECK(spy_view->reported == 2);
  // Epoch 2 is not lost: last.ckpt holds it, and resuming goes on with epoch 3.
  const CheckpointData last = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(last.trainer_state.at("epochs_completed").get<int>() == 2);
}

// A reduce over one worker that counts its calls, and scales the gradients (as a sum over `workers` copies of
// this one would multiply them) and, when `tokens_too`, the loss sum and the token count alike.
class CopiesReduce final : public GradientReduce {
 public:
  CopiesReduce(float workers, bool tokens_too) : workers_(workers), tokens_too_(tokens_too) {}
  void Begin(std::span<float> buffer) override {
    buffer_ = buffer;
    ++begins;
  }
  void GradientsFinalFrom(std::size_t) override { ++finals; }
  void Progress() override {}
  void Finish() override {
    const std::size_t scaled = tokens_too_ ? buffer_.size() : buffer_.size() - CharModel<float>::kReduceTail;
    for (std::size_t k = 0; k < scaled; ++k) buffer_[k] *= workers_;
  }
  int begins = 0, finals = 0;

 private:
  float workers_;
  bool tokens_too_;
  std::span<float> buffer_;
};

TEST_CASE("training loop: a reduce over copies of one worker gives its weights, the token count in the mean") {
  testing::TempDir dir;
  Config c = LoopConfig(dir);
  c.train.epochs = 1;
  auto train = [&](GradientReduce* reduce) {
    TrainingRun run(c, "");
    TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm, reduce);
    HandlerList none;
    RunTrainingLoop(run, step, none, LoopOptions{});
    return run.model().params();
  };
  const auto plain = train(nullptr);
  CopiesReduce identity(1, true);
  CHECK(plain == train(&identity));
  CHECK(identity.begins > 0);
  CHECK(identity.finals >= identity.begins);  // Backward tells it of each layer
  // Two copies' sums, gradients and tokens alike, are one copy's mean again (2 is a power of two: exactly).
  CopiesReduce two(2, true);
  CHECK(plain == train(&two));
  // And the reduce is really in the path: gradients doubled but not the token count change the result.
  CopiesReduce doubled(2, false);
  CHECK(train(&doubled) != plain);
}

// Records each step's reported learning rate and the rate the update really used: plain SGD without clipping or
// decay steps p -= lr * g, so (p_before - p_after) / g at the largest gradient is that rate. Each step also moves
// the fake clock `seconds` (when given) on by one second.
class LearningRateSpy : public TrainHandler {
 public:
  explicit LearningRateSpy(double* seconds = nullptr) : seconds_(seconds) {}
  void OnTrainBegin(TrainingRun& run) override { before_ = run.model().params(); }
  void OnStep(TrainingRun& run, const StepEvent& step) override {
    const std::vector<float>& after = run.model().params();
    const std::span<const float> grads = run.model().grads();
    std::size_t largest = 0;
    for (std::size_t k = 1; k < grads.size(); ++k) {
      if (std::abs(grads[k]) > std::abs(grads[largest])) largest = k;
    }
    reported.push_back(step.learning_rate);
    used.push_back((static_cast<double>(before_[largest]) - after[largest]) / grads[largest]);
    before_ = after;
    if (seconds_ != nullptr) *seconds_ += 1;
  }
  void OnEpochEnd(TrainingRun&, const EpochSummary& summary) override { epoch_rates.push_back(summary.learning_rate); }
  std::vector<double> reported, used, epoch_rates;

 private:
  double* seconds_;
  std::vector<float> before_;
};

Config CosineConfig(const testing::TempDir& dir) {
  Config c = LoopConfig(dir);
  c.train.optimizer.name = OptimizerKind::kSgd;
  c.train.optimizer.lr = 0.5;
  c.train.clip_norm = 0;
  c.train.lr_schedule.name = LrScheduleKind::kCosine;
  c.train.lr_schedule.warmup_steps = 5;
  c.train.lr_schedule.min_lr = 0.05;
  return c;
}

TEST_CASE("training loop: cosine by steps sets every step's rate, the update uses it, the epoch reports the mean") {
  testing::TempDir dir;
  Config c = CosineConfig(dir);
  for (const std::int64_t max_steps : {std::int64_t{0}, std::int64_t{20}}) {
    CAPTURE(max_steps);
    c.train.max_steps = max_steps;
    TrainingRun run(c, "");
    TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm);
    const std::int64_t per_epoch = run.sampler().num_batches();
    // The run's length: train.max_steps when it comes before the epochs' end.
    const std::int64_t total = max_steps > 0 ? max_steps : c.train.epochs * per_epoch;
    if (max_steps > 0) REQUIRE(max_steps < c.train.epochs * per_epoch);
    HandlerList handlers;
    handlers.push_back(std::make_unique<Budget>());
    auto spy = std::make_unique<LearningRateSpy>();
    LearningRateSpy& rates = *spy;
    handlers.push_back(std::move(spy));
    RunTrainingLoop(run, step, handlers, LoopOptions{});
    REQUIRE(rates.reported.size() == static_cast<std::size_t>(total));
    for (std::int64_t s = 0; s < total; ++s) {
      CAPTURE(s);
      const std::size_t k = static_cast<std::size_t>(s);
      CHECK(rates.reported[k] == CosineLearningRate(c.train.optimizer, c.train.lr_schedule, s,
                                                    CosineProgressBySteps(s, 5, total)));
      CHECK(rates.used[k] == doctest::Approx(rates.reported[k]).epsilon(1e-3));
    }
    CHECK(rates.reported[0] == doctest::Approx(0.1));  // lr / warmup_steps
    CHECK(rates.reported[4] == doctest::Approx(0.5));
    CHECK(rates.reported.back() < 0.06);  // the last step is near min_lr
    if (max_steps == 0) {
      REQUIRE(rates.epoch_rates.size() == 3);
      for (std::size_t e = 0; e < 3; ++e) {
        const auto first = rates.reported.begin() + static_cast<std::ptrdiff_t>(e) * per_epoch;
        const double mean = std::accumulate(first, first + per_epoch, 0.0) / static_cast<double>(per_epoch);
        CHECK(rates.epoch_rates[e] == doctest::Approx(mean));
      }
    }
  }
}

TEST_CASE("training loop: cosine by time follows the injected clock, the agreed seconds and a resumed run's time") {
  testing::TempDir dir;
  Config c = CosineConfig(dir);
  c.train.max_minutes = 1;  // 60 s of the fake clock; no Budget, so the real clock stops nothing
  const OptimizerConfig& opt = c.train.optimizer;
  const LrScheduleConfig& schedule = c.train.lr_schedule;

  SUBCASE("this process's clock, and the seconds every process agreed on") {
    for (const double agreed_factor : {0.0, 2.0}) {
      CAPTURE(agreed_factor);
      TrainingRun run(c, "");
      TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm);
      double seconds = 1000;  // any origin: the schedule counts from the loop's start
      HandlerList handlers;
      auto spy = std::make_unique<LearningRateSpy>(&seconds);
      LearningRateSpy& rates = *spy;
      handlers.push_back(std::move(spy));
      LoopOptions options;
      options.schedule_clock = [&] { return seconds; };
      // Rank 0's seconds, say twice this process's: the rate follows them, not its own clock.
      if (agreed_factor > 0) options.agree_schedule_seconds = [&](double mine) { return agreed_factor * mine; };
      RunTrainingLoop(run, step, handlers, options);
      const double factor = agreed_factor > 0 ? agreed_factor : 1.0;
      REQUIRE(rates.reported.size() > 60);  // past the end of the budget's minute
      for (std::size_t s = 0; s < rates.reported.size(); ++s) {
        CAPTURE(s);
        const double expected =
            CosineLearningRate(opt, schedule, static_cast<std::int64_t>(s), factor * static_cast<double>(s) / 60);
        CHECK(rates.reported[s] == expected);
        CHECK(rates.used[s] == doctest::Approx(expected).epsilon(1e-3));
      }
      CHECK(rates.reported.back() == doctest::Approx(schedule.min_lr));
    }
  }

  SUBCASE("a resumed run goes on from the time its checkpoint holds") {
    std::size_t steps_taken = 0;
    {
      TrainingRun run(c, "");
      TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm);
      double seconds = 0;
      HandlerList handlers;
      handlers.push_back(std::make_unique<Checkpointer>());
      auto spy = std::make_unique<LearningRateSpy>(&seconds);
      LearningRateSpy& rates = *spy;
      handlers.push_back(std::move(spy));
      LoopOptions options;
      options.schedule_clock = [&] { return seconds; };
      options.stop_requested = [&] { return rates.reported.size() == 7; };
      REQUIRE(RunTrainingLoop(run, step, handlers, options).interrupted);
      steps_taken = rates.reported.size();
    }
    // Say the first part trained for 30 s: the resumed run starts halfway through the cosine.
    const std::string last = (dir / "run" / "last.ckpt").string();
    CheckpointData saved = LoadCheckpoint(last);
    saved.trainer_state["elapsed_seconds"] = 30.0;
    SaveCheckpoint(last, saved);
    TrainingRun run(c, last);
    TrainStep step(run.model(), run.optimizer(), c.train.batch_size, c.train.num_steps, c.train.clip_norm);
    double seconds = 0;
    HandlerList handlers;
    auto spy = std::make_unique<LearningRateSpy>(&seconds);
    LearningRateSpy& rates = *spy;
    handlers.push_back(std::move(spy));
    LoopOptions options;
    options.schedule_clock = [&] { return seconds; };
    RunTrainingLoop(run, step, handlers, options);
    REQUIRE(rates.reported.size() > 30);
    for (std::size_t k = 0; k < rates.reported.size(); ++k) {
      CAPTURE(k);
      const std::int64_t s = static_cast<std::int64_t>(steps_taken + k);
      CHECK(rates.reported[k] == CosineLearningRate(opt, schedule, s, (30.0 + static_cast<double>(k)) / 60));
    }
    CHECK(rates.reported[0] == doctest::Approx(0.05 + 0.45 * 0.5 * (1 + std::cos(std::numbers::pi * 0.5))));
  }
}

}  // namespace
}  // namespace charlm
