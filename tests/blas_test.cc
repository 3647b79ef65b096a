// Checks the float GEMM wrapper's single-row path (used at batch 1) against the naive loop, for every beta kind.
#include <doctest/doctest.h>

#include <cmath>
#include <initializer_list>
#include <vector>

#include "model/blas.h"
#include "rng.h"

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
