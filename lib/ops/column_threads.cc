// Persistent worker threads for batch-1 products: chunk claiming, spinning then sleeping workers.
#include "ops/column_threads.h"

#include <algorithm>
#include <chrono>

#include "ops/blas.h"

namespace charlm {
namespace {

// Chunks per thread and job. One: each chunk claim and hand-off costs more than the imbalance it evens out
// (paired runs with packed weights, d2l LSTM 2 threads: 25,300-29,300 chars/s at 1, 24,900-26,900 at 2,
// 21,900-22,800 at 3; char-rnn LSTM and d2l RNN equal at 1 and 2). A worker that starts late still loses its
// chunk to the caller, who claims from the same counter.
constexpr int kChunksPerThread = 1;
// Below this many multiply-adds a product is not split: waking a worker and claiming chunks costs about a
// microsecond, more than such a product takes.
constexpr long kMinSplitWork = 32 * 1024;
// A worker spins this long after its last job before it sleeps: a generation step's products are a few
// microseconds apart, and waking a sleeping thread costs several.
constexpr auto kSpinTime = std::chrono::microseconds(500);

// When the cores are shared with other processes the workers do not help and do harm: a worker that is off its
// core takes no chunk (the caller runs them all), and one preempted while it holds a chunk stalls the caller for a
// scheduler time slice; meanwhile its spinning takes CPU time from the caller's share. With load 3 on the 2 cores,
// two threads generated at half the speed of one, the worker having run 1 % of the chunks. So when the workers
// ran under a quarter of the chunks of the last kWindowJobs jobs, the caller runs the next kSoloJobs jobs alone
// (about a tenth of a second of generation; the idle workers go to sleep) before it tries them again.
//
// A single wait of kStallTime for a worker's chunk (a chunk takes at most tens of microseconds) is treated more
// gently: on an idle 2-core VM a worker holding a chunk was still descheduled for 0.2-2 ms about every 0.1 s
// (23 times in 4 s of d2l LSTM generation), and going solo for kSoloJobs after each of those kept generation on
// one thread most of the time. A stall starts kMinStallSoloJobs jobs alone, doubling with each stall up to
// kSoloJobs, back to the minimum once a window shows the workers keeping up.
constexpr int kWindowJobs = 256;
constexpr auto kStallTime = std::chrono::microseconds(200);
constexpr int kSoloJobs = 4096;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

struct GemvArgs {
  int lead;  // columns before c's first 64-byte boundary: chunk boundaries fall on cache lines of c
  int k;
  float alpha;
  const float* a;
  int a_stride;
  const float* b;
  int ldb;
  float beta;
  float* c;
};

struct PackedGemvArgs {
  const std::vector<int>* first;
  int k;
  float alpha;
  const float* a;
  int a_stride;
  const float* packed;
  float beta;
  float* c;
};

// Chunks [begin, end) of a packed b, one GemvRow each on its contiguous block.
void PackedGemvChunks(const void* context, int begin, int end) {
  const auto& g = *static_cast<const PackedGemvArgs*>(context);
  for (int i = begin; i < end; ++i) {
    const int from = (*g.first)[i], width = (*g.first)[i + 1] - from;
    GemvRow(width, g.k, g.alpha, g.a, g.a_stride, g.packed + static_cast<std::size_t>(g.k) * from, width, g.beta,
            g.c + from);
  }
}

void GemvChunk(const void* context, int begin, int end) {
  const auto& g = *static_cast<const GemvArgs*>(context);
  begin = std::max(begin - g.lead, 0);
  end -= g.lead;
  GemvRow(end - begin, g.k, g.alpha, g.a, g.a_stride, g.b + begin, g.ldb, g.beta, g.c + begin);
}

struct FewRowsArgs {
  int m, k;
  float alpha;
  const float* a;
  int lda;
  const float* b;
  int ldb;
  float beta;
  float* c;
  int ldc;
  const float* panels;  // FewRowsPanels of b, or null
  int n = 0;            // the transposed products' columns of c
};

// begin is a multiple of 16, so b's columns from begin are the panels from panel begin / 16 on.
void FewRowsChunk(const void* context, int begin, int end) {
  const auto& g = *static_cast<const FewRowsArgs*>(context);
  const float* panels = g.panels == nullptr ? nullptr : g.panels + static_cast<std::size_t>(begin) * g.k;
  GemmFewRows(g.m, end - begin, g.k, g.alpha, g.a, g.lda, g.b + begin, g.ldb, g.beta, g.c + begin, g.ldc, panels);
}

// Columns [begin, end) of c: rows [begin, end) of b.
void FewRowsTransposedBChunk(const void* context, int begin, int end) {
  const auto& g = *static_cast<const FewRowsArgs*>(context);
  GemmFewRowsTransposedB(g.m, end - begin, g.k, g.alpha, g.a, g.lda, g.b + static_cast<std::size_t>(begin) * g.ldb,
                         g.ldb, g.beta, g.c + begin, g.ldc);
}

// Rows [begin, end) of c: columns [begin, end) of a.
void TransposedAShortKChunk(const void* context, int begin, int end) {
  const auto& g = *static_cast<const FewRowsArgs*>(context);
  GemmTransposedAShortK(end - begin, g.n, g.k, g.alpha, g.a + begin, g.lda, g.b, g.ldb, g.beta,
                        g.c + static_cast<std::size_t>(begin) * g.ldc, g.ldc);
}

}  // namespace

void ColumnThreads::GemmFewRowsTransposedB(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                                           int ldb, float beta, float* c, int ldc) {
  if (static_cast<long>(m) * n * k < min_range_work_) {
    charlm::GemmFewRowsTransposedB(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const FewRowsArgs args{m, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, n};
  ParallelFor(n, kFloatLanes, FewRowsTransposedBChunk, &args);  // whole cache lines of c's rows per thread
}

void ColumnThreads::GemmTransposedAShortK(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                                          int ldb, float beta, float* c, int ldc) {
  if (static_cast<long>(m) * n * k < min_range_work_) {
    charlm::GemmTransposedAShortK(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const FewRowsArgs args{m, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, n};
  ParallelFor(m, 1, TransposedAShortKChunk, &args);
}

void ColumnThreads::GemmFewRows(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                                float beta, float* c, int ldc) {
  const float* panels = pack_weights_ ? Panels(n, k, b, ldb) : nullptr;
  const FewRowsArgs args{m, k, alpha, a, lda, b, ldb, beta, c, ldc, panels};
  ParallelFor(n, kFloatLanes, FewRowsChunk, &args);
}

const float* ColumnThreads::Panels(int n, int k, const float* b, int ldb) {
  for (const PanelWeights& p : panels_) {
    if (p.b == b && p.n == n && p.k == k && p.ldb == ldb) return p.panels.data();
  }
  return panels_.emplace_back(PanelWeights{b, n, k, ldb, FewRowsPanels(n, k, b, ldb)}).panels.data();
}

ColumnThreads::ColumnThreads(int threads, IdleWait idle) : yield_when_idle_(idle == IdleWait::kYield) {
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { WorkerLoop(); });
}

ColumnThreads::~ColumnThreads() {
  stop_.store(true);
  wake_.fetch_add(1);
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ColumnThreads::GemvRow(int n, int k, float alpha, const float* a, int a_stride, const float* b, int ldb,
                            float beta, float* c) {
  if (workers_.empty() || static_cast<long>(n) * k < kMinSplitWork) {
    charlm::GemvRow(n, k, alpha, a, a_stride, b, ldb, beta, c);
    return;
  }
  // Chunks are whole 64-byte lines of c (16 floats), counted from the line c starts in: GemvRow rewrites c once
  // per four rows of b, and a line shared by two threads would bounce between their caches every time.
  const int lead = static_cast<int>(reinterpret_cast<std::uintptr_t>(c) % 64 / sizeof(float));
  if (pack_weights_) {
    const PackedWeights& packed = Packed(n, k, b, ldb, lead);
    const PackedGemvArgs args{&packed.first, k, alpha, a, a_stride, packed.data.data(), beta, c};
    ParallelFor(static_cast<int>(packed.first.size()) - 1, 1, PackedGemvChunks, &args);
    return;
  }
  const GemvArgs args{lead, k, alpha, a, a_stride, b, ldb, beta, c};
  ParallelFor(n + lead, 16, GemvChunk, &args);
}

const ColumnThreads::PackedWeights& ColumnThreads::Packed(int n, int k, const float* b, int ldb, int lead) {
  for (const PackedWeights& p : packed_) {
    if (p.b == b && p.lead == lead && p.n == n && p.k == k && p.ldb == ldb) return p;
  }
  // The chunks ParallelFor would cut for this product: whole 64-byte lines of c, as many as it wants.
  const int blocks = (n + lead + 15) / 16;
  const int wanted = std::min(blocks, threads() * kChunksPerThread);
  const int chunk_size = (blocks + wanted - 1) / wanted * 16;
  PackedWeights& p = packed_.emplace_back();
  p.b = b;
  p.lead = lead;
  p.n = n;
  p.k = k;
  p.ldb = ldb;
  for (int edge = 0; edge < n + lead; edge += chunk_size) p.first.push_back(std::max(edge - lead, 0));
  p.first.push_back(n);
  p.data.resize(static_cast<std::size_t>(k) * n);
  for (std::size_t i = 0; i + 1 < p.first.size(); ++i) {
    const int from = p.first[i], width = p.first[i + 1] - from;
    float* block = p.data.data() + static_cast<std::size_t>(k) * from;
    for (int row = 0; row < k; ++row) {
      std::copy_n(b + static_cast<std::size_t>(row) * ldb + from, width, block + static_cast<std::size_t>(row) * width);
    }
  }
  return p;
}

void ColumnThreads::ParallelFor(int n, int align, RangeFn fn, const void* context, bool adaptive) {
  const int blocks = (n + align - 1) / align;
  const int wanted = std::min(blocks, threads() * kChunksPerThread);
  if (adaptive && solo_jobs_ > 0) --solo_jobs_;
  if (workers_.empty() || wanted <= 1 || (adaptive && solo_jobs_ > 0)) {
    fn(context, 0, n);
    return;
  }
  const int chunk_size = (blocks + wanted - 1) / wanted * align;
  const int chunks = (n + chunk_size - 1) / chunk_size;
  fn_.store(fn, std::memory_order_relaxed);
  context_.store(context, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  chunk_size_.store(chunk_size, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const auto seq = static_cast<std::uint32_t>((state_.load(std::memory_order_relaxed) >> 32) + 1);
  // seq_cst store then seq_cst load, against the worker's increment of sleeping_ then load of state_: either the
  // worker sees this job before it sleeps, or this sees the sleeper and wakes it.
  state_.store(Pack(seq, static_cast<std::uint64_t>(chunks), 0));
  if (sleeping_.load() > 0) {
    wake_.fetch_add(1);
    wake_.notify_all();
  }
  const int mine = RunChunks(seq);
  if (!adaptive) {  // no stall accounting: wait for the chunks a worker holds
    while (done_.load(std::memory_order_acquire) < chunks) CpuRelax();
    return;
  }
  window_chunks_ += chunks;
  window_worker_chunks_ += chunks - mine;
  if (++window_jobs_ == kWindowJobs) {
    // Fewer than a quarter of the chunks, where a worker on its own core takes about half of them.
    if (4 * window_worker_chunks_ < window_chunks_) {
      solo_jobs_ = kSoloJobs;
    } else {
      stall_solo_jobs_ = kMinStallSoloJobs;
    }
    window_jobs_ = window_chunks_ = window_worker_chunks_ = 0;
  }
  if (mine == chunks) return;
  const auto wait_start = std::chrono::steady_clock::now();
  bool stalled = false;
  for (int spins = 1; done_.load(std::memory_order_acquire) < chunks; ++spins) {
    CpuRelax();
    if (spins % 256 == 0 && std::chrono::steady_clock::now() - wait_start > kStallTime) {
      stalled = true;
      std::this_thread::yield();
    }
  }
  if (stalled) {
    solo_jobs_ = stall_solo_jobs_;
    stall_solo_jobs_ = std::min(2 * stall_solo_jobs_, kSoloJobs);
    window_jobs_ = window_chunks_ = window_worker_chunks_ = 0;
  }
}

int ColumnThreads::RunChunks(std::uint64_t seq) {
  int ran = 0;
  std::uint64_t current = state_.load(std::memory_order_acquire);
  for (;; ++ran) {
    const std::uint64_t chunks = (current >> 16) & 0xffff, next = current & 0xffff;
    if ((current >> 32) != seq || next >= chunks) return ran;
    if (!state_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      --ran;
      continue;
    }
    // The fields are those of `seq`: the caller rewrites them only after every chunk of `seq`, this one included,
    // has been counted in done_.
    const int chunk_size = chunk_size_.load(std::memory_order_relaxed);
    const int begin = static_cast<int>(next) * chunk_size;
    const int end = std::min(n_.load(std::memory_order_relaxed), begin + chunk_size);
    fn_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), begin, end);
    done_.fetch_add(1, std::memory_order_release);
    current = state_.load(std::memory_order_acquire);
  }
}

void ColumnThreads::WorkerLoop() {
  std::uint64_t seen = 0;
  for (;;) {
    std::uint64_t current = state_.load(std::memory_order_acquire);
    auto idle_since = std::chrono::steady_clock::now();
    for (int spins = 1; (current >> 32) == seen; ++spins) {
      if (stop_.load(std::memory_order_acquire)) return;
      if (yield_when_idle_) {
        std::this_thread::yield();
      } else {
        CpuRelax();
      }
      if (spins % 256 == 0 && std::chrono::steady_clock::now() - idle_since > kSpinTime) {
        const std::uint32_t ticket = wake_.load();
        sleeping_.fetch_add(1);
        if ((state_.load() >> 32) == seen && !stop_.load()) wake_.wait(ticket);
        sleeping_.fetch_sub(1);
        idle_since = std::chrono::steady_clock::now();
      }
      current = state_.load(std::memory_order_acquire);
    }
    seen = current >> 32;
    RunChunks(seen);
  }
}

}  // namespace charlm
