// train.engine "onednn": oneDNN's RNN primitive against charlm's own kernels on the same weights and inputs (loss,
// every gradient, the carried state over two chunks), bf16 against fp32, and the shapes it refuses.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/onednn_recurrent.h"
#include "ops/bf16_gemm.h"
#include "util/errors.h"
#include "util/rng.h"

namespace charlm {
namespace {

// max|a-b| / max(|a|+|b|) over the tensor: how far the two engines' figures are apart, relative to their size.
double RelativeGap(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  double max_diff = 0, max_scale = 1e-30;
  for (std::size_t k = 0; k < a.size(); ++k) {
    max_diff = std::max(max_diff, std::abs(double(a[k]) - b[k]));
    max_scale = std::max(max_scale, std::abs(double(a[k])) + std::abs(double(b[k])));
  }
  return max_diff / max_scale;
}

struct EngineRun {
  std::vector<float> losses;                 // one per chunk
  std::vector<float> grads;                  // summed over the chunks
  std::vector<float> h, c;                   // the state carried out of the last chunk
  std::vector<float> d_h0, d_c0;             // the last chunk's gradient for the state it started from
};

// Two consecutive chunks of (steps, batch) random tokens, the state carried between them, each chunk's forward and
// backward accumulating into one gradient.
EngineRun RunChunks(const ModelSpec& spec, Engine engine, Precision precision, bool dropout_on = false) {
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 7);
  model.set_precision(precision);
  model.set_engine(engine);
  const int steps = 6, batch = 3;
  auto ws = model.MakeWorkspace(steps, batch);
  auto state = model.MakeState(batch);
  auto d_state = model.MakeState(batch);
  model.ZeroGrads();
  Rng rng(11);
  std::vector<int> x(static_cast<std::size_t>(steps) * batch), y(x.size());
  EngineRun run;
  ForwardMode mode;
  mode.training = dropout_on;
  mode.dropout_seed = 5;
  for (int chunk = 0; chunk < 2; ++chunk) {
    for (std::size_t k = 0; k < x.size(); ++k) {
      x[k] = static_cast<int>(rng.Below(spec.vocab_size));
      y[k] = static_cast<int>(rng.Below(spec.vocab_size));
    }
    run.losses.push_back(model.Forward(*ws, x.data(), y.data(), steps, batch, state, mode));
    model.Backward(*ws, &d_state);
  }
  run.grads.assign(model.grads().begin(), model.grads().end());
  run.h = state.h;
  run.c = state.c;
  run.d_h0 = d_state.h;
  run.d_c0 = d_state.c;
  return run;
}

ModelSpec Spec(CellKind cell, int embedding, int layers) {
  ModelSpec spec;
  spec.cell = cell;
  spec.vocab_size = 7;
  spec.embedding_size = embedding;
  spec.hidden_size = 8;
  spec.num_layers = layers;
  return spec;
}

// Every tensor of the two runs' gradients, by name, within `tolerance` of each other.
void CheckGradients(const ModelSpec& spec, const EngineRun& a, const EngineRun& b, double tolerance) {
  const ParamLayout layout(spec);
  for (const ParamTensor& tensor : layout.tensors()) {
    CAPTURE(tensor.name);
    const std::span<const float> ga(a.grads.data() + tensor.offset, tensor.size());
    const std::span<const float> gb(b.grads.data() + tensor.offset, tensor.size());
    CHECK(RelativeGap(ga, gb) < tolerance);
  }
}

void CheckAgree(const ModelSpec& spec, const EngineRun& a, const EngineRun& b, double tolerance) {
  for (std::size_t k = 0; k < a.losses.size(); ++k) {
    CAPTURE(k);
    CHECK(std::abs(a.losses[k] - b.losses[k]) < tolerance * std::abs(a.losses[k]));
  }
  CHECK(RelativeGap(a.h, b.h) < tolerance);
  CHECK(RelativeGap(a.c, b.c) < tolerance);
  CHECK(RelativeGap(a.d_h0, b.d_h0) < tolerance);
  CHECK(RelativeGap(a.d_c0, b.d_c0) < tolerance);
  CheckGradients(spec, a, b, tolerance);
}

std::vector<ModelSpec> SupportedSpecs() {
  std::vector<ModelSpec> specs;
  for (CellKind cell : {CellKind::kLstm, CellKind::kGru, CellKind::kRnn}) {
    for (int embedding : {0, 5}) specs.push_back(Spec(cell, embedding, 2));
  }
  ModelSpec relu = Spec(CellKind::kRnn, 0, 1);
  relu.activation = Activation::kRelu;
  specs.push_back(relu);
  return specs;
}

std::string Name(const ModelSpec& spec) {
  return std::string(EnumName(spec.cell)) + " " + std::string(EnumName(spec.activation)) +
         " embedding=" + std::to_string(spec.embedding_size) + " layers=" + std::to_string(spec.num_layers);
}

// Every supported shape: the primitive in `precision` against charlm's fp32 kernels.
void CheckSupportedSpecs(Precision precision, double tolerance) {
  for (const ModelSpec& spec : SupportedSpecs()) {
    CAPTURE(Name(spec));
    CheckAgree(spec, RunChunks(spec, Engine::kCharlm, Precision::kFp32), RunChunks(spec, Engine::kOnednn, precision),
               tolerance);
  }
}

TEST_CASE("onednn engine: fp32 loss, gradients and carried state match charlm's kernels over two chunks") {
  CheckSupportedSpecs(Precision::kFp32, 1e-5);
}

TEST_CASE("onednn engine: input and output dropout (one-hot rows scaled) match charlm's kernels") {
  for (int embedding : {0, 5}) {
    ModelSpec spec = Spec(CellKind::kGru, embedding, 2);
    spec.dropout = 0.3;
    CAPTURE(embedding);
    CheckAgree(spec, RunChunks(spec, Engine::kCharlm, Precision::kFp32, true),
               RunChunks(spec, Engine::kOnednn, Precision::kFp32, true), 1e-5);
  }
}

TEST_CASE("onednn engine: bf16 within 2e-2 of charlm's fp32") {
  if (!Bf16Unavailable().empty()) {
    MESSAGE("bf16 not available here: " << Bf16Unavailable());
    return;
  }
  CheckSupportedSpecs(Precision::kBf16, 2e-2);
}

TEST_CASE("onednn engine: the book's GRU and recurrent dropout are refused with one line naming train.engine") {
  ModelSpec book = Spec(CellKind::kGru, 0, 1);
  book.reset_after = false;
  CharModel<float> model(book);
  try {
    model.set_engine(Engine::kOnednn);
    FAIL("no error");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.find("train.engine \"onednn\"") != std::string::npos);
    CHECK(message.find("reset_after") != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
  CHECK(model.engine() == Engine::kCharlm);
  ModelSpec dropped = Spec(CellKind::kLstm, 0, 1);
  dropped.recurrent_dropout = 0.2;
  CHECK_THROWS_AS(CharModel<float>(dropped).set_engine(Engine::kOnednn), UserError);
  CHECK_THROWS_AS(CharModel<double>(Spec(CellKind::kLstm, 0, 1)).set_engine(Engine::kOnednn), UserError);
}

TEST_CASE("onednn engine: the generation workspace stays on charlm's kernels") {
  CharModel<float> model(Spec(CellKind::kLstm, 5, 1));
  model.set_engine(Engine::kOnednn);
  CHECK(model.MakeWorkspace(4, 2)->layers[0].runs_onednn());
  CHECK(!model.MakeGenerationWorkspace(4, nullptr)->layers[0].runs_onednn());
}

}  // namespace
}  // namespace charlm
