// Checks that splitting the training step's elementwise work over threads (cell kernels and the softmax by rows,
// the optimizer by parameter ranges) keeps the bits of the caller alone.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ops/column_threads.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "util/rng.h"

namespace charlm {
namespace {

struct SplitCase {
  std::string name;
  ModelSpec spec;
};

// Sizes that are not multiples of the 16-float vectors (nor of each other), so that every range boundary and
// every loop remainder is exercised; dropout and recurrent dropout on to run the mask loops.
std::vector<SplitCase> SplitCases() {
  std::vector<SplitCase> cases;
  auto add = [&](std::string name, CellKind cell, Activation activation, bool reset_after, int embedding) {
    ModelSpec spec;
    spec.cell = cell;
    spec.activation = activation;
    spec.reset_after = reset_after;
    spec.vocab_size = 37;
    spec.embedding_size = embedding;
    spec.hidden_size = 19;
    spec.num_layers = 2;
    spec.dropout = 0.2;
    spec.recurrent_dropout = 0.1;
    cases.push_back({std::move(name), spec});
  };
  add("lstm", CellKind::kLstm, Activation::kTanh, true, 7);
  add("gru", CellKind::kGru, Activation::kTanh, true, 7);
  add("gru reset_before", CellKind::kGru, Activation::kTanh, false, 0);
  add("rnn tanh", CellKind::kRnn, Activation::kTanh, true, 0);
  add("rnn relu", CellKind::kRnn, Activation::kRelu, true, 7);
  return cases;
}

// Three training steps (forward, backward, Adam) from the same start, every elementwise phase split over
// `threads` (null: the caller alone). Returns the parameters, then the three losses, then Adam's state.
std::vector<float> TrainThreeSteps(const ModelSpec& spec, ColumnThreads* threads) {
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 5);
  OptimizerConfig adam;
  adam.name = OptimizerKind::kAdam;
  adam.lr = 0.01;
  Optimizer optimizer(adam, model.params().size());
  const int T = 6, B = 5;
  auto ws = model.MakeWorkspace(T, B);
  ws->row_threads = threads;
  auto state = model.MakeState(B);
  Rng rng(17);
  std::vector<int> x(static_cast<std::size_t>(T) * B), y(x.size());
  std::vector<float> losses;
  for (int step = 0; step < 3; ++step) {
    for (std::size_t k = 0; k < x.size(); ++k) {
      x[k] = static_cast<int>(rng.Below(spec.vocab_size));
      y[k] = static_cast<int>(rng.Below(spec.vocab_size));
    }
    model.ZeroGrads();
    losses.push_back(model.Forward(*ws, x.data(), y.data(), T, B, state, ForwardMode{true, 100u + step, 0}));
    model.Backward(*ws, nullptr);
    optimizer.Step(model.params(), model.grads(), adam.lr, 0.5f, threads);
  }
  std::vector<float> result = model.params();
  result.insert(result.end(), losses.begin(), losses.end());
  result.insert(result.end(), optimizer.state().begin(), optimizer.state().end());
  return result;
}

// The caller runs whatever chunk a worker has not taken through the same range code, so the ranges' arithmetic is
// checked even when the machine is too busy for the worker to take part.
TEST_CASE("train threads: cell kernels, softmax and Adam split over two threads keep one thread's bits") {
  ColumnThreads two(2, ColumnThreads::IdleWait::kYield);
  two.set_min_range_work(0);  // split even these small shapes
  ColumnThreads three(3, ColumnThreads::IdleWait::kYield);
  three.set_min_range_work(0);
  for (const SplitCase& c : SplitCases()) {
    CAPTURE(c.name);
    const std::vector<float> alone = TrainThreeSteps(c.spec, nullptr);
    for (ColumnThreads* threads : {&two, &three}) {
      CAPTURE(threads->threads());
      const std::vector<float> split = TrainThreeSteps(c.spec, threads);
      REQUIRE(split.size() == alone.size());
      CHECK(std::memcmp(split.data(), alone.data(), alone.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("train threads: SGD with momentum and RMSprop split over two threads keep one thread's bits") {
  ColumnThreads two(2, ColumnThreads::IdleWait::kYield);
  two.set_min_range_work(0);
  Rng rng(3);
  const std::size_t n = 1000 + 7;
  std::vector<float> grads(n), start(n);
  for (std::size_t k = 0; k < n; ++k) {
    grads[k] = static_cast<float>(rng.Uniform(-1, 1));
    start[k] = static_cast<float>(rng.Uniform(-1, 1));
  }
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kRmsprop}) {
    CAPTURE(EnumName(kind));
    OptimizerConfig config;
    config.name = kind;
    config.momentum = 0.9;
    config.weight_decay = 1e-3;
    config.lr = 0.1;
    Optimizer alone(config, n), split(config, n);
    std::vector<float> p_alone = start, p_split = start;
    for (int step = 0; step < 3; ++step) {
      alone.Step(p_alone, grads, config.lr, 0.7f);
      split.Step(p_split, grads, config.lr, 0.7f, &two);
    }
    CHECK(std::memcmp(p_alone.data(), p_split.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(alone.state().data(), split.state().data(), alone.state().size() * sizeof(float)) == 0);
  }
}

}  // namespace
}  // namespace charlm
