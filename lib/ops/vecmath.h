// Branch-free float exp, sigmoid and tanh that GCC vectorizes inside loops; double keeps libm for exact checks.
//
// libm's expf/tanhf are calls the compiler cannot vectorize, and they dominated the gate and softmax loops.
// These are inline, use only +, *, FMA-able products, compares/selects and integer bit tricks, so a loop over
// them becomes SIMD code. Accuracy (tests/vecmath_test.cc): exp within 3e-7 relative, sigmoid and tanh within
// 4e-7 relative, over the whole float range that matters for the model.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace charlm {

// exp(x) = 2^n * e^r with n = round(x / ln 2) and |r| <= ln(2)/2; e^r by its Taylor series to degree 7
// (truncation below 6e-9 relative). Inputs are clamped so 2^n stays a normal float: exp(-87.3) ~ 1.2e-38 is
// returned for anything smaller, and exp(88.3) ~ 2.2e38 for anything larger (2^128 would overflow).
inline float FastExp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693145751953125f;  // ln 2 split so n * kLn2High is exact for |n| < 2^8
  constexpr float kLn2Low = 1.428606765330187045e-6f;
  constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  const float shifted = x * kLog2e + kRoundMagic;
  const float n = shifted - kRoundMagic;
  const float r = (x - n * kLn2High) - n * kLn2Low;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n as an integer straight from the bits of `shifted` (no float-to-int conversion, so NaN passes through p).
  const std::int32_t exponent = std::bit_cast<std::int32_t>(shifted) - std::bit_cast<std::int32_t>(kRoundMagic) + 127;
  return p * std::bit_cast<float>(exponent << 23);
}

inline float FastSigmoid(float x) { return 1.0f / (1.0f + FastExp(-x)); }

// tanh|x| = 1 - 2 / (e^{2|x|} + 1) loses relative accuracy near 0 by cancellation, so |x| < 0.25 uses the odd
// Taylor series to x^11 instead (its truncation is below 1e-8 relative there). Both are computed and one is
// selected, which keeps the loop branch-free.
inline float FastTanh(float x) {
  const float ax = std::fabs(x);
  const float large = 1.0f - 2.0f / (FastExp(2.0f * ax) + 1.0f);
  const float x2 = x * x;
  float p = -1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = ax + ax * x2 * p;
  return std::copysign(ax < 0.25f ? small : large, x);
}

// The model's nonlinearities by scalar type: the float path is the fast one, double stays on libm so the
// gradient checks in double compare against exact derivatives.
inline float Exp(float x) { return FastExp(x); }
inline double Exp(double x) { return std::exp(x); }
inline float Sigmoid(float x) { return FastSigmoid(x); }
inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline float Tanh(float x) { return FastTanh(x); }
inline double Tanh(double x) { return std::tanh(x); }

}  // namespace charlm
