// Persistent worker threads that split batch-1 work (a single-row product's output columns) between cores.
//
// At batch 1 (generation) every step is a few matrix-vector products that stream the weights from cache; one
// core cannot pull them in faster than its own cache bandwidth, two cores can pull in twice as much. The work is
// cut into chunks of output columns that the caller and the workers claim from one shared counter, so a worker
// that the OS has not scheduled costs nothing: the caller then simply runs every chunk itself. Each output column
// is computed by exactly the code and in exactly the order of the single-threaded GemvRow, so the results are
// bit-identical whatever the thread count or the chunking (tests/column_threads_test.cc).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

#include "model/blas.h"

namespace charlm {

class ColumnThreads {
 public:
  // threads <= 1: no worker is started and everything runs on the caller. Otherwise threads - 1 workers are
  // started here (never per call) and spin briefly between calls before they sleep.
  explicit ColumnThreads(int threads);
  ~ColumnThreads();
  ColumnThreads(const ColumnThreads&) = delete;
  ColumnThreads& operator=(const ColumnThreads&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // GemvRow's contract and bits: c (1 x n) = alpha * a (1 x k, stride a_stride) * b (k x n) + beta * c.
  void GemvRow(int n, int k, float alpha, const float* a, int a_stride, const float* b, int ldb, float beta,
               float* c);

  // From now on, keep a copy of each b that GemvRow splits, laid out chunk by chunk, and read that instead of b.
  // A chunk of b's columns is otherwise k short row segments a row stride apart, which two cores streaming at once
  // pulled in well below their cache bandwidth; packed, a chunk is one contiguous block. The arithmetic per output
  // column is unchanged, so are the bits. Only for weights that stay unchanged while this object is used (a
  // Generator's); a copy is made the first time b is seen, and never refreshed.
  void PackWeights() { pack_weights_ = true; }

  // GemmFewRows' contract and bits, its columns split over the threads in chunks of 16: each column is computed by
  // the same code in the same order whatever the chunking.
  void GemmFewRows(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                   float* c, int ldc);

  // Calls fn(context, begin, end) over disjoint ranges that cover [0, n), each begin a multiple of `align`,
  // on the caller and the workers. Returns when all have returned. fn must not call back into this object.
  using RangeFn = void (*)(const void* context, int begin, int end);
  void ParallelFor(int n, int align, RangeFn fn, const void* context);

 private:
  // state_ packs the job's sequence number (bits 32-63), its chunk count (16-31) and the next unclaimed chunk
  // (0-15), so a claim (one compare-exchange) can only succeed for the job it was read from.
  static constexpr std::uint64_t Pack(std::uint64_t seq, std::uint64_t chunks, std::uint64_t next) {
    return seq << 32 | chunks << 16 | next;
  }
  int RunChunks(std::uint64_t seq);  // claims and runs chunks of job `seq` until none is left; returns how many
  void WorkerLoop();

  // b's columns [first[i], first[i + 1]) as a dense k x (first[i + 1] - first[i]) block at data + k * first[i];
  // the chunk edges depend on where c starts in its cache line (lead, in floats).
  struct PackedWeights {
    const float* b;
    int lead, n, k, ldb;
    std::vector<int> first;
    std::vector<float> data;
  };
  const PackedWeights& Packed(int n, int k, const float* b, int ldb, int lead);

  bool pack_weights_ = false;
  std::vector<PackedWeights> packed_;  // a handful: one per product of a generation step
  std::vector<std::thread> workers_;
  // Caller only: jobs left to run without the workers; how many the next stall starts (column_threads.cc); the
  // current window's jobs, chunks and chunks workers ran.
  static constexpr int kMinStallSoloJobs = 64;
  int solo_jobs_ = 0, stall_solo_jobs_ = kMinStallSoloJobs, window_jobs_ = 0, window_chunks_ = 0, window_worker_chunks_ = 0;
  // Each counter the threads spin on or write has a cache line of its own.
  alignas(64) std::atomic<std::uint64_t> state_{0};
  // The job's fields, written by the caller before it publishes state_. Atomics (relaxed) because a worker that
  // was descheduled may read them while the next job is being written; its claim then fails and it runs nothing.
  std::atomic<RangeFn> fn_{nullptr};
  std::atomic<const void*> context_{nullptr};
  std::atomic<int> n_{0}, chunk_size_{0};
  alignas(64) std::atomic<int> done_{0};    // chunks of the current job finished
  alignas(64) std::atomic<std::uint32_t> wake_{0};  // bumped (and waited on) when workers sleep
  std::atomic<int> sleeping_{0};            // workers blocked in wake_.wait
  std::atomic<bool> stop_{false};
};

// c (m x n) = alpha * a (m x k) * b (k x n) + beta * c for a few rows (beam search's batch step): GemvRow per row
// over blocks of b's columns small enough to stay in L2 while every row uses them, so b comes from memory once
// per call. sgemm packs all of b on every call instead, which at 5 rows and the d2l sizes cost several times the
// arithmetic.
inline constexpr int kFewRows = 16;
inline void GemmFewRows(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                        float* c, int ldc) {
  const int block = std::max(16, (32768 / std::max(k, 1)) / 16 * 16);  // k x block floats: at most 128 KB
  for (int j0 = 0; j0 < n; j0 += block) {
    const int width = std::min(block, n - j0);
    for (int r = 0; r < m; ++r) {
      GemvRow(width, k, alpha, a + static_cast<std::size_t>(r) * lda, 1, b + j0, ldb, beta,
              c + static_cast<std::size_t>(r) * ldc + j0);
    }
  }
}

// Gemm, with its single-row float products (GemvRow) and its few-row ones (GemmFewRows) split over `threads`;
// threads null, or double: Gemm itself. Single rows give the same bits as Gemm.
template <typename T>
void SplitGemm(ColumnThreads* threads, bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
               const T* b, int ldb, T beta, T* c, int ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (threads != nullptr && m == 1 && n > 0 && !trans_b) {
      threads->GemvRow(n, k, alpha, a, trans_a ? lda : 1, b, ldb, beta, c);
      return;
    }
    if (threads != nullptr && m <= kFewRows && n > 0 && !trans_a && !trans_b) {
      threads->GemmFewRows(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
  Gemm<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace charlm
