// A small, portable, seedable random generator: the same seed gives the same numbers on every platform.
#pragma once

#include <cmath>
#include <cstdint>

namespace charlm {

// SplitMix64 finalizer: mixes two words into a well-spread seed, e.g. (run seed, step counter).
constexpr std::uint64_t MixSeed(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256** seeded through SplitMix64; distributions are written here (not <random>'s), so they are portable.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) { Seed(seed); }

  void Seed(std::uint64_t seed) {
    for (int i = 0; i < 4; ++i) state_[i] = MixSeed(seed, static_cast<std::uint64_t>(i));
  }

  std::uint64_t NextU64() {
    const std::uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, n) without modulo bias worth caring about at our sizes (n << 2^64).
  std::uint64_t Below(std::uint64_t n) { return static_cast<std::uint64_t>(Uniform() * static_cast<double>(n)); }

  // Standard normal by Box-Muller (one value per call; simplicity over speed, it only runs at initialization).
  double Normal() {
    double u1 = Uniform();
    while (u1 <= 0.0) u1 = Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static constexpr std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4];
};

}  // namespace charlm
