// Bounds the error of the vectorizable float exp, sigmoid and tanh against libm in double, and checks their edges.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>

#include "ops/vecmath.h"

namespace charlm {
namespace {

// Largest relative error of fast(x) against exact(x) over [lo, hi] in `count` evenly spaced points.
template <typename Fast, typename Exact>
double MaxRelativeError(Fast fast, Exact exact, double lo, double hi, int count) {
  double worst = 0;
  for (int k = 0; k <= count; ++k) {
    const float x = static_cast<float>(lo + (hi - lo) * k / count);
    const double reference = exact(static_cast<double>(x));
    if (reference == 0) continue;
    worst = std::max(worst, std::abs(static_cast<double>(fast(x)) - reference) / std::abs(reference));
  }
  return worst;
}

TEST_CASE("vecmath: exp is within 3e-7 relative of libm over the float range it clamps to") {
  const double error = MaxRelativeError(FastExp, [](double x) { return std::exp(x); }, -87.0, 88.0, 2000003);
  MESSAGE("exp max relative error " << error);
  CHECK(error < 3e-7);
  CHECK(FastExp(0.0f) == 1.0f);
  CHECK(std::isfinite(FastExp(1000.0f)));
  CHECK(FastExp(1000.0f) > 1e38f);
  CHECK(FastExp(-1000.0f) >= 0.0f);
  CHECK(FastExp(-1000.0f) < 2e-38f);
}

TEST_CASE("vecmath: sigmoid and tanh are within 4e-7 relative of libm, including near zero") {
  const auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const auto tanh = [](double x) { return std::tanh(x); };
  for (double scale : {1e-6, 0.3, 1.0, 4.0, 20.0}) {
    CAPTURE(scale);
    const double sigmoid_error = MaxRelativeError(FastSigmoid, sigmoid, -scale, scale, 200001);
    const double tanh_error = MaxRelativeError(FastTanh, tanh, -scale, scale, 200001);
    MESSAGE("sigmoid " << sigmoid_error << ", tanh " << tanh_error);
    CHECK(sigmoid_error < 4e-7);
    CHECK(tanh_error < 4e-7);
  }
}

TEST_CASE("vecmath: saturation, symmetry and NaN behave like libm") {
  CHECK(FastTanh(50.0f) == 1.0f);
  CHECK(FastTanh(-50.0f) == -1.0f);
  CHECK(FastTanh(0.0f) == 0.0f);
  CHECK(FastTanh(1e-30f) == 1e-30f);
  CHECK(FastSigmoid(100.0f) == 1.0f);
  CHECK(FastSigmoid(-100.0f) >= 0.0f);
  CHECK(FastSigmoid(-100.0f) < 1e-38f);
  CHECK(FastSigmoid(0.0f) == 0.5f);
  for (float x : {0.1f, 0.7f, 2.5f, 9.0f}) {
    CHECK(FastTanh(-x) == -FastTanh(x));
    CHECK(std::abs(FastSigmoid(-x) - (1.0f - FastSigmoid(x))) < 1e-7f);
  }
  CHECK(std::isnan(FastTanh(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(FastSigmoid(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("vecmath: the double overloads are libm's, exactly") {
  for (double x : {-3.0, -0.2, 0.0, 1e-9, 0.7, 5.0}) {
    CHECK(Exp(x) == std::exp(x));
    CHECK(Tanh(x) == std::tanh(x));
    CHECK(Sigmoid(x) == 1.0 / (1.0 + std::exp(-x)));
  }
}

}  // namespace
}  // namespace charlm
