// Row-major GEMM over float (sgemm) and double (dgemm), with the naive loop kept beside it as the reference.
#pragma once

#include <cblas.h>

#include <cassert>
#include <cstddef>
#include <string>

namespace charlm {

// C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, all row-major.
template <typename T>
void Gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc);

// c (1 x n) = alpha * a (1 x k, element p at a[p * a_stride]) * b (k x n) + beta * c: the single-row case.
// OpenBLAS's sgemm packs all of b and wakes its threads even for one row, which at batch 1 (generation) cost
// several times the product itself. Four rows of b per pass keep c in registers/L1 and let GCC vectorize over j.
inline void GemvRow(int n, int k, float alpha, const float* a, int a_stride, const float* b, int ldb, float beta,
                    float* __restrict c) {
  if (beta == 0.0f) {
    for (int j = 0; j < n; ++j) c[j] = 0.0f;
  } else if (beta != 1.0f) {
    for (int j = 0; j < n; ++j) c[j] *= beta;
  }
  int p = 0;
  for (; p + 4 <= k; p += 4) {
    const float a0 = alpha * a[p * a_stride], a1 = alpha * a[(p + 1) * a_stride];
    const float a2 = alpha * a[(p + 2) * a_stride], a3 = alpha * a[(p + 3) * a_stride];
    const float* __restrict b0 = b + static_cast<std::size_t>(p) * ldb;
    const float* __restrict b1 = b0 + ldb;
    const float* __restrict b2 = b1 + ldb;
    const float* __restrict b3 = b2 + ldb;
    for (int j = 0; j < n; ++j) c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
  }
  for (; p < k; ++p) {
    const float ap = alpha * a[p * a_stride];
    const float* __restrict bp = b + static_cast<std::size_t>(p) * ldb;
    for (int j = 0; j < n; ++j) c[j] += ap * bp[j];
  }
}

template <>
inline void Gemm<float>(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                        const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (m == 1 && !trans_b) {
    GemvRow(n, k, alpha, a, trans_a ? lda : 1, b, ldb, beta, c);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
inline void Gemm<double>(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                         const double* b, int ldb, double beta, double* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

// The reference the BLAS path is tested against: the same contract, three plain loops.
template <typename T>
void NaiveGemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
               T beta, T* c, int ldc) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      T sum = 0;
      for (int p = 0; p < k; ++p) {
        const T av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += av * bv;
      }
      c[i * ldc + j] = alpha * sum + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
    }
  }
}

// Sets how many threads OpenBLAS and oneDNN's OpenMP runtime use (SetOpenMpThreads); 0 keeps their defaults
// (all cores). Under a memory limit (ulimit -v) it first checks that the limit leaves room for OpenBLAS's buffer
// of each thread (kBlasBufferBytes), where OpenBLAS itself would retry the mapping for ever (blas_memory_alloc
// spins at 100 % CPU and the command never ends): fewer threads, with a warning, when not all fit; UserError when
// not even the calling thread's fits. Then it maps the calling thread's buffer at once.
void SetBlasThreads(int threads);
// The buffer Debian's OpenBLAS 0.3.21 maps for each thread that runs a product (its BUFFER_SIZE, 32 << 22; seen
// as mmap(NULL, 134217728) under strace): address space a limit counts, though little of it is touched.
inline constexpr std::size_t kBlasBufferBytes = std::size_t{128} << 20;
int BlasThreads();

// The kernel table OpenBLAS runs ("Haswell", "SkylakeX", "Cooperlake", ...): chosen from the CPU at load time
// unless the environment variable OPENBLAS_CORETYPE names one.
std::string BlasCoreName();
// When charlm chose the kernel table (BetterBlasCore, PrepareRuntimeEnvironment): the one OpenBLAS had detected
// itself; else "".
std::string BlasCoreChosenOver();
// "SkylakeX kernels", with what charlm's choice replaced when it chose, for reports.
std::string BlasCoreDescription();

// The x86 features that decide which OpenBLAS kernel table fits (as the OS enables them, not only as cpuid lists).
struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;  // F, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
  bool avx512_bf16 = false;
};
CpuFeatures DetectCpuFeatures();

// A kernel table to ask OpenBLAS for instead of the one it detected, or "" to keep it. OpenBLAS 0.3.21 picks its
// table from cpuid's family and model, and falls back to generic SSE3 ("Prescott") on a model it does not know:
// on an Emerald Rapids Xeon (model 207) that made sgemm 22 GFLOP/s against SkylakeX's 120 and training 3x slower.
// Only that fallback is overridden, by the best table the features allow.
std::string BetterBlasCore(const std::string& detected, const CpuFeatures& cpu);

// Puts into the environment what OpenBLAS and OpenMP read only when they are loaded (OPENBLAS_CORETYPE from
// BetterBlasCore, OMP_WAIT_POLICY from NeedPassiveOpenMpWait, and under a memory limit OPENBLAS_NUM_THREADS=1, so
// that no OpenBLAS thread starts, and maps its buffer, before SetBlasThreads has checked the room for it; values
// the user set are kept) and, if that changed
// anything, re-executes the program once with argv unchanged. Call first thing in main; returns if it cannot exec.
void PrepareRuntimeEnvironment(char** argv);

}  // namespace charlm
