// bf16 matrix products through oneDNN (bf16 inputs, fp32 accumulation and output), float-to-bf16 rounding,
// products on a pre-packed weight (PackedProduct), and Product: the one call the model's products go through,
// fp32 (SplitGemm, today's bits) or bf16.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "ops/column_threads.h"
#include "config/enums.h"

namespace charlm {

using Bf16 = std::uint16_t;  // the upper 16 bits of an IEEE-754 float

// Round to nearest even; NaN stays NaN (a quiet one), infinities stay infinite.
inline Bf16 ToBf16(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<Bf16>((u >> 16) | 0x40u);
  return static_cast<Bf16>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float FromBf16(Bf16 v) { return std::bit_cast<float>(static_cast<std::uint32_t>(v) << 16); }

// dst[i] = ToBf16(src[i]) for n values.
void ConvertToBf16(const float* src, std::size_t n, Bf16* dst);

// Empty when bf16 products can run here: this build has oneDNN and its CPU dispatch has native bf16
// (avx512_bf16 or AMX); otherwise the reason, for the error message. ONEDNN_MAX_CPU_ISA=AVX512_CORE hides bf16.
std::string Bf16Unavailable();
// Throws a UserError naming `setting` (what asked for bf16, e.g. "train.precision \"bf16\"") and the fix
// when Bf16Unavailable() is not empty.
void RequireBf16(const std::string& setting, const std::string& fix);

// What `precision` needs of this build and CPU, checked: bf16 as RequireBf16; fp32_packed a build with oneDNN (any
// CPU); fp32 nothing. `setting` names what asked (e.g. "--precision"), `fix` what to do instead.
void RequirePrecision(Precision precision, const std::string& setting, const std::string& fix);

// C (m x n) = op(A) (m x k) * op(B) (k x n) + beta * C, row-major; A and B bf16, C and the accumulation fp32;
// beta 0 or 1. Only after RequireBf16 succeeded.
void GemmBf16(bool trans_a, bool trans_b, int m, int n, int k, const Bf16* a, int lda, const Bf16* b, int ldb,
              float beta, float* c, int ldc);

// oneDNN's OpenMP threads spin at every barrier by default, and when another process holds a core that spinning
// starves the thread doing the work: at load 10 on the 2 cores, bf16 training ran at 0.19-0.87x fp32 with the
// default policy and 2.2-3.6x with OMP_WAIT_POLICY=PASSIVE (docs/benchmarks.md). libgomp reads the policy once,
// when it is loaded, before main; so when OMP_WAIT_POLICY is unset this sets it to PASSIVE and re-executes the
// program (argv unchanged, PrepareRuntimeEnvironment). A policy the user set is kept. Returns whether it set it.
bool SetPassiveOpenMpWait();
// OMP_WAIT_POLICY as this process sees it ("" when unset), for bench's report.
std::string OpenMpWaitPolicy();

// How many OpenMP threads oneDNN's products use from now on (threads > 0; 0 keeps OpenMP's default, all cores):
// omp_set_num_threads in the OpenMP runtime oneDNN brought in. A primitive keeps the count it was made with, so
// this must come before the first bf16 product (SetBlasThreads calls it). Without oneDNN it does nothing.
void SetOpenMpThreads(int threads);
// OpenMP's thread count for the next parallel region (omp_get_max_threads), or 0 without oneDNN.
int OpenMpThreads();

// C (m x n) = A (m x k) op(B) (k x n) + beta C for a B that stays the same over many calls: a recurrent layer's
// w_h over the T steps of a sequence. sgemm repacks B into its kernel's layout at every call (the per-step products
// ran at 72-137 GFLOP/s against 165-197 for the big ones); Pack reorders B once into the layout oneDNN's matmul
// chose for this shape (weights format "any") and every Run reads that copy. The primitive and the packed buffer
// are made when Pack first sees a shape (once per layer in a run); later Packs only reorder. Row-major, beta 0
// or 1, A and C at the strides given to Pack. Only where oneDNN is available (bf16: after RequireBf16).
class PackedProduct {
 public:
  PackedProduct();
  ~PackedProduct();
  PackedProduct(PackedProduct&&) noexcept;
  PackedProduct& operator=(PackedProduct&&) noexcept;

  // bf16 inputs, fp32 accumulation and C.
  void PackBf16(bool trans_b, int m, int n, int k, const Bf16* b, int ldb, int lda, int ldc, float beta);
  void RunBf16(const Bf16* a, float* c);
  // fp32 throughout (oneDNN's sgemm-like kernels on packed weights).
  void PackFp32(bool trans_b, int m, int n, int k, const float* b, int ldb, int lda, int ldc, float beta);
  void RunFp32(const float* a, float* c);

  // The packed layout differs from plain row-major (oneDNN chose a blocked one): a test looks at it.
  bool reordered() const;

  struct State;  // oneDNN's objects, defined in bf16_gemm.cc only

 private:
  std::unique_ptr<State> state_;
};

// "oneDNN 2.6.3, avx512_core_bf16" (the version and the ISA its kernels dispatch to), or why there is none.
std::string OnednnDescription();

// One operand of a product: the fp32 matrix and, in bf16 precision, its bf16 mirror (same layout), else null.
template <typename T>
struct Operand {
  const T* fp32;
  const Bf16* bf16;
  int ld;
};

// C = op(A) op(B) + beta * C: GemmBf16 on the mirrors when A has one (then B must too), else exactly
// SplitGemm(threads, ..., alpha 1, ...) on the fp32 matrices.
template <typename T>
void Product(ColumnThreads* threads, bool trans_a, bool trans_b, int m, int n, int k, Operand<T> a, Operand<T> b,
             T beta, T* c, int ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (a.bf16 != nullptr) {
      assert(b.bf16 != nullptr);
      GemmBf16(trans_a, trans_b, m, n, k, a.bf16, a.ld, b.bf16, b.ld, beta, c, ldc);
      return;
    }
  }
  assert((b.bf16 == nullptr || !std::is_same_v<T, float>));
  SplitGemm<T>(threads, trans_a, trans_b, m, n, k, T(1), a.fp32, a.ld, b.fp32, b.ld, beta, c, ldc);
}

}  // namespace charlm
