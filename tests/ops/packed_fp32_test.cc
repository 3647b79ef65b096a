// Proves train.precision "fp32_packed": the model's loss, gradients and carried state as close to double as fp32's
// on every cell, the per-step products really run packed, and training, eval and generate from the command line.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "cli_util.h"
#include "ops/bf16_gemm.h"
#include "model/model.h"
#include "precision_cases.h"
#include "util/rng.h"

namespace charlm {
namespace {

// fp32_packed needs a build with oneDNN (any CPU); without one the tests say so loudly.
bool OnednnOrSkip(const char* test) {
  const std::string onednn = OnednnDescription();
  if (onednn.rfind("none", 0) != 0) return true;
  std::printf("SKIPPED: %s: this charlm was built without oneDNN (apt-get install libdnnl-dev, then rebuild)\n", test);
  return false;
}

using testing::PrecisionCase;
using testing::PrecisionCases;
using testing::RelativeError;

TEST_CASE("fp32_packed: loss, gradients and final state are as close to double as fp32's, and the steps ran packed") {
  if (!OnednnOrSkip("fp32_packed model")) return;
  for (const PrecisionCase& c : PrecisionCases()) {
    CAPTURE(c.name);
    const ModelSpec& spec = c.spec;
    CharModel<double> reference(spec);
    reference.Initialize(InitScheme::kPytorch, 11);
    CharModel<float> fp32(spec), packed(spec);
    for (std::size_t k = 0; k < fp32.params().size(); ++k) {
      fp32.params()[k] = packed.params()[k] = static_cast<float>(reference.params()[k]);
    }
    packed.set_precision(Precision::kFp32Packed);
    const int steps = 6, batch = 5;
    Rng rng(13);
    std::vector<int> inputs(steps * batch), targets(steps * batch);
    for (int& x : inputs) x = static_cast<int>(rng.Below(spec.vocab_size));
    for (int& x : targets) x = static_cast<int>(rng.Below(spec.vocab_size));
    const ForwardMode mode{true, 77};
    auto ws_d = reference.MakeWorkspace(steps, batch);
    auto ws_f = fp32.MakeWorkspace(steps, batch);
    auto ws_p = packed.MakeWorkspace(steps, batch);
    auto state_d = reference.MakeState(batch);
    auto state_f = fp32.MakeState(batch);
    auto state_p = packed.MakeState(batch);
    for (std::size_t k = 0; k < state_d.h.size(); ++k) {  // a carried state, so the first step's product counts
      state_d.h[k] = 0.5 * std::sin(static_cast<double>(k));
      state_f.h[k] = state_p.h[k] = static_cast<float>(state_d.h[k]);
    }
    reference.ZeroGrads();
    fp32.ZeroGrads();
    packed.ZeroGrads();
    const double loss_d = reference.Forward(*ws_d, inputs.data(), targets.data(), steps, batch, state_d, mode);
    const double loss_f = fp32.Forward(*ws_f, inputs.data(), targets.data(), steps, batch, state_f, mode);
    const double loss_p = packed.Forward(*ws_p, inputs.data(), targets.data(), steps, batch, state_p, mode);
    for (const auto& layer : ws_p->layers) CHECK(layer.step_weights_packed());
    for (const auto& layer : ws_f->layers) CHECK(!layer.step_weights_packed());
    reference.Backward(*ws_d, nullptr);
    fp32.Backward(*ws_f, nullptr);
    packed.Backward(*ws_p, nullptr);
    for (const auto& layer : ws_p->layers) CHECK(layer.step_weights_packed());
    const double loss_error_f = std::abs(loss_f - loss_d) / loss_d, loss_error_p = std::abs(loss_p - loss_d) / loss_d;
    const double grad_error_f = RelativeError(fp32.grads(), reference.grads());
    const double grad_error_p = RelativeError(packed.grads(), reference.grads());
    CAPTURE(loss_error_f);
    CAPTURE(loss_error_p);
    CAPTURE(grad_error_f);
    CAPTURE(grad_error_p);
    // fp32's own distance from double (seen: loss ~3e-8, gradients ~4e-7), with room for another summation order;
    // bf16 inputs would be 100-1000 times further.
    CHECK(loss_error_p < 1e-6);
    CHECK(grad_error_p < 1e-5);
    CHECK(grad_error_p < std::max(10 * grad_error_f, 1e-6));
    std::vector<double> h_d(state_d.h.begin(), state_d.h.end());
    CHECK(RelativeError(state_p.h, h_d) < 1e-5);
  }
}

TEST_CASE("fp32_packed: train with it, then eval and generate in it or in fp32, from the command line") {
  if (!OnednnOrSkip("fp32_packed command line")) return;
  const testing::TempDir dir;
  testing::WriteTinyRun(dir);
  const testing::RunResult packed = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.precision=fp32_packed"});
  REQUIRE_MESSAGE(packed.exit_code == 0, packed.output);
  const testing::RunResult fp32 =
      testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=fp32"});
  REQUIRE_MESSAGE(fp32.exit_code == 0, fp32.output);
  auto perplexity = [&](const std::string& checkpoint, const std::string& precision) {
    const testing::RunResult r = testing::Run(
        dir, {"eval", "--checkpoint", checkpoint, "--split", "val", "--json", "--precision", precision});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return nlohmann::json::parse(r.output.substr(r.output.find('{'))).at("perplexity").get<double>();
  };
  // The same checkpoint scored both ways: only the summation order differs.
  const double as_fp32 = perplexity("run/best.ckpt", "fp32"), as_packed = perplexity("run/best.ckpt", "fp32_packed");
  CHECK(std::abs(as_packed - as_fp32) / as_fp32 < 1e-5);
  // Trained both ways from the same seed: two epochs of rounding differences leave the figure where it was.
  const double trained_fp32 = perplexity("fp32/best.ckpt", "fp32");
  CHECK(std::abs(as_fp32 - trained_fp32) / trained_fp32 < 0.01);
  const testing::RunResult generated = testing::Run(
      dir, {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "20", "--precision", "fp32_packed"});
  CHECK_MESSAGE(generated.exit_code == 0, generated.output);
}

}  // namespace
}  // namespace charlm
