// Checks the float GEMM wrapper's single-row path (used at batch 1) against the naive loop, for every beta kind.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <initializer_list>
#include <vector>

#include "cli/commands.h"
#include "util/shell_quote.h"
#include "ops/blas.h"
#include "util/rng.h"
#include "test_util.h"

namespace charlm {
namespace {

TEST_CASE("blas: the single-row float product matches the naive loop for odd sizes, strides, alpha and beta") {
  Rng rng(7);
  for (bool trans_a : {false, true}) {
    for (int k : {1, 3, 4, 9, 64}) {
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        CAPTURE(trans_a);
        CAPTURE(k);
        CAPTURE(beta);
        const int n = 37, ldb = 41, lda = trans_a ? 3 : k;  // trans_a: a is (k, 1) stored with row stride 3
        std::vector<float> a(static_cast<std::size_t>(k) * 3), b(static_cast<std::size_t>(k) * ldb), c(n), ref(n);
        for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
        for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
        for (int j = 0; j < n; ++j) c[j] = ref[j] = static_cast<float>(rng.Uniform(-1, 1));
        if (beta == 0.0f) std::fill(c.begin(), c.end(), std::nanf(""));  // beta 0 must overwrite, not scale
        Gemm<float>(trans_a, false, 1, n, k, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(), n);
        NaiveGemm<float>(trans_a, false, 1, n, k, 1.5f, a.data(), lda, b.data(), ldb, beta, ref.data(), n);
        for (int j = 0; j < n; ++j) CHECK(c[j] == doctest::Approx(ref[j]).epsilon(1e-5));
      }
    }
  }
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("blas: only OpenBLAS's generic fallback is replaced, by the best kernel table the CPU's features allow") {
  CpuFeatures none, avx2, avx512, bf16;
  avx2.avx2_fma = true;
  avx512 = avx2;
  avx512.avx512 = true;
  bf16 = avx512;
  bf16.avx512_bf16 = true;
  CHECK(BetterBlasCore("Prescott", none) == "");
  CHECK(BetterBlasCore("Prescott", avx2) == "Haswell");
  CHECK(BetterBlasCore("Prescott", avx512) == "SkylakeX");
  CHECK(BetterBlasCore("Prescott", bf16) == "Cooperlake");
  for (const char* detected : {"Haswell", "SkylakeX", "Cooperlake", "Zen", "Sandybridge"}) {
    CAPTURE(detected);
    CHECK(BetterBlasCore(detected, bf16) == "");
  }
}

// `charlm --version` with OPENBLAS_CORETYPE as given ("" = unset): its "OpenBLAS: ..." line.
std::string VersionBlasLine(const std::string& coretype) {
  std::string command = "env -u OPENBLAS_CORETYPE -u CHARLM_OPENBLAS_DETECTED_CORE ";
  if (!coretype.empty()) command += "OPENBLAS_CORETYPE=" + coretype + " ";
  command += ShellQuote(testing::CharlmBinary().string()) + " --version 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[1024];
  for (std::size_t count; (count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, count);
  CHECK(::pclose(pipe) == 0);
  const std::size_t at = output.find("OpenBLAS: ");
  REQUIRE_MESSAGE(at != std::string::npos, output);
  return output.substr(at, output.find('\n', at) - at);
}

TEST_CASE("blas: the program runs on a kernel table that fits the CPU, and a table the user names is kept") {
  CHECK(VersionBlasLine("Prescott") == "OpenBLAS: Prescott kernels");
  CHECK(VersionBlasLine("Haswell") == "OpenBLAS: Haswell kernels");
  const std::string chosen = VersionBlasLine("");
  MESSAGE(chosen);
  if (DetectCpuFeatures().avx2_fma) CHECK(chosen.find("Prescott kernels") == std::string::npos);
}

}  // namespace
}  // namespace charlm
