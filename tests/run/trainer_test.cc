// Trains tiny models end to end: falling perplexity, metrics and checkpoints, resume = uninterrupted (at an epoch
// boundary and mid-epoch), bit-identical reruns, and the errors a user can cause.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "text/dataset.h"
#include "model/ngram.h"
#include "config/config.h"
#include "util/errors.h"
#include "test_util.h"
#include "parallel/train_job.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

std::string SmallCorpus() {
  std::string text;
  const char* lines[] = {"the quick brown fox jumps over the lazy dog\n", "a stitch in time saves nine\n",
                         "all that glitters is not gold\n", "to be or not to be, that is the question\n"};
  for (int k = 0; k < 24; ++k) text += lines[k % 4];
  return text;  // about 3,400 characters
}

Config TinyConfig(const testing::TempDir& dir, const std::string& run) {
  testing::WriteFile(dir / "corpus.txt", SmallCorpus());
  Config c;
  c.data.corpus.paths = {(dir / "corpus.txt").string()};
  c.data.val_fraction = 0.1;
  c.model.cell = CellKind::kLstm;
  c.model.hidden_size = 16;
  c.model.embedding_size = 8;
  c.train.batch_size = 4;
  c.train.num_steps = 10;
  c.train.epochs = 3;
  c.train.optimizer.name = OptimizerKind::kAdam;
  c.train.optimizer.lr = 0.01;
  c.train.clip_norm = 1.0;
  c.train.threads = 1;
  c.train.out_dir = (dir / run).string();
  c.generate.every = 0;
  c.generate.prefixes = {"the"};
  return c;
}

std::vector<nlohmann::json> ReadMetrics(const fs::path& out_dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(out_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST_CASE("trainer: perplexity falls, metrics.jsonl has one line per epoch, last and best checkpoints are written") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 4;
  const TrainOutcome outcome = Train(c, "", {});
  CHECK(outcome.epochs_completed == 4);
  const auto metrics = ReadMetrics(c.train.out_dir);
  REQUIRE(metrics.size() == 4);
  for (int k = 0; k < 4; ++k) {
    CHECK(metrics[k]["epoch"] == k + 1);
    CHECK(metrics[k]["val_perplexity"].is_number());
    CHECK(metrics[k]["val_bpc"].get<double>() == doctest::Approx(std::log2(metrics[k]["val_perplexity"].get<double>())));
    CHECK(metrics[k]["train_bpc"].get<double>() ==
          doctest::Approx(std::log2(metrics[k]["train_perplexity"].get<double>())));
    CHECK(metrics[k]["tokens_per_s"].get<double>() > 0);
    CHECK(metrics[k].contains("elapsed_s"));
  }
  CHECK(metrics[3]["train_perplexity"].get<double>() < 0.7 * metrics[0]["train_perplexity"].get<double>());
  CHECK(metrics[0]["train_perplexity"].get<double>() < 40.0);  // below the ~30-character vocabulary's uniform guess
  CHECK(fs::exists(fs::path(c.train.out_dir) / "last.ckpt"));
  CHECK(fs::exists(fs::path(c.train.out_dir) / "best.ckpt"));
  CHECK(outcome.best_val_perplexity.has_value());
  // The baseline of the same validation split, as charlm baseline computes it.
  std::ifstream baseline_file(fs::path(c.train.out_dir) / "baseline.json");
  const nlohmann::json baseline = nlohmann::json::parse(baseline_file);
  CHECK(baseline["order"] == kDefaultNgramOrder);
  const Dataset data = LoadDataset(c.data);
  const Baseline expected = FitBaseline(data.Train(), data.Validation(), data.vocab.size(), kDefaultNgramOrder);
  CHECK(baseline["val_perplexity"].get<double>() == doctest::Approx(expected.validation.perplexity));
  CHECK(baseline["val_bpc"].get<double>() == doctest::Approx(expected.validation.bits_per_char));
}

TEST_CASE("trainer: without a validation split no baseline.json is written and val_bpc is null") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.data.val_fraction = 0;
  c.train.epochs = 1;
  Train(c, "", {});
  const auto metrics = ReadMetrics(c.train.out_dir);
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0]["val_bpc"].is_null());
  CHECK_FALSE(fs::exists(fs::path(c.train.out_dir) / "baseline.json"));
}

void CheckResumeEqualsUninterrupted(Config c, const testing::TempDir& dir) {
  c.train.epochs = 3;
  c.train.out_dir = (dir / "whole").string();
  Train(c, "", {});
  const CheckpointData whole = LoadCheckpoint((dir / "whole" / "last.ckpt").string());

  // Epoch boundary: stop after 1 epoch, resume to 3.
  Config first = c;
  first.train.epochs = 1;
  first.train.out_dir = (dir / "split").string();
  Train(first, "", {});
  Config rest = c;
  rest.train.out_dir = first.train.out_dir;
  Train(rest, (dir / "split" / "last.ckpt").string(), {});
  const CheckpointData resumed = LoadCheckpoint((dir / "split" / "last.ckpt").string());
  CHECK(resumed.params == whole.params);
  CHECK(resumed.optimizer_state == whole.optimizer_state);
  CHECK(ReadMetrics(dir / "split").size() == 3);

  // Mid-epoch: a stop request after 7 steps (inside epoch 2), then resume.
  Config mid = c;
  mid.train.out_dir = (dir / "mid").string();
  int steps = 0;
  TrainEnvironment hooks;
  hooks.stop_requested = [&] { return ++steps == 7; };
  const TrainOutcome stopped = Train(mid, "", hooks);
  CHECK(stopped.interrupted);
  Train(mid, (dir / "mid" / "last.ckpt").string(), {});
  const CheckpointData mid_resumed = LoadCheckpoint((dir / "mid" / "last.ckpt").string());
  CHECK(mid_resumed.params == whole.params);
  const auto whole_metrics = ReadMetrics(dir / "whole"), mid_metrics = ReadMetrics(dir / "mid");
  REQUIRE(mid_metrics.size() == 3);
  for (int k = 0; k < 3; ++k) CHECK(mid_metrics[k]["train_perplexity"] == whole_metrics[k]["train_perplexity"]);
}

TEST_CASE("trainer: resuming gives bit-identical weights to an uninterrupted run (consecutive sampler, dropout)") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "unused");
  c.train.sampler = SamplerKind::kConsecutive;
  c.model.dropout = 0.2;
  c.model.recurrent_dropout = 0.1;
  CheckResumeEqualsUninterrupted(c, dir);
}

TEST_CASE("trainer: resuming gives bit-identical weights to an uninterrupted run (random sampler with offsets, GRU)") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "unused");
  c.train.sampler = SamplerKind::kRandom;
  c.train.random_offset = true;
  c.model.cell = CellKind::kGru;
  c.train.optimizer.name = OptimizerKind::kSgd;
  c.train.optimizer.momentum = 0.9;
  c.train.optimizer.lr = 0.5;
  CheckResumeEqualsUninterrupted(c, dir);
}

// The cosine by steps anneals over train.epochs' steps, so the split is made by stop requests, not by a shorter
// first run (whose schedule would be another).
TEST_CASE("trainer: train.engine onednn lowers the loss and resumes to the uninterrupted run's bits (GRU, dropout)") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "unused");
  c.train.engine = Engine::kOnednn;
  c.model.cell = CellKind::kGru;
  c.model.dropout = 0.1;
  CheckResumeEqualsUninterrupted(c, dir);
  const auto metrics = ReadMetrics(dir / "whole");
  REQUIRE(metrics.size() == 3);
  CHECK(metrics[2]["train_perplexity"].get<double>() < 0.8 * metrics[0]["train_perplexity"].get<double>());
}

TEST_CASE("trainer: resuming a cosine schedule by steps with AdamW gives the uninterrupted run's bits") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "whole");
  c.train.optimizer.name = OptimizerKind::kAdamw;
  c.train.optimizer.weight_decay = 0.1;
  c.train.lr_schedule.name = LrScheduleKind::kCosine;
  c.train.lr_schedule.warmup_steps = 10;
  c.train.lr_schedule.min_lr = 0.001;
  Train(c, "", {});
  const CheckpointData whole = LoadCheckpoint((dir / "whole" / "last.ckpt").string());
  const auto whole_metrics = ReadMetrics(dir / "whole");
  REQUIRE(whole_metrics.size() == 3);
  for (const int stop_at : {7, 100}) {  // in the warm-up; in a later epoch
    CAPTURE(stop_at);
    Config part = c;
    part.train.out_dir = (dir / ("stopped" + std::to_string(stop_at))).string();
    int polls = 0;
    TrainEnvironment hooks;
    hooks.stop_requested = [&] { return ++polls == stop_at; };
    REQUIRE(Train(part, "", hooks).interrupted);
    const std::string last = (fs::path(part.train.out_dir) / "last.ckpt").string();
    Train(part, last, {});
    const CheckpointData resumed = LoadCheckpoint(last);
    CHECK(resumed.params == whole.params);
    CHECK(resumed.optimizer_state == whole.optimizer_state);
    const auto metrics = ReadMetrics(part.train.out_dir);
    REQUIRE(metrics.size() == 3);
    for (int k = 0; k < 3; ++k) CHECK(metrics[k]["train_perplexity"] == whole_metrics[k]["train_perplexity"]);
  }
  // The rate annealed: the last epoch's mean is far below the first's.
  CHECK(whole_metrics[2]["learning_rate"].get<double>() < 0.5 * whole_metrics[0]["learning_rate"].get<double>());
}

TEST_CASE("trainer: resuming gives bit-identical weights to an uninterrupted run (every AWD-LSTM regularizer on)") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "unused");
  c.train.sampler = SamplerKind::kConsecutive;
  c.model.embedding_size = c.model.hidden_size;
  c.model.dropout = 0.2;
  c.model.locked_dropout = true;
  c.model.weight_drop = 0.5;
  c.model.embedding_dropout = 0.2;
  c.model.tie_embeddings = true;
  CheckResumeEqualsUninterrupted(c, dir);
}

// Everything a checkpoint holds except the wall-clock time it records, which no two runs share.
void CheckSameCheckpoint(const fs::path& a_path, const fs::path& b_path) {
  CheckpointData a = LoadCheckpoint(a_path.string()), b = LoadCheckpoint(b_path.string());
  REQUIRE(a.trainer_state.contains("elapsed_seconds"));
  a.trainer_state.erase("elapsed_seconds");
  b.trainer_state.erase("elapsed_seconds");
  CHECK(a.config == b.config);
  CHECK(a.vocab == b.vocab);
  CHECK(a.trainer_state == b.trainer_state);
  CHECK(a.params == b.params);
  CHECK(a.optimizer_state == b.optimizer_state);
  CHECK(a.carried_state == b.carried_state);
}

TEST_CASE("trainer: elapsed_s is the run's total across resumes, kept in the checkpoint's trainer state") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  int steps = 0;
  TrainEnvironment hooks;
  hooks.stop_requested = [&] { return ++steps == 7; };
  REQUIRE(Train(c, "", hooks).interrupted);
  // Pretend the first part ran for 1000 s: the resumed run's times must start from there, not from zero.
  const std::string last = (fs::path(c.train.out_dir) / "last.ckpt").string();
  CheckpointData stopped = LoadCheckpoint(last);
  REQUIRE(stopped.trainer_state.at("elapsed_seconds").get<double>() > 0);
  const int stopped_epochs = stopped.trainer_state.at("epochs_completed").get<int>();
  stopped.trainer_state["elapsed_seconds"] = 1000.0;
  SaveCheckpoint(last, stopped);
  Train(c, last, {});
  const auto metrics = ReadMetrics(c.train.out_dir);
  REQUIRE(metrics.size() == 3);
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    if (k < stopped_epochs) {
      CHECK(metrics[k]["elapsed_s"].get<double>() < 1000);  // ended before the stop
    } else {
      CHECK(metrics[k]["elapsed_s"].get<double>() >= 1000);
    }
  }
  CHECK(LoadCheckpoint(last).trainer_state.at("elapsed_seconds").get<double>() >= 1000);
}

TEST_CASE("trainer: the same config, seed and threads give bit-identical checkpoints and perplexities") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 2;
  c.model.dropout = 0.1;
  Train(c, "", {});
  fs::copy(c.train.out_dir, dir / "first", fs::copy_options::recursive);
  const std::string first_last = testing::ReadFile(fs::path(c.train.out_dir) / "last.ckpt");
  const auto first_metrics = ReadMetrics(c.train.out_dir);
  Train(c, "", {});
  CheckSameCheckpoint(fs::path(c.train.out_dir) / "last.ckpt", dir / "first" / "last.ckpt");
  CheckSameCheckpoint(fs::path(c.train.out_dir) / "best.ckpt", dir / "first" / "best.ckpt");
  const auto second_metrics = ReadMetrics(c.train.out_dir);
  REQUIRE(second_metrics.size() == first_metrics.size());
  for (std::size_t k = 0; k < first_metrics.size(); ++k) {
    CHECK(second_metrics[k]["train_perplexity"] == first_metrics[k]["train_perplexity"]);
    CHECK(second_metrics[k]["val_perplexity"] == first_metrics[k]["val_perplexity"]);
  }
  Config other_seed = c;
  other_seed.train.seed = 43;
  other_seed.train.out_dir = (dir / "other").string();
  Train(other_seed, "", {});
  CHECK(testing::ReadFile(dir / "other" / "last.ckpt") != first_last);
}

TEST_CASE("trainer: errors a user can cause stop before training with a message naming the value and the fix") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");

  Config too_long = c;
  too_long.train.batch_size = 64;
  too_long.train.num_steps = 100;
  CHECK_THROWS_WITH_AS(Train(too_long, "", {}), doctest::Contains("needs at least"), UserError);

  Config unwritable = c;
  testing::WriteFile(dir / "a_file", "x");
  unwritable.train.out_dir = (dir / "a_file" / "out").string();
  CHECK_THROWS_WITH_AS(Train(unwritable, "", {}), doctest::Contains("train.out_dir"), UserError);

  Config bad_prefix = c;
  bad_prefix.generate.every = 1;
  bad_prefix.generate.prefixes = {"the 龙"};
  CHECK_THROWS_WITH_AS(Train(bad_prefix, "", {}), doctest::Contains("U+9F99"), UserError);
  CHECK_FALSE(fs::exists(fs::path(c.train.out_dir) / "last.ckpt"));
}

TEST_CASE("trainer: divergence stops with the epoch, batch and likely causes, and never writes a NaN checkpoint") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 1;
  Train(c, "", {});
  const std::string good = testing::ReadFile(fs::path(c.train.out_dir) / "last.ckpt");

  Config diverging = c;
  diverging.train.optimizer.name = OptimizerKind::kSgd;
  diverging.train.optimizer.lr = 1e30;
  diverging.train.clip_norm = 0;
  CHECK_THROWS_WITH_AS(Train(diverging, "", {}), doctest::Contains("diverged at epoch 1, batch"), UserError);
  CHECK(testing::ReadFile(fs::path(c.train.out_dir) / "previous" / "last.ckpt") == good);  // moved aside, kept
}

TEST_CASE("trainer: resuming with a changed model or a different corpus is an error naming the difference") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 1;
  Train(c, "", {});
  const std::string ckpt = (fs::path(c.train.out_dir) / "last.ckpt").string();

  Config changed = c;
  changed.model.hidden_size = 32;
  changed.train.epochs = 2;
  CHECK_THROWS_WITH_AS(Train(changed, ckpt, {}), doctest::Contains("model.hidden_size is 16 in the checkpoint but 32"),
                       UserError);

  testing::WriteFile(dir / "corpus.txt", SmallCorpus() + "zebra quiz\n");
  Config more = c;
  more.train.epochs = 2;
  CHECK_THROWS_WITH_AS(Train(more, ckpt, {}), doctest::Contains("vocabulary"), UserError);
}

TEST_CASE("trainer: a corpus the caller already read (train --minutes's plan) is taken, not read again") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 1;
  TrainEnvironment hooks;
  hooks.preloaded = std::make_shared<Dataset>(LoadDataset(c.data));
  hooks.preloaded_data = ConfigToJson(c)["data"];
  // The file is gone after the read: a run that read it again would fail.
  fs::remove(dir / "corpus.txt");
  CHECK(Train(c, "", hooks).epochs_completed == 1);
  // With another data section the preloaded text is not the run's, and the run reads its own (here: missing).
  Config other = TinyConfig(dir, "other");
  hooks.preloaded = std::make_shared<Dataset>(LoadDataset(c.data));
  fs::remove(dir / "corpus.txt");
  other.data.val_fraction = 0.2;
  CHECK_THROWS_AS(Train(other, "", hooks), UserError);
}

TEST_CASE("trainer: a resume on a text with the same characters but other counts says that the counts differ") {
  testing::TempDir dir;
  Config c = TinyConfig(dir, "run");
  c.train.epochs = 1;
  Train(c, "", {});
  // Two more spaces: the most frequent character stays the most frequent, so every id is the same.
  testing::WriteFile(dir / "corpus.txt", SmallCorpus() + "  ");
  Config more = c;
  more.train.epochs = 2;
  CHECK_THROWS_WITH_AS(Train(more, (dir / "run" / "last.ckpt").string(), {}),
                       doctest::Contains("the same characters, but their counts differ: ' ' occurs"), UserError);
}

}  // namespace
}  // namespace charlm
