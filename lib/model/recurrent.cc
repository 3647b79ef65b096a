// Forward and backward passes of the recurrent layers over whole sequences (see recurrent.h for the math).
#include "model/recurrent.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <type_traits>

#include "ops/blas.h"
#include "ops/column_threads.h"
#include "ops/vecmath.h"

namespace charlm {
namespace {

// The per-step elementwise kernels below take one sequence's row of each buffer through separate restrict
// pointers (one per gate), so GCC vectorizes them over j with the inline float nonlinearities of vecmath.h.
// Biases are added here rather than copied into every row before the GEMMs: one pass over memory instead of two.

// LSTM, one row: pre-activations (x w_x + h~ w_h, no bias) in, gate activations out in place; c and h updated.
template <typename T>
void LstmCellForward(int h, const T* __restrict bias, T* __restrict i_gate, T* __restrict f_gate,
                     T* __restrict g_gate, T* __restrict o_gate, const T* __restrict c_prev, T* __restrict c_out,
                     T* __restrict tanh_c, T* __restrict h_out) {
  for (int j = 0; j < h; ++j) {
    const T i = Sigmoid(i_gate[j] + bias[j]), f = Sigmoid(f_gate[j] + bias[h + j]);
    const T g = Tanh(g_gate[j] + bias[2 * h + j]), o = Sigmoid(o_gate[j] + bias[3 * h + j]);
    i_gate[j] = i;
    f_gate[j] = f;
    g_gate[j] = g;
    o_gate[j] = o;
    const T c = f * c_prev[j] + i * g;
    const T tc = Tanh(c);
    c_out[j] = c;
    tanh_c[j] = tc;
    h_out[j] = o * tc;
  }
}

// LSTM, one row, the reverse of LstmCellForward: gate activations and tanh(c) in; gradients at the four
// pre-activations out; dc_next goes from dL/dc_t to dL/dc_{t-1}.
template <typename T>
void LstmCellBackward(int h, const T* __restrict i_gate, const T* __restrict f_gate, const T* __restrict g_gate,
                      const T* __restrict o_gate, const T* __restrict c_prev, const T* __restrict tanh_c,
                      const T* __restrict dh, T* __restrict dc_next, T* __restrict d_i, T* __restrict d_f,
                      T* __restrict d_g, T* __restrict d_o) {
  for (int j = 0; j < h; ++j) {
    const T i = i_gate[j], f = f_gate[j], g = g_gate[j], o = o_gate[j], tc = tanh_c[j];
    const T dc = dc_next[j] + dh[j] * o * (T(1) - tc * tc);
    d_i[j] = dc * g * i * (T(1) - i);
    d_f[j] = dc * c_prev[j] * f * (T(1) - f);
    d_g[j] = dc * i * (T(1) - g * g);
    d_o[j] = dh[j] * tc * o * (T(1) - o);
    dc_next[j] = dc * f;
  }
}

// GRU reset_after, one row: a = x w_x (no bias) and q = h~ w_h (no b_h) in; r, z, n out in place of a;
// q_n + b_h[n] kept for the backward pass.
template <typename T>
void GruAfterCellForward(int h, const T* __restrict bias, const T* __restrict rec_bias, T* __restrict r_gate,
                         T* __restrict z_gate, T* __restrict n_gate, const T* __restrict q_r, const T* __restrict q_z,
                         const T* __restrict q_n, const T* __restrict h_prev, T* __restrict q_n_out,
                         T* __restrict h_out) {
  for (int j = 0; j < h; ++j) {
    const T r = Sigmoid(r_gate[j] + bias[j] + q_r[j] + rec_bias[j]);
    const T z = Sigmoid(z_gate[j] + bias[h + j] + q_z[j] + rec_bias[h + j]);
    const T qn = q_n[j] + rec_bias[2 * h + j];
    const T n = Tanh(n_gate[j] + bias[2 * h + j] + r * qn);
    r_gate[j] = r;
    z_gate[j] = z;
    n_gate[j] = n;
    q_n_out[j] = qn;
    h_out[j] = (T(1) - z) * n + z * h_prev[j];
  }
}

// GRU reset_after, one row, the reverse of GruAfterCellForward: gradients at the input-path pre-activations
// (d_r, d_z, d_n) and at the recurrent-path ones q (dq_r, dq_z, dq_n).
template <typename T>
void GruAfterCellBackward(int h, const T* __restrict r_gate, const T* __restrict z_gate, const T* __restrict n_gate,
                          const T* __restrict q_n, const T* __restrict h_prev, const T* __restrict dh,
                          T* __restrict d_r, T* __restrict d_z, T* __restrict d_n, T* __restrict dq_r,
                          T* __restrict dq_z, T* __restrict dq_n) {
  for (int j = 0; j < h; ++j) {
    const T r = r_gate[j], z = z_gate[j], n = n_gate[j];
    const T dn_pre = dh[j] * (T(1) - z) * (T(1) - n * n);
    const T dr_pre = dn_pre * q_n[j] * r * (T(1) - r);
    const T dz_pre = dh[j] * (h_prev[j] - n) * z * (T(1) - z);
    d_r[j] = dr_pre;
    d_z[j] = dz_pre;
    d_n[j] = dn_pre;
    dq_r[j] = dr_pre;
    dq_z[j] = dz_pre;
    dq_n[j] = dn_pre * r;
  }
}

// out[j] += sum over rows of m (rows, cols).
template <typename T>
void AddColumnSums(const T* m, int rows, int cols, int ld, T* out) {
  for (int r = 0; r < rows; ++r) {
    const T* row = m + static_cast<std::size_t>(r) * ld;
    for (int j = 0; j < cols; ++j) out[j] += row[j];
  }
}

}  // namespace

template <typename T>
RecurrentLayer<T>::RecurrentLayer(const RecurrentShape& shape, int max_steps, int max_batch, Precision precision)
    : shape_(shape),
      max_steps_(max_steps),
      max_batch_(max_batch),
      bf16_(precision == Precision::kBf16),
      fp32_packed_(precision == Precision::kFp32Packed) {
  assert(shape.input_size > 0 && shape.hidden_size > 0 && max_steps > 0 && max_batch > 0);
  assert((!bf16_ || std::is_same_v<T, float>));
  assert((!fp32_packed_ || std::is_same_v<T, float>));
  const std::size_t tb = static_cast<std::size_t>(max_steps) * max_batch;
  const std::size_t h = H(), g = G(), b = max_batch;
  gates_.resize(tb * g);
  d_gates_.resize(tb * g);
  h_seq_.resize((tb + b) * h);
  h_masked_.resize(tb * h);
  if (shape.has_cell_state()) {
    c_seq_.resize((tb + b) * h);
    tanh_c_.resize(tb * h);
  }
  if (shape.cell == CellKind::kGru) aux_.resize(tb * h);
  if (shape.has_recurrent_bias()) d_rec_.resize(tb * g);
  step_rec_.resize(b * g);
  d_h_next_.resize(b * h);
  d_c_next_.resize(b * h);
  d_step_.resize(b * h);
  if (bf16_) {
    x_bf16_.resize(tb * shape.input_size);
    h_in_bf16_.resize(tb * h);
    if (shape.cell == CellKind::kGru && !shape.reset_after) aux_bf16_.resize(tb * h);
    d_gates_bf16_.resize(tb * g);
    if (shape.has_recurrent_bias()) d_rec_bf16_.resize(tb * g);
  }
}

template <typename T>
void RecurrentLayer<T>::Round(const T* src, std::size_t n, std::vector<Bf16>& buffer, std::size_t offset) {
  if constexpr (std::is_same_v<T, float>) {
    assert(bf16_ && offset + n <= buffer.size());
    ConvertToBf16(src, n, buffer.data() + offset);
  }
}

template <typename T>
void RecurrentLayer<T>::PackStepWeights(const RecurrentParams<T>& params, bool backward) {
  if constexpr (std::is_same_v<T, float>) {
    // One step (generation's batch-1 Forward) would pack w_h for a single product: Product reads it as it is.
    step_weights_packed_ = (bf16_ || fp32_packed_) && steps_ > 1;
    if (!step_weights_packed_) return;
    const int B = batch_, h = H(), g = G();
    assert(bf16_ ? params.w_h_bf16 != nullptr : params.w_h != nullptr);
    // Packs columns [first, first + n) of w_h (H, gH), or its transpose, for the products of this sequence.
    const auto pack = [&](int slot, bool trans_b, int n, int k, int first, int lda, int ldc, float beta) {
      if (bf16_) {
        packed_[slot].PackBf16(trans_b, B, n, k, params.w_h_bf16 + first, g, lda, ldc, beta);
      } else {
        packed_[slot].PackFp32(trans_b, B, n, k, params.w_h + first, g, lda, ldc, beta);
      }
    };
    const bool gru_before = shape_.cell == CellKind::kGru && !shape_.reset_after;
    if (!backward) {  // a (B, gH) += h~ w_h; GRU: rec (B, gH) = h~ w_h[:, :2H] and then (r*h~) w_h[:, 2H:]
      if (!gru_before) {
        pack(0, false, g, h, 0, h, g, shape_.cell == CellKind::kGru ? 0.0f : 1.0f);
      } else {
        pack(0, false, 2 * h, h, 0, h, g, 0.0f);
        pack(1, false, h, h, 2 * h, h, g, 0.0f);
      }
    } else {  // d_next (B, H) = da w_h^T; GRU before: dq = da_n w_h[:, 2H:]^T, then d_next += da[:, :2H] w_h[:, :2H]^T
      if (!gru_before) {
        pack(0, true, h, g, 0, g, h, 0.0f);
      } else {
        pack(0, true, h, h, 2 * h, g, h, 0.0f);
        pack(1, true, h, 2 * h, 0, g, h, 1.0f);
      }
    }
  } else {
    (void)params;
    (void)backward;
  }
}

template <typename T>
void RecurrentLayer<T>::StepProduct(int slot, ColumnThreads* threads, bool trans_b, int n, int k, Operand<T> a,
                                    Operand<T> w, T beta, T* c, int ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (step_weights_packed_) {
      if (bf16_) {
        packed_[slot].RunBf16(a.bf16, c);
      } else {
        packed_[slot].RunFp32(a.fp32, c);
      }
      return;
    }
  }
  Product<T>(threads, false, trans_b, batch_, n, k, a, w, beta, c, ldc);
}

// gates_ = x w_x for all steps at once (the bias is added later, in the step kernels).
template <typename T>
void RecurrentLayer<T>::ProjectInput(const RecurrentInput<T>& input, const RecurrentParams<T>& params) {
  const int rows = steps_ * batch_, g = G();
  if (input.projected != nullptr) {
    std::copy(input.projected, input.projected + static_cast<std::size_t>(rows) * g, gates_.begin());
    return;
  }
  if (input.dense != nullptr) {
    const int in = shape_.input_size;
    if (bf16_) Round(input.dense, static_cast<std::size_t>(rows) * in, x_bf16_, 0);
    Product<T>(threads_, false, false, rows, g, in, {input.dense, Mirror(x_bf16_, 0), in}, {params.w_x, params.w_x_bf16, g},
               T(0), gates_.data(), g);
    return;
  }
  assert(input.tokens != nullptr);
  for (int r = 0; r < rows; ++r) {
    const int token = input.tokens[r];
    assert(token >= 0 && token < shape_.input_size);
    const T scale = input.token_scale != nullptr ? input.token_scale[r] : T(1);
    const T* w_row = params.w_x + static_cast<std::size_t>(token) * g;
    T* out = gates_.data() + static_cast<std::size_t>(r) * g;
    for (int j = 0; j < g; ++j) out[j] = scale * w_row[j];
  }
}

template <typename T>
void RecurrentLayer<T>::Forward(const RecurrentInput<T>& input, int steps, int batch,
                                const RecurrentParams<T>& params, const T* recurrent_mask, const T* h0, const T* c0,
                                T* h_final, T* c_final) {
  assert(steps > 0 && steps <= max_steps_ && batch > 0 && batch <= max_batch_);
  steps_ = steps;
  batch_ = batch;
  recurrent_mask_ = recurrent_mask;
  const std::size_t bh = static_cast<std::size_t>(batch) * H();
  std::copy(h0, h0 + bh, h_seq_.begin());
  if (shape_.has_cell_state()) std::copy(c0, c0 + bh, c_seq_.begin());
  ProjectInput(input, params);
  ForwardSteps(params);
  const std::size_t last = static_cast<std::size_t>(steps) * bh;
  std::copy(h_seq_.begin() + last, h_seq_.begin() + last + bh, h_final);
  if (shape_.has_cell_state()) std::copy(c_seq_.begin() + last, c_seq_.begin() + last + bh, c_final);
}

template <typename T>
void RecurrentLayer<T>::ForwardSteps(const RecurrentParams<T>& params) {
  const int B = batch_, h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(B) * h, bg = static_cast<std::size_t>(B) * g;
  double* cell_time = phase_times_ != nullptr ? &phase_times_->cell_forward : nullptr;
  // row_kernel(b) for every sequence b of the batch, split by rows over row_threads_ (each row's code and order
  // unchanged, so its bits too).
  auto for_rows = [&](const auto& row_kernel) {
    PhaseTimer timer(cell_time);
    ParallelRanges(row_threads_, B, 1, static_cast<long>(bg), [&](int begin, int end) {
      for (int b = begin; b < end; ++b) row_kernel(b);
    });
  };
  PackStepWeights(params, false);
  for (int t = 0; t < steps_; ++t) {
    const T* h_prev = h_seq_.data() + t * bh;  // (B, H)
    T* h_out = h_seq_.data() + (t + 1) * bh;   // (B, H)
    const T* h_in = h_prev;                    // (B, H): h~_{t-1}
    {
      PhaseTimer timer(cell_time);
      if (recurrent_mask_ != nullptr) {
        T* masked = h_masked_.data() + t * bh;
        for (std::size_t k = 0; k < bh; ++k) masked[k] = h_prev[k] * recurrent_mask_[k];
        h_in = masked;
      }
      if (bf16_) Round(h_in, bh, h_in_bf16_, t * bh);
    }
    const Operand<T> h_in_op{h_in, Mirror(h_in_bf16_, t * bh), h};  // (B, H)
    const Operand<T> w_h{params.w_h, params.w_h_bf16, g};            // (H, gH)
    T* a = gates_.data() + t * bg;  // (B, gH): x_t w_x, bias not yet added
    switch (shape_.cell) {
      case CellKind::kRnn: {
        StepProduct(0, threads_, false, g, h, h_in_op, w_h, T(1), a, g);
        const bool relu = shape_.activation == Activation::kRelu;
        for_rows([&](int b) {
          const T* ab = a + static_cast<std::size_t>(b) * g;
          T* hb = h_out + static_cast<std::size_t>(b) * h;
          if (relu) {
            for (int j = 0; j < h; ++j) hb[j] = std::max(ab[j] + params.b[j], T(0));
          } else {
            for (int j = 0; j < h; ++j) hb[j] = Tanh(ab[j] + params.b[j]);
          }
        });
        break;
      }
      case CellKind::kLstm: {
        StepProduct(0, threads_, false, g, h, h_in_op, w_h, T(1), a, g);
        for_rows([&](int b) {
          T* ab = a + static_cast<std::size_t>(b) * g;
          const std::size_t k = static_cast<std::size_t>(b) * h;
          LstmCellForward(h, params.b, ab, ab + h, ab + 2 * h, ab + 3 * h, c_seq_.data() + t * bh + k,
                          c_seq_.data() + (t + 1) * bh + k, tanh_c_.data() + t * bh + k, h_out + k);
        });
        break;
      }
      case CellKind::kGru: {
        T* rec = step_rec_.data();      // (B, gH)
        T* aux = aux_.data() + t * bh;  // (B, H)
        if (shape_.reset_after) {
          StepProduct(0, threads_, false, g, h, h_in_op, w_h, T(0), rec, g);
          for_rows([&](int b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            const std::size_t k = static_cast<std::size_t>(b) * h;
            GruAfterCellForward(h, params.b, params.b_h, ab, ab + h, ab + 2 * h, qb, qb + h, qb + 2 * h, h_prev + k,
                                aux + k, h_out + k);
          });
        } else {
          StepProduct(0, threads_, false, 2 * h, h, h_in_op, w_h, T(0), rec, g);
          for_rows([&](int b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            const std::size_t k = static_cast<std::size_t>(b) * h;
            for (int j = 0; j < h; ++j) {
              ab[j] = Sigmoid(ab[j] + params.b[j] + qb[j]);
              ab[h + j] = Sigmoid(ab[h + j] + params.b[h + j] + qb[h + j]);
              aux[k + j] = ab[j] * h_in[k + j];
            }
          });
          if (bf16_) {
            PhaseTimer timer(cell_time);
            Round(aux, bh, aux_bf16_, t * bh);
          }
          const Operand<T> w_h_n{params.w_h + 2 * h, bf16_ ? params.w_h_bf16 + 2 * h : nullptr, g};  // (H, H) of (H, gH)
          StepProduct(1, threads_, false, h, h, {aux, Mirror(aux_bf16_, t * bh), h}, w_h_n, T(0), rec + 2 * h, g);
          for_rows([&](int b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            const std::size_t k = static_cast<std::size_t>(b) * h;
            for (int j = 0; j < h; ++j) {
              const T z = ab[h + j];
              const T n = Tanh(ab[2 * h + j] + params.b[2 * h + j] + qb[2 * h + j]);
              ab[2 * h + j] = n;
              h_out[k + j] = (T(1) - z) * n + z * h_prev[k + j];
            }
          });
        }
        break;
      }
    }
  }
}

template <typename T>
void RecurrentLayer<T>::Backward(const RecurrentInput<T>& input, const RecurrentParams<T>& params,
                                 const T* d_hidden, RecurrentGrads<T> grads, T* d_input, T* d_h0, T* d_c0,
                                 BackwardListener* listener) {
  const int rows = steps_ * batch_, h = H(), g = G(), in = shape_.input_size;
  BackwardSteps(params, d_hidden, listener);

  // Weight gradients as GEMMs over all time steps at once.
  // (Products with null threads are exactly Gemm in fp32.)
  const Operand<T> h_in_seq{recurrent_mask_ != nullptr ? h_masked_.data() : h_seq_.data(), Mirror(h_in_bf16_, 0),
                            h};                                            // (T*B, H): h~_{t-1}
  const Operand<T> d_gates{d_gates_.data(), Mirror(d_gates_bf16_, 0), g};  // (T*B, gH)
  if (shape_.cell == CellKind::kGru && !shape_.reset_after) {
    Product<T>(nullptr, true, false, h, 2 * h, rows, h_in_seq, d_gates, T(1), grads.w_h, g);
    const Operand<T> d_gates_n{d_gates_.data() + 2 * h, bf16_ ? d_gates_bf16_.data() + 2 * h : nullptr, g};
    Product<T>(nullptr, true, false, h, h, rows, {aux_.data(), Mirror(aux_bf16_, 0), h}, d_gates_n, T(1),
               grads.w_h + 2 * h, g);
  } else {
    const Operand<T> d_rec = shape_.has_recurrent_bias() ? Operand<T>{d_rec_.data(), Mirror(d_rec_bf16_, 0), g} : d_gates;
    Product<T>(nullptr, true, false, h, g, rows, h_in_seq, d_rec, T(1), grads.w_h, g);
    if (shape_.has_recurrent_bias()) AddColumnSums(d_rec.fp32, rows, g, g, grads.b_h);
  }
  AddColumnSums(d_gates_.data(), rows, g, g, grads.b);
  if (input.dense != nullptr) {
    Product<T>(nullptr, true, false, in, g, rows, {input.dense, Mirror(x_bf16_, 0), in}, d_gates, T(1), grads.w_x, g);
    if (d_input != nullptr) {
      Product<T>(nullptr, false, true, rows, in, g, d_gates, {params.w_x, params.w_x_bf16, g}, T(0), d_input, in);
    }
  } else {
    for (int r = 0; r < rows; ++r) {
      const T scale = input.token_scale != nullptr ? input.token_scale[r] : T(1);
      if (scale == T(0)) continue;
      T* w_row = grads.w_x + static_cast<std::size_t>(input.tokens[r]) * g;
      const T* d_row = d_gates_.data() + static_cast<std::size_t>(r) * g;
      for (int j = 0; j < g; ++j) w_row[j] += scale * d_row[j];
    }
  }
  const std::size_t bh = static_cast<std::size_t>(batch_) * h;
  if (d_h0 != nullptr) std::copy(d_h_next_.begin(), d_h_next_.begin() + bh, d_h0);
  if (d_c0 != nullptr && shape_.has_cell_state()) std::copy(d_c_next_.begin(), d_c_next_.begin() + bh, d_c0);
}

template <typename T>
void RecurrentLayer<T>::BackwardSteps(const RecurrentParams<T>& params, const T* d_hidden, BackwardListener* listener) {
  const int B = batch_, h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(B) * h, bg = static_cast<std::size_t>(B) * g;
  T* d_next = d_h_next_.data();  // (B, H): dL/dh_{t} arriving from step t+1
  T* dc_next = d_c_next_.data();  // (B, H): dL/dc_{t} arriving from step t+1
  T* dh = d_step_.data();         // (B, H): total dL/dh_t at the current step
  std::fill(d_next, d_next + bh, T(0));
  std::fill(dc_next, dc_next + bh, T(0));
  double* cell_time = phase_times_ != nullptr ? &phase_times_->cell_backward : nullptr;
  // As in ForwardSteps: row_kernel(b) for every sequence b, split by rows over row_threads_.
  auto for_rows = [&](const auto& row_kernel) {
    PhaseTimer timer(cell_time);
    ParallelRanges(row_threads_, B, 1, static_cast<long>(bg), [&](int begin, int end) {
      for (int b = begin; b < end; ++b) row_kernel(b);
    });
  };
  auto round = [&](const T* src, std::size_t n, std::vector<Bf16>& buffer, std::size_t offset) {
    PhaseTimer timer(cell_time);
    Round(src, n, buffer, offset);
  };
  PackStepWeights(params, true);

  for (int t = steps_ - 1; t >= 0; --t) {
    if (listener != nullptr) listener->Progress();
    const T* h_prev = h_seq_.data() + t * bh;
    const T* h_out = h_seq_.data() + (t + 1) * bh;
    const T* h_in = recurrent_mask_ != nullptr ? h_masked_.data() + t * bh : h_prev;
    const T* a = gates_.data() + t * bg;  // gate activations
    T* da = d_gates_.data() + t * bg;     // gradient at the pre-activations
    const Operand<T> da_op{da, Mirror(d_gates_bf16_, t * bg), g};   // (B, gH), rounded once da is final
    const Operand<T> w_h{params.w_h, params.w_h_bf16, g};            // (H, gH), read transposed
    const T* d_out = d_hidden + t * bh;
    // Row b of dh = d_out + d_next.
    auto total_dh = [&](int b) {
      const std::size_t k = static_cast<std::size_t>(b) * h;
      for (int j = 0; j < h; ++j) dh[k + j] = d_out[k + j] + d_next[k + j];
    };

    switch (shape_.cell) {
      case CellKind::kRnn: {
        const bool relu = shape_.activation == Activation::kRelu;
        for_rows([&](int b) {
          total_dh(b);
          const std::size_t k = static_cast<std::size_t>(b) * h;
          for (int j = 0; j < h; ++j) {
            da[k + j] = dh[k + j] * (relu ? (h_out[k + j] > T(0) ? T(1) : T(0)) : T(1) - h_out[k + j] * h_out[k + j]);
          }
        });
        if (bf16_) round(da, bg, d_gates_bf16_, t * bg);
        StepProduct(0, nullptr, true, h, g, da_op, w_h, T(0), d_next, h);
        break;
      }
      case CellKind::kLstm: {
        const T* c_prev = c_seq_.data() + t * bh;
        const T* tanh_c = tanh_c_.data() + t * bh;
        for_rows([&](int b) {
          total_dh(b);
          const T* ab = a + static_cast<std::size_t>(b) * g;
          T* db = da + static_cast<std::size_t>(b) * g;
          const std::size_t k = static_cast<std::size_t>(b) * h;
          LstmCellBackward(h, ab, ab + h, ab + 2 * h, ab + 3 * h, c_prev + k, tanh_c + k, dh + k, dc_next + k, db,
                           db + h, db + 2 * h, db + 3 * h);
        });
        if (bf16_) round(da, bg, d_gates_bf16_, t * bg);
        StepProduct(0, nullptr, true, h, g, da_op, w_h, T(0), d_next, h);
        break;
      }
      case CellKind::kGru: {
        if (shape_.reset_after) {
          const T* qn = aux_.data() + t * bh;
          T* dq = d_rec_.data() + t * bg;  // gradient at q = h~ w_h + b_h
          for_rows([&](int b) {
            total_dh(b);
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            T* dqb = dq + static_cast<std::size_t>(b) * g;
            const std::size_t k = static_cast<std::size_t>(b) * h;
            GruAfterCellBackward(h, ab, ab + h, ab + 2 * h, qn + k, h_prev + k, dh + k, db, db + h, db + 2 * h, dqb,
                                 dqb + h, dqb + 2 * h);
          });
          if (bf16_) {
            round(da, bg, d_gates_bf16_, t * bg);
            round(dq, bg, d_rec_bf16_, t * bg);
          }
          StepProduct(0, nullptr, true, h, g, {dq, Mirror(d_rec_bf16_, t * bg), g}, w_h, T(0), d_next, h);
        } else {
          T* dq = step_rec_.data();  // (B, H): gradient at r*h~
          for_rows([&](int b) {
            total_dh(b);
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T z = ab[h + j], n = ab[2 * h + j];
              db[2 * h + j] = dh[k] * (T(1) - z) * (T(1) - n * n);
              db[h + j] = dh[k] * (h_prev[k] - n) * z * (T(1) - z);
            }
          });
          if (bf16_) round(da, bg, d_gates_bf16_, t * bg);  // its n columns are final here, the r columns below
          const Operand<T> da_n{da + 2 * h, bf16_ ? da_op.bf16 + 2 * h : nullptr, g};
          const Operand<T> w_h_n{params.w_h + 2 * h, bf16_ ? params.w_h_bf16 + 2 * h : nullptr, g};
          StepProduct(0, nullptr, true, h, h, da_n, w_h_n, T(0), dq, h);
          for_rows([&](int b) {
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T r = ab[j];
              db[j] = dq[k] * h_in[k] * r * (T(1) - r);
              d_next[k] = dq[k] * r;
            }
          });
          if (bf16_) round(da, bg, d_gates_bf16_, t * bg);
          StepProduct(1, nullptr, true, h, 2 * h, da_op, w_h, T(1), d_next, h);
        }
        break;
      }
    }
    // d_next now holds dL/dh~_{t-1}; map it back through the mask and add the direct GRU path z*h_{t-1} (two loops
    // per row, as before the split: one expression would let the compiler contract the product differently).
    if (recurrent_mask_ != nullptr || shape_.cell == CellKind::kGru) {
      for_rows([&](int b) {
        const std::size_t row = static_cast<std::size_t>(b) * h;
        if (recurrent_mask_ != nullptr) {
          for (int j = 0; j < h; ++j) d_next[row + j] *= recurrent_mask_[row + j];
        }
        if (shape_.cell == CellKind::kGru) {
          const T* ab = a + static_cast<std::size_t>(b) * g;
          for (int j = 0; j < h; ++j) d_next[row + j] += dh[row + j] * ab[h + j];
        }
      });
    }
  }
}

template class RecurrentLayer<float>;
template class RecurrentLayer<double>;

}  // namespace charlm
