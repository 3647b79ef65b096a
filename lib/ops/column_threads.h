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
#include <cstring>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/blas.h"

namespace charlm {

// Below this many elementary operations (an element of a cell kernel, a softmax entry, a parameter's update)
// ParallelRanges runs on the caller: handing a range to a worker costs about a microsecond.
inline constexpr long kMinRangeSplitWork = 16 * 1024;

class ColumnThreads {
 public:
  // How an idle worker waits for the next job before it sleeps. kSpin: a pause loop (batch-1 generation, where
  // nothing else wants the cores between products). kYield: sched_yield in the loop, for training, where OpenBLAS's
  // own workers need the same cores between these jobs and a pausing spinner would hold a core they wait for.
  enum class IdleWait { kSpin, kYield };
  // threads <= 1: no worker is started and everything runs on the caller. Otherwise threads - 1 workers are
  // started here (never per call) and spin briefly between calls before they sleep.
  explicit ColumnThreads(int threads, IdleWait idle = IdleWait::kSpin);
  ~ColumnThreads();
  ColumnThreads(const ColumnThreads&) = delete;
  ColumnThreads& operator=(const ColumnThreads&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // ParallelRanges splits work of at least this size (kMinRangeSplitWork unless set; tests set 0 to split tiny
  // models).
  long min_range_work() const { return min_range_work_; }
  void set_min_range_work(long work) { min_range_work_ = work; }

  // GemvRow's contract and bits: c (1 x n) = alpha * a (1 x k, stride a_stride) * b (k x n) + beta * c.
  void GemvRow(int n, int k, float alpha, const float* a, int a_stride, const float* b, int ldb, float beta,
               float* c);

  // From now on, keep a copy of each b that GemvRow splits, laid out chunk by chunk, and read that instead of b.
  // A chunk of b's columns is otherwise k short row segments a row stride apart, which two cores streaming at once
  // pulled in well below their cache bandwidth; packed, a chunk is one contiguous block. The arithmetic per output
  // column is unchanged, so are the bits. Only for weights that stay unchanged while this object is used (a
  // Generator's); a copy is made the first time b is seen, and never refreshed. GemmFewRows then reads its b as
  // FewRowsPanels, made the same way.
  void PackWeights() { pack_weights_ = true; }

  // GemmFewRows' contract and bits, its columns split over the threads in chunks of 16: each column is computed by
  // the same code in the same order whatever the chunking or the packing.
  void GemmFewRows(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                   float* c, int ldc);
  // GemmFewRowsTransposedB's contract and bits, its columns split over the threads; GemmTransposedAShortK's, its
  // rows split. Each element is computed by the same code whatever the split. Products of fewer than
  // min_range_work() multiply-adds run on the caller.
  void GemmFewRowsTransposedB(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                              float beta, float* c, int ldc);
  void GemmTransposedAShortK(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                             float beta, float* c, int ldc);

  // Calls fn(context, begin, end) over disjoint ranges that cover [0, n), each begin a multiple of `align`,
  // on the caller and the workers. Returns when all have returned. fn must not call back into this object.
  using RangeFn = void (*)(const void* context, int begin, int end);
  // adaptive: the caller runs jobs alone for a while after workers fell behind (batch-1 generation's policy,
  // below); not adaptive: every job is offered to the workers (the caller still runs every chunk no worker took).
  void ParallelFor(int n, int align, RangeFn fn, const void* context, bool adaptive = true);

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

  // FewRowsPanels of b, for GemmFewRows.
  struct PanelWeights {
    const float* b;
    int n, k, ldb;
    std::vector<float> panels;
  };
  const float* Panels(int n, int k, const float* b, int ldb);

  bool pack_weights_ = false;
  bool yield_when_idle_ = false;
  long min_range_work_ = kMinRangeSplitWork;
  std::vector<PackedWeights> packed_;  // a handful: one per product of a generation step
  std::vector<PanelWeights> panels_;   // the same for beam search's few-row products
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

// fn(begin, end) over disjoint ranges that cover [0, n), each begin a multiple of `align`: split over `threads`
// when there are several and `work` (elementary operations in all) reaches threads->min_range_work(), else fn(0, n)
// on the caller.
// Every element is computed by the same code whichever thread runs it, so when fn's elements are independent of
// each other the bits do not depend on the split (tests/column_threads_test.cc, tests/train_threads_test.cc).
template <typename Fn>
void ParallelRanges(ColumnThreads* threads, int n, int align, long work, const Fn& fn) {
  if (threads == nullptr || threads->threads() <= 1 || work < threads->min_range_work() || n <= align) {
    fn(0, n);
    return;
  }
  threads->ParallelFor(
      n, align, [](const void* context, int begin, int end) { (*static_cast<const Fn*>(context))(begin, end); }, &fn,
      false);
}

// 16 floats as one value: GCC's vector extension, one AVX-512 register (two or four narrower ones elsewhere).
// aligned(4) lets it load from and store to any float address, may_alias from and to float arrays.
typedef float FloatLanes __attribute__((vector_size(64), aligned(4), may_alias));
inline constexpr int kFloatLanes = 16;

// One tile of GemmFewRows: kRows rows of c by kVectors x 16 columns, kept in registers while b's slice of
// k x (kVectors x 16) is read once for all of them. b's element (p, 16 v + j) is at b[p * b_row_stride +
// v * b_vector_stride + j]: b itself (ldb, 16) or its panels (16, 16 k, see FewRowsPanels). Every element gets
// exactly GemvRow's expression in GemvRow's order (beta first, then four rows of b per term, then the rest one at
// a time), so each row's bits are those of a batch-1 product (tests/column_threads_test.cc).
template <int kRows, int kVectors>
inline void FewRowsTile(int k, float alpha, const float* a, int lda, const float* b, int b_row_stride,
                        int b_vector_stride, float beta, float* c, int ldc) {
  FloatLanes acc[kRows][kVectors];  // (kRows, kVectors x 16): the tile of c being summed
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) {
      const FloatLanes c_in = *reinterpret_cast<const FloatLanes*>(c + static_cast<std::size_t>(r) * ldc + v * kFloatLanes);
      acc[r][v] = beta == 0.0f ? FloatLanes{} : beta == 1.0f ? c_in : c_in * beta;
    }
  }
  // Loads through memcpy (one unaligned vector load): a pointer to FloatLanes can lose the typedef's aligned(4)
  // when deduced, and returning the vector itself is an ABI warning (-Wpsabi) where AVX-512 is not enabled.
  auto b_at = [&](int p, int v) {
    return b + static_cast<std::size_t>(p) * b_row_stride + static_cast<std::size_t>(v) * b_vector_stride;
  };
  int p = 0;
  for (; p + 4 <= k; p += 4) {
    FloatLanes b0[kVectors], b1[kVectors], b2[kVectors], b3[kVectors];  // (kVectors x 16) each: b's rows p..p+3
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(&b0[v], b_at(p, v), sizeof(FloatLanes));
      std::memcpy(&b1[v], b_at(p + 1, v), sizeof(FloatLanes));
      std::memcpy(&b2[v], b_at(p + 2, v), sizeof(FloatLanes));
      std::memcpy(&b3[v], b_at(p + 3, v), sizeof(FloatLanes));
    }
    for (int r = 0; r < kRows; ++r) {
      const float* a_row = a + static_cast<std::size_t>(r) * lda + p;
      const float a0 = alpha * a_row[0], a1 = alpha * a_row[1], a2 = alpha * a_row[2], a3 = alpha * a_row[3];
      for (int v = 0; v < kVectors; ++v) acc[r][v] += a0 * b0[v] + a1 * b1[v] + a2 * b2[v] + a3 * b3[v];
    }
  }
  for (; p < k; ++p) {
    for (int r = 0; r < kRows; ++r) {
      const float ap = alpha * a[static_cast<std::size_t>(r) * lda + p];
      for (int v = 0; v < kVectors; ++v) {
        FloatLanes bp;  // (16): b's row p
        std::memcpy(&bp, b_at(p, v), sizeof(FloatLanes));
        acc[r][v] += ap * bp;
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) {
      *reinterpret_cast<FloatLanes*>(c + static_cast<std::size_t>(r) * ldc + v * kFloatLanes) = acc[r][v];
    }
  }
}

// b's columns [0, n / 16 x 16) as panels of 16 columns, panel q (k x 16) at q x 16 k, so that a tile of
// GemmFewRows reads contiguous streams instead of k pieces of 64 bytes a row of b apart, which the prefetcher
// serves badly once other programs share the cache (5 x 2583 x 256: 148-193 us against 211-317 us unpacked at
// load 7; 117 against 133 us on a quiet cache). The last n mod 16 columns are not packed.
inline std::vector<float> FewRowsPanels(int n, int k, const float* b, int ldb) {
  const int panels = n / kFloatLanes;
  std::vector<float> packed(static_cast<std::size_t>(panels) * kFloatLanes * k);  // (n / 16, k, 16)
  for (int q = 0; q < panels; ++q) {
    for (int p = 0; p < k; ++p) {
      std::copy_n(b + static_cast<std::size_t>(p) * ldb + q * kFloatLanes, kFloatLanes,
                  packed.data() + (static_cast<std::size_t>(q) * k + p) * kFloatLanes);
    }
  }
  return packed;
}

// kRows rows of c over the columns [0, n): full tiles of 32 columns, then one of 16, then GemvRow per row on the
// last n mod 16. panels: FewRowsPanels of this b (its columns from 0), or null to read b itself.
template <int kRows>
inline void FewRowsGroup(int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                         const float* panels, float beta, float* c, int ldc) {
  auto tile = [&]<int kVectors>(int j) {
    if (panels != nullptr) {
      FewRowsTile<kRows, kVectors>(k, alpha, a, lda, panels + static_cast<std::size_t>(j) * k, kFloatLanes,
                                   kFloatLanes * k, beta, c + j, ldc);
    } else {
      FewRowsTile<kRows, kVectors>(k, alpha, a, lda, b + j, ldb, kFloatLanes, beta, c + j, ldc);
    }
  };
  int j = 0;
  for (; j + 2 * kFloatLanes <= n; j += 2 * kFloatLanes) tile.template operator()<2>(j);
  if (j + kFloatLanes <= n) {
    tile.template operator()<1>(j);
    j += kFloatLanes;
  }
  if (j == n) return;
  for (int r = 0; r < kRows; ++r) {
    GemvRow(n - j, k, alpha, a + static_cast<std::size_t>(r) * lda, 1, b + j, ldb, beta,
            c + static_cast<std::size_t>(r) * ldc + j);
  }
}

// c (m x n) = alpha * a (m x k) * b (k x n) + beta * c for a few rows (beam search's batch step), bit-identical
// row by row to GemvRow. Up to six rows share each read of b while their sums stay in registers (tiles of 6 x 32:
// 12 vector registers of sums), so b is read once per call for beam 4's five rows and no sum goes back to memory
// between terms: 5 rows x 2583 x 256 took 117-133 us against 508 for GemvRow per row over L2-sized blocks (one
// core, AMD EPYC Zen 4). sgemm packs all of b on every call instead, which at these sizes costs more than the
// arithmetic (230 us). panels: FewRowsPanels(n, k, b, ldb), or null.
inline constexpr int kFewRows = 16;
inline void GemmFewRows(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                        float* c, int ldc, const float* panels = nullptr) {
  int r = 0;
  for (; r + 6 <= m; r += 6) {
    FewRowsGroup<6>(n, k, alpha, a + static_cast<std::size_t>(r) * lda, lda, b, ldb, panels, beta,
                    c + static_cast<std::size_t>(r) * ldc, ldc);
  }
  const float* a_rest = a + static_cast<std::size_t>(r) * lda;
  float* c_rest = c + static_cast<std::size_t>(r) * ldc;
  switch (m - r) {
    case 5: FewRowsGroup<5>(n, k, alpha, a_rest, lda, b, ldb, panels, beta, c_rest, ldc); break;
    case 4: FewRowsGroup<4>(n, k, alpha, a_rest, lda, b, ldb, panels, beta, c_rest, ldc); break;
    case 3: FewRowsGroup<3>(n, k, alpha, a_rest, lda, b, ldb, panels, beta, c_rest, ldc); break;
    case 2: FewRowsGroup<2>(n, k, alpha, a_rest, lda, b, ldb, panels, beta, c_rest, ldc); break;
    case 1: FewRowsGroup<1>(n, k, alpha, a_rest, lda, b, ldb, panels, beta, c_rest, ldc); break;
    default: break;
  }
}

// The 16 lanes of v added pairwise (8 sums of two, 4, 2, 1): a dot product's last step in GemmFewRowsTransposedB.
inline float LaneSum(const FloatLanes& v) {
  float lanes[kFloatLanes];  // (16)
  std::memcpy(lanes, &v, sizeof(lanes));
  for (int width = kFloatLanes / 2; width >= 1; width /= 2) {
    for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
  }
  return lanes[0];
}

// kRows rows of a against kCols rows of b: kRows x kCols sums in registers, b's rows read once for all the rows.
template <int kRows, int kCols>
inline void DotTile(int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
                    int ldc) {
  FloatLanes acc[kRows][kCols];  // (kRows, kCols) sums of 16 lanes each
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) acc[r][j] = FloatLanes{};
  }
  int p = 0;
  for (; p + kFloatLanes <= k; p += kFloatLanes) {
    FloatLanes bv[kCols];  // (kCols, 16): b's rows j, elements p .. p + 15
    for (int j = 0; j < kCols; ++j) std::memcpy(&bv[j], b + static_cast<std::size_t>(j) * ldb + p, sizeof(FloatLanes));
    for (int r = 0; r < kRows; ++r) {
      FloatLanes av;  // (16): a's row r, elements p .. p + 15
      std::memcpy(&av, a + static_cast<std::size_t>(r) * lda + p, sizeof(FloatLanes));
      for (int j = 0; j < kCols; ++j) acc[r][j] += av * bv[j];
    }
  }
  if (p < k) {  // the last k mod 16 elements, zero-padded to 16
    const std::size_t rest = static_cast<std::size_t>(k - p) * sizeof(float);
    FloatLanes bv[kCols];
    for (int j = 0; j < kCols; ++j) {
      bv[j] = FloatLanes{};
      std::memcpy(&bv[j], b + static_cast<std::size_t>(j) * ldb + p, rest);
    }
    for (int r = 0; r < kRows; ++r) {
      FloatLanes av{};
      std::memcpy(&av, a + static_cast<std::size_t>(r) * lda + p, rest);
      for (int j = 0; j < kCols; ++j) acc[r][j] += av * bv[j];
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) {
      float& out = c[static_cast<std::size_t>(r) * ldc + j];
      const float sum = alpha * LaneSum(acc[r][j]);
      out = beta == 0.0f ? sum : sum + beta * out;
    }
  }
}

// kRows rows of c over its columns [0, n), kCols at a time.
template <int kRows, int kCols>
inline void DotGroup(int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
                     int ldc) {
  int j = 0;
  for (; j + kCols <= n; j += kCols) {
    DotTile<kRows, kCols>(k, alpha, a, lda, b + static_cast<std::size_t>(j) * ldb, ldb, beta, c + j, ldc);
  }
  for (; j < n; ++j) DotTile<kRows, 1>(k, alpha, a, lda, b + static_cast<std::size_t>(j) * ldb, ldb, beta, c + j, ldc);
}

// c (m x n) = alpha * a (m x k) * b^T + beta * c, b (n x k) row-major, for a few rows of a: each element one dot
// product of a row of a with a row of b, summed over k in 16 lanes (the last k mod 16 zero-padded) and the lanes
// then added pairwise. The backward of a dynamic evaluation segment: da w_h^T at every step (one row), dL/dlogits
// w_out^T (a segment's rows). sgemm packed all of b on each call (a recurrent kernel of 4 MB once per character).
// Every element is computed by the same code whatever the tile it falls in, so its bits do not depend on m, on the
// tile widths or on a split of the columns. Groups of 8 rows (one column at a time: b is read once per 8 rows),
// then 4, 2 and 1 with 2, 4 and 8 columns at a time, so that there are always 8 independent sums in flight.
inline void GemmFewRowsTransposedB(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                                   float beta, float* c, int ldc) {
  int r = 0;
  const auto rows = [&](std::size_t row) { return std::pair{a + row * lda, c + row * ldc}; };
  for (; r + 8 <= m; r += 8) {
    const auto [a_r, c_r] = rows(static_cast<std::size_t>(r));
    DotGroup<8, 1>(n, k, alpha, a_r, lda, b, ldb, beta, c_r, ldc);
  }
  if (r + 4 <= m) {
    const auto [a_r, c_r] = rows(static_cast<std::size_t>(r));
    DotGroup<4, 2>(n, k, alpha, a_r, lda, b, ldb, beta, c_r, ldc);
    r += 4;
  }
  if (r + 2 <= m) {
    const auto [a_r, c_r] = rows(static_cast<std::size_t>(r));
    DotGroup<2, 4>(n, k, alpha, a_r, lda, b, ldb, beta, c_r, ldc);
    r += 2;
  }
  if (r < m) {
    const auto [a_r, c_r] = rows(static_cast<std::size_t>(r));
    DotGroup<1, 8>(n, k, alpha, a_r, lda, b, ldb, beta, c_r, ldc);
  }
}

// c (m x n) = alpha * a^T (a: k x m, row-major) * b (k x n) + beta * c for a short k (a segment's rows): row i of c
// is GemvRow over column i of a. A weight gradient of a segment, h^T (H x 10) dL/dgates (10 x 4H): sgemm packed
// both operands for 10 multiply-adds per output.
inline void GemmTransposedAShortK(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                                  float beta, float* c, int ldc) {
  for (int i = 0; i < m; ++i) GemvRow(n, k, alpha, a + i, lda, b, ldb, beta, c + static_cast<std::size_t>(i) * ldc);
}

// The depth (rows of a for a^T b) or the rows (of a for a b^T) up to which SplitGemm with threads runs the two
// kernels above: a dynamic evaluation segment's characters (5 to 20 in the paper).
inline constexpr int kSegmentRows = 32;

// Gemm, with its single-row float products (GemvRow) and its few-row ones (GemmFewRows, GemmFewRowsTransposedB,
// GemmTransposedAShortK) split over `threads`; threads null, or double: Gemm itself. Single rows without
// transposes give the same bits as Gemm; the transposed ones have their own (sgemm's depend on its kernel).
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
    if (threads != nullptr && m <= kSegmentRows && n > 0 && !trans_a && trans_b) {
      threads->GemmFewRowsTransposedB(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    if (threads != nullptr && k <= kSegmentRows && m > 0 && n > 0 && trans_a && !trans_b) {
      threads->GemmTransposedAShortK(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
  Gemm<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace charlm
