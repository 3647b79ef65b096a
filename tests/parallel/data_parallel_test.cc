// The one-process side of data parallelism: a worker's block of streams gets the dropout masks, the batch rows
// and the validation share the whole batch gives them, and the batch must divide among the workers.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "parallel/data_parallel.h"
#include "util/errors.h"
#include "eval/evaluate.h"
#include "model/model.h"
#include "util/rng.h"
#include "run/step.h"
#include "text/sampler.h"

namespace charlm {
namespace {

ModelSpec DropoutSpec(int embedding) {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 7;
  spec.embedding_size = embedding;
  spec.hidden_size = 5;
  spec.num_layers = 2;
  spec.dropout = 0.3;
  spec.recurrent_dropout = 0.2;
  return spec;
}

// Columns [first, first + count) of a (T*B, width) time-major buffer.
std::vector<float> Columns(const std::vector<float>& buffer, int steps, int batch, int width, int first, int count) {
  std::vector<float> out;
  for (int t = 0; t < steps; ++t) {
    const auto row = (static_cast<std::size_t>(t) * batch + first) * width;
    out.insert(out.end(), buffer.begin() + static_cast<std::ptrdiff_t>(row),
               buffer.begin() + static_cast<std::ptrdiff_t>(row + static_cast<std::size_t>(count) * width));
  }
  return out;
}

TEST_CASE("data parallel: streams 3 to 5 run alone draw the dropout masks and logits of those columns of the batch") {
  for (const int embedding : {0, 4}) {
    CAPTURE(embedding);
    CharModel<float> model(DropoutSpec(embedding));
    model.Initialize(InitScheme::kKeras, 3);
    const int T = 4, B = 6, half = 3, H = 5, V = 7;
    std::vector<int> x(static_cast<std::size_t>(T) * B), y(x.size());
    Rng rng(9);
    for (auto& id : x) id = static_cast<int>(rng.Below(V));
    for (auto& id : y) id = static_cast<int>(rng.Below(V));
    const ForwardMode whole_mode{true, 1234, 0};
    auto whole_ws = model.MakeWorkspace(T, B);
    auto whole_state = model.MakeState(B);
    model.Forward(*whole_ws, x.data(), y.data(), T, B, whole_state, whole_mode);

    for (const int first : {0, half}) {
      CAPTURE(first);
      std::vector<int> part_x, part_y;
      for (int t = 0; t < T; ++t) {
        for (int b = first; b < first + half; ++b) {
          part_x.push_back(x[static_cast<std::size_t>(t) * B + b]);
          part_y.push_back(y[static_cast<std::size_t>(t) * B + b]);
        }
      }
      auto ws = model.MakeWorkspace(T, half);
      auto state = model.MakeState(half);
      model.Forward(*ws, part_x.data(), part_y.data(), T, half, state, ForwardMode{true, 1234, first});
      for (int l = 0; l < 2; ++l) {
        CAPTURE(l);
        const int width = l > 0 ? H : embedding;
        if (width > 0) {
          CHECK(Columns(whole_ws->masks_l[l], T, B, width, first, half) ==
                Columns(ws->masks_l[l], T, half, width, 0, half));
        }
        CHECK(Columns(whole_ws->rec_masks[l], 1, B, H, first, half) == ws->rec_masks[l]);
      }
      if (embedding == 0) {
        CHECK(Columns(whole_ws->token_scale, T, B, 1, first, half) == ws->token_scale);
      }
      CHECK(Columns(whole_ws->output_mask, T, B, H, first, half) == ws->output_mask);
      const std::vector<float> whole_logits(WorkspaceLogits(*whole_ws), WorkspaceLogits(*whole_ws) + T * B * V);
      const std::vector<float> part_logits(WorkspaceLogits(*ws), WorkspaceLogits(*ws) + T * half * V);
      const std::vector<float> expected = Columns(whole_logits, T, B, V, first, half);
      for (std::size_t k = 0; k < expected.size(); ++k) CHECK(part_logits[k] == doctest::Approx(expected[k]).epsilon(1e-5));
    }
  }
}

TEST_CASE("data parallel: with every AWD-LSTM mask on, streams 3 to 5 alone draw the whole batch's masks and logits") {
  for (const int embedding : {0, 5}) {
    for (const CellKind cell : {CellKind::kGru, CellKind::kLstm}) {
      CAPTURE(embedding);
      CAPTURE(EnumName(cell));
      ModelSpec spec = DropoutSpec(embedding);
      spec.cell = cell;
      spec.locked_dropout = true;
      spec.weight_drop = 0.4;
      spec.embedding_dropout = 0.3;
      spec.tie_embeddings = embedding > 0;  // needs embedding_size == hidden_size
      CharModel<float> model(spec);
      model.Initialize(InitScheme::kKeras, 3);
      const int T = 4, B = 6, half = 3, H = 5, V = 7;
      std::vector<int> x(static_cast<std::size_t>(T) * B), y(x.size());
      Rng rng(9);
      for (auto& id : x) id = static_cast<int>(rng.Below(V));
      for (auto& id : y) id = static_cast<int>(rng.Below(V));
      auto whole_ws = model.MakeWorkspace(T, B);
      auto whole_state = model.MakeState(B);
      model.Forward(*whole_ws, x.data(), y.data(), T, B, whole_state, ForwardMode{true, 1234, 0});
      for (const int first : {0, half}) {
        CAPTURE(first);
        std::vector<int> part_x, part_y;
        for (int t = 0; t < T; ++t) {
          for (int b = first; b < first + half; ++b) {
            part_x.push_back(x[static_cast<std::size_t>(t) * B + b]);
            part_y.push_back(y[static_cast<std::size_t>(t) * B + b]);
          }
        }
        auto ws = model.MakeWorkspace(T, half);
        auto state = model.MakeState(half);
        model.Forward(*ws, part_x.data(), part_y.data(), T, half, state, ForwardMode{true, 1234, first});
        CHECK(ws->vocab_scale == whole_ws->vocab_scale);
        for (int l = 0; l < 2; ++l) {
          CAPTURE(l);
          CHECK(ws->w_h_masks[l] == whole_ws->w_h_masks[l]);
          const int width = l > 0 ? H : embedding;
          if (width > 0) {
            CHECK(Columns(whole_ws->masks_l[l], T, B, width, first, half) ==
                  Columns(ws->masks_l[l], T, half, width, 0, half));
          }
        }
        if (embedding == 0) CHECK(Columns(whole_ws->token_scale, T, B, 1, first, half) == ws->token_scale);
        CHECK(Columns(whole_ws->output_mask, T, B, H, first, half) == ws->output_mask);
        const std::vector<float> whole_logits(WorkspaceLogits(*whole_ws), WorkspaceLogits(*whole_ws) + T * B * V);
        const std::vector<float> part_logits(WorkspaceLogits(*ws), WorkspaceLogits(*ws) + T * half * V);
        const std::vector<float> expected = Columns(whole_logits, T, B, V, first, half);
        for (std::size_t k = 0; k < expected.size(); ++k) {
          CHECK(part_logits[k] == doctest::Approx(expected[k]).epsilon(1e-5));
        }
      }
    }
  }
}

TEST_CASE("data parallel: a block of streams from the sampler is those rows of the whole batch, for both samplers") {
  std::vector<int> data(500);
  for (std::size_t k = 0; k < data.size(); ++k) data[k] = static_cast<int>(k % 11);
  for (const SamplerKind kind : {SamplerKind::kConsecutive, SamplerKind::kRandom}) {
    Sampler sampler(data, kind, 6, 5, true, 42);
    sampler.BeginEpoch(3);
    std::vector<int> x(30), y(30), part_x(10), part_y(10);
    sampler.GetBatch(2, x.data(), y.data());
    sampler.GetStreams(2, 4, 2, part_x.data(), part_y.data());
    CHECK(std::vector<int>(x.begin() + 20, x.end()) == part_x);
    CHECK(std::vector<int>(y.begin() + 20, y.end()) == part_y);
    CHECK_THROWS_AS(sampler.GetStreams(2, 5, 2, part_x.data(), part_y.data()), std::out_of_range);
  }
}

// Every shard of `shards` evaluated in turn in this thread, their loss sums, tokens and re-runs added up.
EvalResult SumOfShards(const CharModel<float>& model, const std::vector<int>& ids, EvalOptions options, int shards) {
  EvalResult sum;
  for (int shard = 0; shard < shards; ++shard) {
    options.shard = shard;
    options.shards = shards;
    const EvalResult part = Evaluate(model, ids, options);
    sum.loss_sum += part.loss_sum;
    sum.tokens += part.tokens;
    sum.rerun_streams += part.rerun_streams;
  }
  return sum;
}

TEST_CASE("data parallel: the validation shards' sums add up to the whole evaluation") {
  ModelSpec spec = DropoutSpec(0);
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kKeras, 5);
  std::vector<int> ids(3000);
  Rng rng(2);
  for (auto& id : ids) id = static_cast<int>(rng.Below(7));
  EvalOptions options;
  options.streams = 5;  // five streams over three shards: 1, 2 and 2 of them, the tail on the last
  options.num_steps = 16;
  const EvalResult whole = Evaluate(model, ids, options);
  for (const int shards : {2, 3, 6}) {
    CAPTURE(shards);
    const EvalResult sum = SumOfShards(model, ids, options, shards);
    CHECK(sum.tokens == whole.tokens);
    CHECK(sum.loss_sum == doctest::Approx(whole.loss_sum).epsilon(1e-6));
  }
}

TEST_CASE("data parallel: with unsettled warm-ups, shards chained in order re-run their first streams as one process") {
  ModelSpec spec = DropoutSpec(0);
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kKeras, 5);
  for (float& p : model.params()) p *= 3;  // strong recurrent weights: the state carries far, so context matters
  std::vector<int> ids(3000);
  Rng rng(2);
  for (auto& id : ids) id = static_cast<int>(rng.Below(7));
  EvalOptions options;
  options.streams = 6;
  options.num_steps = 16;
  options.burn_in = 1;  // one character of warm-up: no stream's state settles, every one is re-run
  const EvalResult whole = Evaluate(model, ids, options);
  REQUIRE(whole.rerun_streams == 5);
  for (const int shards : {2, 3, 4}) {
    CAPTURE(shards);
    for (const bool chained : {true, false}) {
      CAPTURE(chained);
      // The shards one after another in this thread: each turn finds what the previous shard's left.
      std::vector<float> carried;
      options.in_shard_order = nullptr;
      if (chained) {
        options.in_shard_order = [&carried](std::size_t floats, const EvalOptions::ShardTurn& turn) {
          carried.resize(floats);
          turn(carried);
        };
      }
      const EvalResult sum = SumOfShards(model, ids, options, shards);
      CHECK(sum.tokens == whole.tokens);
      if (chained) {
        CHECK(sum.rerun_streams == whole.rerun_streams);
        CHECK(sum.loss_sum == doctest::Approx(whole.loss_sum).epsilon(1e-7));  // seen: 3e-10..3e-9
      } else {  // each shard's first stream keeps its one-character warm-up: the figure the chain corrects
        CHECK(sum.rerun_streams == whole.rerun_streams - (shards - 1));
        CHECK(std::abs(sum.loss_sum - whole.loss_sum) > 1e-5 * whole.loss_sum);  // seen: 1e-4..4e-2
      }
    }
  }
}

// A worker of a job of `size` that is never asked to communicate.
class FakeWorkers final : public Workers {
 public:
  FakeWorkers(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return size_; }
  void SumInPlace(std::span<float>) override {}
  void SumInPlace(std::span<double>) override {}
  void StartSum(std::span<float>) override {}
  void PollSums() override {}
  void FinishSums() override {}
  int Max(int value) override { return value; }
  void AllGather(std::span<const float>, std::span<float>) override {}
  void AllGather(std::span<const std::uint64_t>, std::span<std::uint64_t>) override {}
  [[noreturn]] void Abort(int) override { throw std::logic_error("abort"); }

 private:
  int rank_, size_;
};

TEST_CASE("data parallel: rank r trains the r-th block of B/N streams, and a batch that does not divide is refused") {
  CHECK(ShardOf(FakeWorkers(2, 3), 6, 8).first == 4);
  CHECK(ShardOf(FakeWorkers(2, 3), 6, 8).count == 2);
  CHECK(ShardOf(*SingleProcess(), 5, 8).count == 5);
  CHECK_THROWS_WITH_AS(ShardOf(FakeWorkers(0, 4), 6, 8),
                       doctest::Contains("train.batch_size 6 does not divide among the 4 processes"), UserError);
  // The reduce's float token count is exact to 2^24; one process has no reduce and no limit.
  CHECK_THROWS_WITH_AS(ShardOf(FakeWorkers(0, 3), 32, 8),
                       doctest::Contains("set train.batch_size to a multiple of 3, or run mpirun -np with a divisor "
                                         "of 32 (1, 2, 4, 8, 16, 32)"),
                       UserError);
  CHECK_THROWS_WITH_AS(ShardOf(FakeWorkers(0, 3), 32, 8, true),
                       doctest::Contains("streams): run mpirun -np with a divisor of 32 (1, 2, 4, 8, 16, 32); a resumed "
                                         "run keeps its checkpoint's batch size"),
                       UserError);
  CHECK(ShardOf(FakeWorkers(0, 2), 2048, 8192).count == 1024);
  CHECK_THROWS_WITH_AS(ShardOf(FakeWorkers(0, 2), 4096, 8192),
                       doctest::Contains("33554432 tokens per step is more than a job of several processes counts "
                                         "exactly (16777216)"),
                       UserError);
  CHECK(ShardOf(*SingleProcess(), 4096, 8192).count == 4096);
}

// A worker of a two-process job whose other worker adds `other` to every sum of doubles.
class PairedWorkers final : public Workers {
 public:
  PairedWorkers(int rank, double other) : rank_(rank), other_(other) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  int local_size() const override { return 2; }
  void SumInPlace(std::span<float>) override {}
  void SumInPlace(std::span<double> values) override {
    for (double& value : values) value += other_;
  }
  void StartSum(std::span<float>) override {}
  void PollSums() override {}
  void FinishSums() override {}
  int Max(int value) override { return value; }
  void AllGather(std::span<const float>, std::span<float>) override {}
  void AllGather(std::span<const std::uint64_t>, std::span<std::uint64_t>) override {}
  [[noreturn]] void Abort(int) override { throw std::logic_error("abort"); }

 private:
  int rank_;
  double other_;
};

TEST_CASE("data parallel: every worker anneals a time-based schedule by rank 0's seconds, exactly") {
  // Rank 0 has trained 12.345 s by its clock, rank 1 13.5 s by its own: both take 12.345, bit for bit.
  const double rank0_seconds = 12.345, rank1_seconds = 13.5;
  PairedWorkers rank0(0, /*rank 1 adds*/ 0.0), rank1(1, /*rank 0 adds*/ rank0_seconds);
  LoopOptions options0, options1;
  AddDataParallelOptions(rank0, options0);
  AddDataParallelOptions(rank1, options1);
  REQUIRE(options0.agree_schedule_seconds);
  CHECK(options0.agree_schedule_seconds(rank0_seconds) == rank0_seconds);
  CHECK(options1.agree_schedule_seconds(rank1_seconds) == rank0_seconds);
}

// A worker that records which parts of the buffer each sum covers, in call order, and when Backward's time steps
// came; its sums double everything, as a job of two identical workers would.
class RecordingWorkers final : public Workers {
 public:
  explicit RecordingWorkers(const float* buffer) : buffer_(buffer) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_size() const override { return 2; }
  void SumInPlace(std::span<float> values) override {
    events.push_back("sum " + Range(values));
    for (float& v : values) v *= 2;
  }
  void SumInPlace(std::span<double>) override {}
  void StartSum(std::span<float> values) override {
    events.push_back("start " + Range(values));
    for (float& v : values) v *= 2;
  }
  void PollSums() override {
    if (events.back() != "poll") events.push_back("poll");
  }
  void FinishSums() override { events.push_back("finish"); }
  int Max(int value) override { return value; }
  void AllGather(std::span<const float>, std::span<float>) override {}
  void AllGather(std::span<const std::uint64_t>, std::span<std::uint64_t>) override {}
  [[noreturn]] void Abort(int) override { throw std::logic_error("abort"); }
  std::vector<std::string> events;

 private:
  std::string Range(std::span<float> values) const {
    const auto first = values.data() - buffer_;
    return std::to_string(first) + ".." + std::to_string(first + static_cast<std::ptrdiff_t>(values.size()));
  }
  const float* buffer_;
};

TEST_CASE("data parallel: the reduce sums the output and top layers while lower layers run back, tail included") {
  ModelSpec spec = DropoutSpec(4);  // embedding (7, 4), layers 0 and 1, output
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kKeras, 3);
  const ParamLayout& layout = model.layout();
  const std::size_t total = layout.total(), end = total + CharModel<float>::kReduceTail;
  const std::string output = std::to_string(layout.Get("output.w").offset);
  const std::string layer1 = std::to_string(layout.Get("layer1.w_x").offset);
  const int T = 4, B = 3;
  std::vector<int> x(static_cast<std::size_t>(T) * B), y(x.size());
  for (std::size_t k = 0; k < x.size(); ++k) {
    x[k] = static_cast<int>(k % 7);
    y[k] = static_cast<int>((k * 3 + 1) % 7);
  }
  Optimizer optimizer(OptimizerConfig{}, model.params().size());
  auto run = [&](int overlap) {
    RecordingWorkers workers(model.reduce_buffer().data());
    WorkersReduce reduce(workers, overlap);
    TrainStep step(model, optimizer, B, T, 0.0, &reduce);
    auto state = model.MakeState(B);
    const StepResult result = step.RunOn(x.data(), y.data(), state, 5, 0.0);  // lr 0: the weights stay
    return std::make_pair(workers.events, result);
  };
  CharModel<float> alone_model(spec);
  alone_model.params() = model.params();
  Optimizer alone_optimizer(OptimizerConfig{}, model.params().size());
  TrainStep alone(alone_model, alone_optimizer, B, T, 0.0);
  auto alone_state = model.MakeState(B);
  const StepResult one = alone.RunOn(x.data(), y.data(), alone_state, 5, 0.0);

  const auto [blocking, blocking_result] = run(0);
  CHECK(blocking == std::vector<std::string>{"sum 0.." + std::to_string(end)});
  const auto [overlapped, overlapped_result] = run(WorkersReduce::kOverlapOutputAndTop);
  // Output layer and tail first, polled through layer 1's time steps; layer 1 next, polled through layer 0's;
  // then layer 0 and the embedding.
  CHECK(overlapped == std::vector<std::string>{"start " + output + ".." + std::to_string(end), "poll",
                                               "start " + layer1 + ".." + output, "poll", "start 0.." + layer1,
                                               "finish"});
  // Two identical workers' sums are one worker's mean again: the loss and the gradient norm of one process.
  for (const StepResult& r : {blocking_result, overlapped_result}) {
    CHECK(r.loss == doctest::Approx(one.loss).epsilon(1e-6));
    CHECK(r.grad_norm == doctest::Approx(one.grad_norm).epsilon(1e-6));
  }
}

}  // namespace
}  // namespace charlm
