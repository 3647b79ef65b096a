// Proves bf16 precision: rounding, GemmBf16 against a double loop on the rounded inputs, the model's loss and
// gradients within tolerance of fp32 (and measurably not fp32), a short training run, and the clear errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <span>
#include <thread>
#include <vector>

#include "ops/bf16_gemm.h"
#include "cli_util.h"
#include "util/errors.h"
#include "model/model.h"
#include "precision_cases.h"
#include "util/rng.h"

namespace charlm {
namespace {

// The tests that run bf16 products need oneDNN and a CPU with native bf16; elsewhere they say so loudly.
bool Bf16OrSkip(const char* test) {
  const std::string why = Bf16Unavailable();
  if (why.empty()) return true;
  std::printf("SKIPPED: %s: %s\n", test, why.c_str());
  return false;
}

TEST_CASE("bf16: rounding is to nearest even, keeps NaN and infinities, and is exact on bf16 values") {
  CHECK(ToBf16(1.0f) == 0x3f80);
  CHECK(FromBf16(ToBf16(1.0f + 1.0f / 256)) == 1.0f);             // a tie: rounds to the even 1.0
  CHECK(FromBf16(ToBf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);  // a tie: rounds to the even 1 + 2/128
  CHECK(FromBf16(ToBf16(1.0f + 1.0f / 256 + 1e-6f)) == 1.0f + 1.0f / 128);  // above the tie: up
  CHECK(std::isnan(FromBf16(ToBf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(FromBf16(ToBf16(std::numeric_limits<float>::infinity()))));
  CHECK(FromBf16(ToBf16(-3.5f)) == -3.5f);
  Rng rng(3);
  double worst = 0;
  for (int i = 0; i < 10000; ++i) {
    const float x = static_cast<float>(rng.Uniform(-100, 100));
    worst = std::max<double>(worst, std::abs(FromBf16(ToBf16(x)) - x) / std::abs(x));
  }
  CHECK(worst <= 1.0 / 256);  // half of bf16's 2^-7 spacing
  CHECK(worst > 1.0 / 1024);
}

TEST_CASE("bf16: GemmBf16 equals a double loop over the bf16 inputs, for every transpose and beta 0 and 1") {
  if (!Bf16OrSkip("GemmBf16")) return;
  Rng rng(5);
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {false, true}) {
      for (float beta : {0.0f, 1.0f}) {
        CAPTURE(trans_a);
        CAPTURE(trans_b);
        CAPTURE(beta);
        const int m = 7, n = 37, k = 300, lda = (trans_a ? m : k) + 3, ldb = (trans_b ? k : n) + 5, ldc = n + 2;
        std::vector<Bf16> a(static_cast<std::size_t>(trans_a ? k : m) * lda), b(static_cast<std::size_t>(trans_b ? n : k) * ldb);
        for (auto& x : a) x = ToBf16(static_cast<float>(rng.Uniform(-1, 1)));
        for (auto& x : b) x = ToBf16(static_cast<float>(rng.Uniform(-1, 1)));
        std::vector<float> c(static_cast<std::size_t>(m) * ldc);
        for (auto& x : c) x = static_cast<float>(rng.Uniform(-1, 1));
        const std::vector<float> c0 = c;
        GemmBf16(trans_a, trans_b, m, n, k, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        double worst = 0;
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < n; ++j) {
            double sum = beta * c0[static_cast<std::size_t>(i) * ldc + j];
            for (int p = 0; p < k; ++p) {
              const Bf16 av = trans_a ? a[static_cast<std::size_t>(p) * lda + i] : a[static_cast<std::size_t>(i) * lda + p];
              const Bf16 bv = trans_b ? b[static_cast<std::size_t>(j) * ldb + p] : b[static_cast<std::size_t>(p) * ldb + j];
              sum += static_cast<double>(FromBf16(av)) * FromBf16(bv);
            }
            worst = std::max(worst, std::abs(c[static_cast<std::size_t>(i) * ldc + j] - sum));
          }
        }
        CHECK(worst < 1e-4);  // fp32 accumulation of exact products: sums of ~300 terms of size ~0.3
        CHECK(c[static_cast<std::size_t>(m - 1) * ldc + n] == c0[static_cast<std::size_t>(m - 1) * ldc + n]);  // padding untouched
      }
    }
  }
}

// C = A op(B) + beta C in double over the values PackedProduct saw (bf16 or fp32 inputs as floats).
std::vector<double> ReferenceProduct(bool trans_b, int m, int n, int k, const std::vector<float>& a, int lda,
                                     const std::vector<float>& b, int ldb, float beta, const std::vector<float>& c0, int ldc) {
  std::vector<double> c(c0.begin(), c0.end());
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = beta * c0[static_cast<std::size_t>(i) * ldc + j];
      for (int p = 0; p < k; ++p) {
        const float bv = trans_b ? b[static_cast<std::size_t>(j) * ldb + p] : b[static_cast<std::size_t>(p) * ldb + j];
        sum += static_cast<double>(a[static_cast<std::size_t>(i) * lda + p]) * bv;
      }
      c[static_cast<std::size_t>(i) * ldc + j] = sum;
    }
  }
  return c;
}

TEST_CASE("bf16: PackedProduct on a packed weight equals a double loop, and a second Pack takes the new weight") {
  if (!Bf16OrSkip("PackedProduct")) return;
  Rng rng(21);
  for (bool bf16 : {true, false}) {
    for (bool trans_b : {false, true}) {
      for (float beta : {0.0f, 1.0f}) {
        CAPTURE(bf16);
        CAPTURE(trans_b);
        CAPTURE(beta);
        // A recurrent step's shape: a (B, H) at lda, a slice of w_h (H, gH) at ldb = gH, C at ldc.
        const int m = 8, n = trans_b ? 64 : 192, k = trans_b ? 192 : 64, lda = k + 3, ldb = (trans_b ? k : n) + 64, ldc = n + 5;
        std::vector<float> a(static_cast<std::size_t>(m) * lda), c0(static_cast<std::size_t>(m) * ldc);
        std::vector<float> b(static_cast<std::size_t>(trans_b ? n : k) * ldb);
        auto fill = [&](std::vector<float>& v) {
          for (auto& x : v) x = static_cast<float>(rng.Uniform(-1, 1));
          if (bf16) for (auto& x : v) x = FromBf16(ToBf16(x));  // exact in bf16, so the double loop sees the same values
        };
        fill(a);
        fill(b);
        fill(c0);
        std::vector<Bf16> a16(a.size()), b16(b.size());
        ConvertToBf16(a.data(), a.size(), a16.data());
        PackedProduct packed;
        for (int round = 0; round < 2; ++round) {  // round 1: a new weight, packed into the same buffers
          CAPTURE(round);
          if (round == 1) fill(b);
          ConvertToBf16(b.data(), b.size(), b16.data());
          std::vector<float> c = c0;
          if (bf16) {
            packed.PackBf16(trans_b, m, n, k, b16.data(), ldb, lda, ldc, beta);
            packed.RunBf16(a16.data(), c.data());
          } else {
            packed.PackFp32(trans_b, m, n, k, b.data(), ldb, lda, ldc, beta);
            packed.RunFp32(a.data(), c.data());
          }
          const std::vector<double> ref = ReferenceProduct(trans_b, m, n, k, a, lda, b, ldb, beta, c0, ldc);
          double worst = 0;
          for (int i = 0; i < m; ++i) {
            for (int j = 0; j < n; ++j) {
              const std::size_t at = static_cast<std::size_t>(i) * ldc + j;
              worst = std::max(worst, std::abs(c[at] - ref[at]));
            }
          }
          CHECK(worst < 1e-4);  // fp32 accumulation of ~192 terms of size ~0.3
          CHECK(c[static_cast<std::size_t>(m - 1) * ldc + n] == c0[static_cast<std::size_t>(m - 1) * ldc + n]);  // padding untouched
        }
        if (bf16) CHECK(packed.reordered());  // oneDNN chose its own layout: the weight was packed, not just wrapped
      }
    }
  }
}

using testing::PrecisionCase;
using testing::PrecisionCases;
using testing::RelativeError;

// The stated tolerance: bf16 keeps 8 significant bits (relative rounding error up to 2^-9 = 0.002 per input), and
// products of dozens of terms average that down. Over 2 layers and 6 steps the loss stays within 0.1 % of double
// and the gradient (max-norm relative) within 2 % (seen: 3e-6..2e-5 and 0.001..0.005). fp32 is 1000 times closer
// (3e-8 and 4e-7): it must not pass for bf16 (kNotFp32).
constexpr double kLossTolerance = 1e-3, kGradTolerance = 0.02, kNotFp32 = 1e-4;

TEST_CASE("bf16: the model's loss and gradients are within tolerance of double, and measurably not fp32's") {
  if (!Bf16OrSkip("bf16 model")) return;
  for (const PrecisionCase& c : PrecisionCases()) {
    CAPTURE(c.name);
    CharModel<double> reference(c.spec);
    reference.Initialize(InitScheme::kPytorch, 11);
    CharModel<float> fp32(c.spec), bf16(c.spec);
    for (std::size_t k = 0; k < fp32.params().size(); ++k) fp32.params()[k] = bf16.params()[k] = static_cast<float>(reference.params()[k]);
    bf16.set_precision(Precision::kBf16);
    const int steps = 6, batch = 5;
    Rng rng(13);
    std::vector<int> inputs(steps * batch), targets(steps * batch);
    for (int& x : inputs) x = static_cast<int>(rng.Below(c.spec.vocab_size));
    for (int& x : targets) x = static_cast<int>(rng.Below(c.spec.vocab_size));
    const ForwardMode mode{true, 77};
    auto ws_d = reference.MakeWorkspace(steps, batch);
    auto ws_f = fp32.MakeWorkspace(steps, batch);
    auto ws_b = bf16.MakeWorkspace(steps, batch);
    auto state_d = reference.MakeState(batch);
    auto state_f = fp32.MakeState(batch);
    auto state_b = bf16.MakeState(batch);
    reference.ZeroGrads();
    fp32.ZeroGrads();
    bf16.ZeroGrads();
    const double loss_d = reference.Forward(*ws_d, inputs.data(), targets.data(), steps, batch, state_d, mode);
    const double loss_f = fp32.Forward(*ws_f, inputs.data(), targets.data(), steps, batch, state_f, mode);
    const double loss_b = bf16.Forward(*ws_b, inputs.data(), targets.data(), steps, batch, state_b, mode);
    reference.Backward(*ws_d, nullptr);
    fp32.Backward(*ws_f, nullptr);
    bf16.Backward(*ws_b, nullptr);
    const double loss_error_f = std::abs(loss_f - loss_d) / loss_d, loss_error_b = std::abs(loss_b - loss_d) / loss_d;
    const double grad_error_f = RelativeError(fp32.grads(), reference.grads());
    const double grad_error_b = RelativeError(bf16.grads(), reference.grads());
    CAPTURE(loss_error_f);
    CAPTURE(loss_error_b);
    CAPTURE(grad_error_f);
    CAPTURE(grad_error_b);
    CHECK(loss_error_b < kLossTolerance);
    CHECK(grad_error_b < kGradTolerance);
    CHECK(grad_error_f < kNotFp32 / 10);  // fp32 is far inside the line that bf16 must cross
    CHECK(grad_error_b > kNotFp32);       // bf16 products did run
    // The final states too (what consecutive batches carry forward).
    std::vector<double> h_d(state_d.h.begin(), state_d.h.end());
    CHECK(RelativeError(state_b.h, h_d) < kGradTolerance);
  }
}

TEST_CASE("bf16: a generation workspace rounds the weights once, an ordinary one at every Forward") {
  if (!Bf16OrSkip("bf16 weight rounding")) return;
  ModelSpec spec;
  spec.cell = CellKind::kGru;
  spec.vocab_size = 20;
  spec.embedding_size = 8;
  spec.hidden_size = 16;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 3);
  model.set_precision(Precision::kBf16);
  auto ws = model.MakeWorkspace(1, 1);
  auto state = model.MakeState(1);
  const int token = 4;
  model.Forward(*ws, &token, nullptr, 1, 1, state, {});
  const std::vector<float> before(WorkspaceLogits(*ws), WorkspaceLogits(*ws) + spec.vocab_size);
  for (float& p : model.params()) p *= 1.5f;  // an optimizer step
  state.Zero();
  model.Forward(*ws, &token, nullptr, 1, 1, state, {});
  CHECK(WorkspaceLogits(*ws)[0] != before[0]);  // the new weights were used
  for (std::size_t k = 0; k < model.params().size(); ++k) CHECK(ws->params_bf16[k] == ToBf16(model.params()[k]));
}

// Trains the same small LSTM twice from the same seed on the same text, in fp32 and bf16: plain SGD steps.
double TrainedLoss(Precision precision) {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 12;
  spec.embedding_size = 16;
  spec.hidden_size = 64;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 21);
  model.set_precision(precision);
  const int steps = 20, batch = 8, updates = 80;
  auto ws = model.MakeWorkspace(steps, batch);
  auto state = model.MakeState(batch);
  // A learnable text: a repeating pattern with a little noise.
  Rng rng(9);
  std::vector<int> text(steps * batch * 4 + 1);
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = rng.Uniform() < 0.1 ? static_cast<int>(rng.Below(12)) : static_cast<int>(i * 7 % 12);
  std::vector<int> x(steps * batch), y(steps * batch);
  double last = 0;
  for (int u = 0; u < updates; ++u) {
    const int start = (u % 4) * steps * batch;
    for (int t = 0; t < steps; ++t) {
      for (int b = 0; b < batch; ++b) {
        x[t * batch + b] = text[start + b * steps + t];
        y[t * batch + b] = text[start + b * steps + t + 1];
      }
    }
    model.ZeroGrads();
    state.Zero();
    last = model.Forward(*ws, x.data(), y.data(), steps, batch, state, {});
    model.Backward(*ws, nullptr);
    for (std::size_t k = 0; k < model.params().size(); ++k) model.params()[k] -= 0.5f * model.grads()[k];
  }
  return last;
}

TEST_CASE("bf16: a short training run reaches fp32's loss within 1 %") {
  if (!Bf16OrSkip("bf16 training")) return;
  const double fp32 = TrainedLoss(Precision::kFp32), bf16 = TrainedLoss(Precision::kBf16);
  CAPTURE(fp32);
  CAPTURE(bf16);
  CHECK(fp32 < 0.6 * std::log(12.0));  // it learned something: the test is not comparing two untrained models
  CHECK(std::abs(bf16 - fp32) / fp32 < 0.01);
  CHECK(bf16 != fp32);
}

TEST_CASE("bf16: asking for it where it cannot run is a one-line error naming the fix") {
  const testing::TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=fp32"}).exit_code == 0);
  // ONEDNN_MAX_CPU_ISA hides avx512_bf16 from oneDNN, which is what a CPU without it looks like; without oneDNN the
  // build itself is the reason. Either way the run stops before it trains.
  setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI", 1);
  const testing::RunResult train = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.precision=bf16"});
  const testing::RunResult eval = testing::Run(dir, {"eval", "--checkpoint", "fp32/best.ckpt", "--split", "val", "--precision", "bf16"});
  unsetenv("ONEDNN_MAX_CPU_ISA");
  CHECK_USER_ERROR(train, "train.precision \"bf16\" needs bf16 matrix products, but ");
  CHECK_USER_ERROR(train, "--set train.precision=fp32");
  CHECK(!std::filesystem::exists(dir / "run" / "last.ckpt"));
  CHECK_USER_ERROR(eval, "--precision bf16 needs bf16 matrix products, but ");
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.precision=bf8"}), "\"bf16\"");
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.precision=bf8"}), "train.precision");
}

TEST_CASE("bf16: train in bf16, then eval and generate in either precision from the command line") {
  if (!Bf16OrSkip("bf16 command line")) return;
  const testing::TempDir dir;
  testing::WriteTinyRun(dir);
  const testing::RunResult train = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.precision=bf16"});
  REQUIRE_MESSAGE(train.exit_code == 0, train.output);
  auto perplexity = [&](const std::string& precision) {
    const testing::RunResult r = testing::Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--precision", precision});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return nlohmann::json::parse(r.output.substr(r.output.find('{'))).at("perplexity").get<double>();
  };
  const double fp32 = perplexity("fp32"), bf16 = perplexity("bf16");
  CHECK(std::abs(bf16 - fp32) / fp32 < 0.005);
  CHECK(bf16 != fp32);
  const testing::RunResult generated =
      testing::Run(dir, {"generate", "--checkpoint", "run/best.ckpt", "--prefix", "the", "--length", "20", "--precision", "bf16"});
  CHECK_MESSAGE(generated.exit_code == 0, generated.output);
  CHECK_USER_ERROR(testing::Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--precision", "fp16"}),
                   "--precision fp16 is not one of \"fp32\" | \"bf16\" | \"fp32_packed\": leave --precision out");
}

TEST_CASE("bf16: charlm runs oneDNN's OpenMP threads with passive waiting unless the user chose a policy") {
  const testing::TempDir dir;
  auto policy = [&](const char* env) {
    if (env != nullptr) setenv("OMP_WAIT_POLICY", env, 1);
    const testing::RunResult r = testing::Run(dir, {"bench", "--preset", "char-rnn", "--set", "model.hidden_size=16",
                                                    "--set", "model.num_layers=1", "--set", "train.batch_size=2",
                                                    "--set", "train.num_steps=3", "--seconds", "0.01", "--json"});
    unsetenv("OMP_WAIT_POLICY");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return nlohmann::json::parse(r.output.substr(r.output.find('{'))).at("omp_wait_policy").get<std::string>();
  };
  unsetenv("OMP_WAIT_POLICY");
  if (OnednnDescription().starts_with("none")) {
    std::printf("SKIPPED: passive OpenMP waiting: built without oneDNN, so no OpenMP runtime\n");
    CHECK(policy(nullptr).empty());
    return;
  }
  CHECK(policy(nullptr) == "PASSIVE");
  CHECK(policy("ACTIVE") == "ACTIVE");
}

TEST_CASE("bf16: train.threads bounds oneDNN's OpenMP threads as it bounds OpenBLAS's") {
  if (!Bf16OrSkip("train.threads for oneDNN's threads")) return;
  const testing::TempDir dir;
  // bench's own count of the process's threads after its bf16 (or fp32) products ran.
  auto bench = [&](const std::string& precision, int threads) {
    const testing::RunResult r =
        testing::Run(dir, {"bench", "--preset", "d2l", "--set", "train.precision=" + precision, "--set",
                           "train.threads=" + std::to_string(threads), "--seconds", "0.05", "--json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return nlohmann::json::parse(r.output.substr(r.output.find('{')));
  };
  const nlohmann::json fp32_one = bench("fp32", 1), bf16_one = bench("bf16", 1);
  CHECK(bf16_one.at("omp_threads").get<int>() == 1);
  // OpenMP started no thread of its own: the same threads as fp32, which never enters oneDNN.
  CHECK(bf16_one.at("process_threads").get<int>() == fp32_one.at("process_threads").get<int>());
  if (std::thread::hardware_concurrency() < 2) return;
  // Allowed two, oneDNN's products do start OpenMP's second thread, so the check above would have seen it.
  const nlohmann::json fp32_two = bench("fp32", 2), bf16_two = bench("bf16", 2);
  CHECK(bf16_two.at("omp_threads").get<int>() == 2);
  CHECK(bf16_two.at("process_threads").get<int>() > fp32_two.at("process_threads").get<int>());
}

}  // namespace
}  // namespace charlm
