// Checks the batch-1 worker threads: the split product has GemvRow's exact bits, ranges cover once, 1 = no thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ops/column_threads.h"
#include "util/rng.h"

namespace charlm {
namespace {

// The process's thread count from /proc/self/status.
int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// Fills c from rng, runs the split product into it and GemvRow into a copy, and checks the bits are the same.
void CheckSplitMatchesGemvRow(ColumnThreads& threads, int n, int k, const std::vector<float>& a, int a_stride,
                              const std::vector<float>& b, int ldb, float beta, int c_offset, Rng& rng) {
  std::vector<float> c(static_cast<std::size_t>(n) + c_offset), ref(c.size());
  for (std::size_t j = 0; j < c.size(); ++j) c[j] = ref[j] = static_cast<float>(rng.Uniform(-1, 1));
  threads.GemvRow(n, k, 0.75f, a.data(), a_stride, b.data(), ldb, beta, c.data() + c_offset);
  GemvRow(n, k, 0.75f, a.data(), a_stride, b.data(), ldb, beta, ref.data() + c_offset);
  CHECK(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0);
}

// Whether the worker or the caller runs a chunk, it runs it through the same routine, so these cases check the
// chunked arithmetic even when the machine is too busy for the worker to take part.
TEST_CASE("column threads: the split single-row product is bit-identical to GemvRow") {
  Rng rng(11);
  ColumnThreads threads(2);
  REQUIRE(threads.threads() == 2);
  for (int n : {65, 1000, 1024, 2583, 4099}) {
    for (int k : {64, 130, 256}) {
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        for (int c_offset : {0, 3}) {  // c not on a cache-line boundary, as the workspace's buffers may be
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(beta);
          CAPTURE(c_offset);
          const int ldb = n + 5;
          std::vector<float> a(static_cast<std::size_t>(k) * 2), b(static_cast<std::size_t>(k) * ldb);
          for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
          CheckSplitMatchesGemvRow(threads, n, k, a, 2, b, ldb, beta, c_offset, rng);
        }
      }
    }
  }
}

// Beam search's rows go through GemmFewRows (register tiles of up to six rows); each row must keep the bits of
// a batch-1 product, so that beam search's greedy row is greedy decoding. Every group size (1-6 and 6 + rest),
// both tile widths, the GemvRow tail (n mod 16), k mod 4 and the three beta paths are covered, split and not,
// on b and on its panels (twice: the second call reads the kept panels).
TEST_CASE("column threads: the few-row product keeps GemvRow's bits in every row") {
  Rng rng(12);
  ColumnThreads threads(2);
  for (int m : {1, 2, 3, 4, 5, 6, 7, 11, 16}) {
    for (int n : {16, 47, 1024, 2583}) {
      for (int k : {3, 130, 256}) {
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(beta);
          const int lda = k + 1, ldb = n + 5, ldc = n + 3;
          std::vector<float> a(static_cast<std::size_t>(m) * lda), b(static_cast<std::size_t>(k) * ldb);
          std::vector<float> c(static_cast<std::size_t>(m) * ldc);
          for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : c) x = static_cast<float>(rng.Uniform(-1, 1));
          std::vector<float> ref = c, whole = c, split = c, packed = c;
          for (int r = 0; r < m; ++r) {
            GemvRow(n, k, 0.75f, a.data() + static_cast<std::size_t>(r) * lda, 1, b.data(), ldb, beta,
                    ref.data() + static_cast<std::size_t>(r) * ldc);
          }
          GemmFewRows(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, whole.data(), ldc);
          threads.GemmFewRows(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, split.data(), ldc);
          CHECK(std::memcmp(whole.data(), ref.data(), ref.size() * sizeof(float)) == 0);
          CHECK(std::memcmp(split.data(), ref.data(), ref.size() * sizeof(float)) == 0);
          ColumnThreads packing(2);
          packing.PackWeights();
          for (int call = 0; call < 2; ++call) {
            std::copy(c.begin(), c.end(), packed.begin());
            packing.GemmFewRows(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, packed.data(), ldc);
            CHECK(std::memcmp(packed.data(), ref.data(), ref.size() * sizeof(float)) == 0);
          }
        }
      }
    }
  }
}

// A dynamic evaluation segment's backward: b read transposed (one row: da w_h^T; a segment's rows: dL/dlogits
// w_out^T), and a weight gradient over a segment's rows (a^T b with a short k). Checked against the plain loops;
// each row's bits are those of the same row alone, and a split over threads keeps them.
TEST_CASE("column threads: the transposed few-row products match the plain loops and keep each row's bits") {
  Rng rng(13);
  ColumnThreads threads(2);
  threads.set_min_range_work(0);
  for (int m : {1, 2, 3, 5, 8, 10, 15, 20}) {
    for (int n : {1, 7, 64, 515}) {
      for (int k : {1, 10, 16, 37, 2048}) {
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(beta);
          const int lda = k + 3, ldb = k + 1, ldc = n + 2;
          std::vector<float> a(static_cast<std::size_t>(m) * lda), b(static_cast<std::size_t>(n) * ldb);
          std::vector<float> c(static_cast<std::size_t>(m) * ldc);
          for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : c) x = static_cast<float>(rng.Uniform(-1, 1));
          std::vector<float> naive = c, whole = c, split = c, by_row = c;
          NaiveGemm(false, true, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, naive.data(), ldc);
          GemmFewRowsTransposedB(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, whole.data(), ldc);
          threads.GemmFewRowsTransposedB(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, split.data(), ldc);
          for (int r = 0; r < m; ++r) {
            GemmFewRowsTransposedB(1, n, k, 0.75f, a.data() + static_cast<std::size_t>(r) * lda, lda, b.data(), ldb,
                                   beta, by_row.data() + static_cast<std::size_t>(r) * ldc, ldc);
          }
          for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(whole[i] == doctest::Approx(naive[i]).epsilon(1e-4));
          CHECK(std::memcmp(whole.data(), split.data(), c.size() * sizeof(float)) == 0);
          CHECK(std::memcmp(whole.data(), by_row.data(), c.size() * sizeof(float)) == 0);
        }
      }
    }
  }
  for (int m : {1, 2, 17, 512}) {
    for (int n : {1, 19, 2048}) {
      for (int k : {1, 4, 10, 32}) {
        for (float beta : {0.0f, 1.0f}) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(beta);
          const int lda = m + 3, ldb = n + 1, ldc = n + 2;
          std::vector<float> a(static_cast<std::size_t>(k) * lda), b(static_cast<std::size_t>(k) * ldb);
          std::vector<float> c(static_cast<std::size_t>(m) * ldc);
          for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
          for (auto& x : c) x = static_cast<float>(rng.Uniform(-1, 1));
          std::vector<float> naive = c, whole = c, split = c;
          NaiveGemm(true, false, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, naive.data(), ldc);
          GemmTransposedAShortK(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, whole.data(), ldc);
          threads.GemmTransposedAShortK(m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, split.data(), ldc);
          for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(whole[i] == doctest::Approx(naive[i]).epsilon(1e-4));
          CHECK(std::memcmp(whole.data(), split.data(), c.size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("column threads: with packed weights the split product keeps GemvRow's bits, call after call") {
  Rng rng(12);
  for (int count : {2, 3}) {
    ColumnThreads threads(count);
    threads.PackWeights();
    for (int n : {1000, 2583}) {
      for (int k : {64, 130}) {
        for (int c_offset : {0, 3}) {
          CAPTURE(count);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(c_offset);
          const int ldb = n + 5;
          std::vector<float> b(static_cast<std::size_t>(k) * ldb);
          for (auto& x : b) x = static_cast<float>(rng.Uniform(-1, 1));
          // The first call packs b; the later ones, with other inputs and betas, read the packed copy.
          for (float beta : {0.0f, 1.0f, 0.5f}) {
            CAPTURE(beta);
            std::vector<float> a(static_cast<std::size_t>(k));
            for (auto& x : a) x = static_cast<float>(rng.Uniform(-1, 1));
            CheckSplitMatchesGemvRow(threads, n, k, a, 1, b, ldb, beta, c_offset, rng);
          }
        }
      }
    }
  }
}

TEST_CASE("column threads: ParallelFor covers every index once, in aligned ranges") {
  for (int count : {1, 2, 3}) {
    ColumnThreads threads(count);
    for (int n : {1, 7, 64, 100, 2583}) {
      CAPTURE(count);
      CAPTURE(n);
      struct Context {
        std::vector<int> hits;
        bool aligned = true;
      } context;
      context.hits.assign(static_cast<std::size_t>(n), 0);
      threads.ParallelFor(
          n, 8,
          [](const void* p, int begin, int end) {
            auto& ctx = *static_cast<Context*>(const_cast<void*>(p));
            if (begin % 8 != 0) ctx.aligned = false;
            for (int j = begin; j < end; ++j) ++ctx.hits[static_cast<std::size_t>(j)];
          },
          &context);
      CHECK(context.aligned);
      CHECK(std::count(context.hits.begin(), context.hits.end(), 1) == n);
    }
  }
}

TEST_CASE("column threads: one thread starts no thread, two start one") {
  const int before = ThreadCount();
  REQUIRE(before > 0);
  {
    ColumnThreads one(1);
    CHECK(one.threads() == 1);
    CHECK(ThreadCount() == before);
  }
  {
    ColumnThreads two(2);
    CHECK(two.threads() == 2);
    CHECK(ThreadCount() == before + 1);
  }
  CHECK(ThreadCount() == before);
}

}  // namespace
}  // namespace charlm
