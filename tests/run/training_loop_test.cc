// The training loop's order of events: checkpoints before the reports of an epoch, a failing report keeps the
// epoch, the step is the same with an identity reduce hook, and handlers see every point.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "format/checkpoint.h"
#include "config/config.h"
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
  c.data.corpus = (dir / "corpus.txt").string();
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

}  // namespace
}  // namespace charlm
