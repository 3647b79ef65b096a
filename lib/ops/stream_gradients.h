// Squared gradients of each stream of a batch, summed: the gradient statistics of dynamic evaluation gathered over
// many streams side by side instead of one segment after another.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <vector>

#include "ops/column_threads.h"

namespace charlm {

// 8 doubles as one value (one AVX-512 register), loaded and stored through memcpy as FloatLanes are.
typedef double DoubleLanes __attribute__((vector_size(64), aligned(8), may_alias));
typedef float FloatHalfLanes __attribute__((vector_size(32), aligned(4), may_alias));

// sum_square[i, j] += (scale * sum over t < k of a_s[t, i] * b_s[t, j])^2 for every stream s < streams, in double;
// a_s (k x m) is a's rows t * lda + s * a_stream (kOnes: every element 1, which makes the sum b_s's column sums, m
// 1), b_s (k x n) is b's rows t * ldb + s * b_stream. In a batch of time-major streams stream s's row t is row
// t * B + s, so a weight gradient's share from one stream is such a product over its rows alone. Columns go in
// blocks whose b rows of every stream stay in L2 together, kRows rows of sum_square at a time share each load of
// b; each stream's sum is in float (as the gradient is), its square added in double.
template <bool kOnes, int kRows>
inline void AddStreamProductSquaresRows(int width, int k, int streams, float scale, const float* a, int lda,
                                        int a_stream, const float* b, int ldb, int b_stream, double* sum_square,
                                        int ldsq) {
  for (int s = 0; s < streams; ++s) {
    const float* a_s = kOnes ? nullptr : a + static_cast<std::size_t>(s) * a_stream;  // (k, kRows), stride lda
    const float* b_s = b + static_cast<std::size_t>(s) * b_stream;                    // (k, width), ldb
    const auto a_at = [&](int t, int r) { return kOnes ? 1.0f : a_s[static_cast<std::size_t>(t) * lda + r]; };
    const auto add_square = [&](int r, int j, float g) {
      g *= scale;
      sum_square[static_cast<std::size_t>(r) * ldsq + j] += static_cast<double>(g) * g;
    };
    int j = 0;
    for (; j + kFloatLanes <= width; j += kFloatLanes) {
      FloatLanes g[kRows];  // (kRows, 16): the stream's gradient at rows r, columns j .. j + 15
      for (int r = 0; r < kRows; ++r) g[r] = FloatLanes{};
      for (int t = 0; t < k; ++t) {
        FloatLanes bt;  // (16): b_s's row t
        std::memcpy(&bt, b_s + static_cast<std::size_t>(t) * ldb + j, sizeof(bt));
        for (int r = 0; r < kRows; ++r) g[r] += a_at(t, r) * bt;
      }
      for (int r = 0; r < kRows; ++r) {
        g[r] *= scale;
        double* square = sum_square + static_cast<std::size_t>(r) * ldsq + j;
        for (int half = 0; half < 2; ++half) {
          FloatHalfLanes part;
          std::memcpy(&part, reinterpret_cast<const float*>(&g[r]) + half * 8, sizeof(part));
          const DoubleLanes wide = __builtin_convertvector(part, DoubleLanes);
          DoubleLanes sum;
          std::memcpy(&sum, square + half * 8, sizeof(sum));
          sum += wide * wide;
          std::memcpy(square + half * 8, &sum, sizeof(sum));
        }
      }
    }
    for (; j < width; ++j) {
      for (int r = 0; r < kRows; ++r) {
        float g = 0.0f;
        for (int t = 0; t < k; ++t) g += a_at(t, r) * b_s[static_cast<std::size_t>(t) * ldb + j];
        add_square(r, j, g);
      }
    }
  }
}

template <bool kOnes>
inline void AddStreamProductSquaresImpl(int m, int n, int k, int streams, float scale, const float* a, int lda,
                                        int a_stream, const float* b, int ldb, int b_stream, double* sum_square,
                                        int ldsq) {
  constexpr int kBlock = 512;
  constexpr int kRows = 4;
  for (int j0 = 0; j0 < n; j0 += kBlock) {
    const int width = std::min(kBlock, n - j0);
    int i = 0;
    const auto at = [&](int row) { return sum_square + static_cast<std::size_t>(row) * ldsq + j0; };
    for (; i + kRows <= m; i += kRows) {
      AddStreamProductSquaresRows<kOnes, kRows>(width, k, streams, scale, kOnes ? nullptr : a + i, lda, a_stream,
                                                b + j0, ldb, b_stream, at(i), ldsq);
    }
    for (; i < m; ++i) {
      AddStreamProductSquaresRows<kOnes, 1>(width, k, streams, scale, kOnes ? nullptr : a + i, lda, a_stream, b + j0,
                                            ldb, b_stream, at(i), ldsq);
    }
  }
}

// The product form (a given) and the column-sum form (a null: a bias's gradient, m 1).
inline void AddStreamProductSquares(int m, int n, int k, int streams, float scale, const float* a, int lda,
                                    int a_stream, const float* b, int ldb, int b_stream, double* sum_square,
                                    int ldsq) {
  if (a == nullptr) {
    AddStreamProductSquaresImpl<true>(1, n, k, streams, scale, nullptr, 0, 0, b, ldb, b_stream, sum_square, ldsq);
  } else {
    AddStreamProductSquaresImpl<false>(m, n, k, streams, scale, a, lda, a_stream, b, ldb, b_stream, sum_square, ldsq);
  }
}

// The rows a table of one row per token gets from a stream: row tokens[t * streams + s] of the gradient is the sum
// of rows t of b_s (k x n, rows t * ldb + s * b_stream) over the steps t that read that token. Adds
// (scale * that row)^2 to sum_square's row of the token for every stream and every token it read. order: scratch
// of k ints; row: scratch of n floats.
inline void AddStreamScatterSquares(int n, int k, int streams, float scale, const int* tokens, const float* b, int ldb,
                                    int b_stream, double* sum_square, int ldsq, std::vector<int>& order,
                                    std::vector<float>& row) {
  order.resize(static_cast<std::size_t>(k));
  row.resize(static_cast<std::size_t>(n));
  for (int s = 0; s < streams; ++s) {
    const auto token_at = [&](int t) { return tokens[static_cast<std::size_t>(t) * streams + s]; };
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return token_at(x) < token_at(y); });
    for (int first = 0; first < k;) {
      const int token = token_at(order[static_cast<std::size_t>(first)]);
      std::fill(row.begin(), row.end(), 0.0f);
      int last = first;
      for (; last < k && token_at(order[static_cast<std::size_t>(last)]) == token; ++last) {
        const float* b_row = b + static_cast<std::size_t>(order[static_cast<std::size_t>(last)]) * ldb +
                             static_cast<std::size_t>(s) * b_stream;
        for (int j = 0; j < n; ++j) row[static_cast<std::size_t>(j)] += b_row[j];
      }
      double* square = sum_square + static_cast<std::size_t>(token) * ldsq;
      for (int j = 0; j < n; ++j) {
        const float g = scale * row[static_cast<std::size_t>(j)];
        square[j] += static_cast<double>(g) * g;
      }
      first = last;
    }
  }
}

}  // namespace charlm
