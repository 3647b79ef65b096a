// Forward and backward passes of the recurrent layers over whole sequences (see recurrent.h for the math).
#include "model/recurrent.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <type_traits>

#include "model/gru_cell.h"
#include "model/lstm_cell.h"
#include "model/onednn_recurrent.h"
#include "model/rnn_cell.h"
#include "ops/blas.h"
#include "ops/column_threads.h"
#include "ops/stream_gradients.h"

namespace charlm {
namespace {

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
RecurrentLayer<T>::RecurrentLayer(const RecurrentShape& shape, int max_steps, int max_batch, Precision precision,
                                  Engine engine)
    : shape_(shape),
      cell_steps_(StepsOf(shape)),
      max_steps_(max_steps),
      max_batch_(max_batch),
      bf16_(precision == Precision::kBf16),
      fp32_packed_(precision == Precision::kFp32Packed) {
  assert(shape.input_size > 0 && shape.hidden_size > 0 && max_steps > 0 && max_batch > 0);
  assert((!bf16_ || std::is_same_v<T, float>));
  assert((!fp32_packed_ || std::is_same_v<T, float>));
  const std::size_t tb = static_cast<std::size_t>(max_steps) * max_batch;
  const std::size_t h = H(), g = G(), b = max_batch;
  h_seq_.resize((tb + b) * h);
  if constexpr (std::is_same_v<T, float>) {
    if (engine == Engine::kOnednn) {  // the primitive keeps what its backward pass needs; h_seq_ is the output
      onednn_ = std::make_unique<OnednnRecurrent>(shape, max_steps, max_batch, bf16_);
      return;
    }
  }
  assert(engine == Engine::kCharlm);
  gates_.resize(tb * g);
  d_gates_.resize(tb * g);
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
RecurrentLayer<T>::~RecurrentLayer() = default;
template <typename T>
RecurrentLayer<T>::RecurrentLayer(RecurrentLayer&&) noexcept = default;
template <typename T>
RecurrentLayer<T>& RecurrentLayer<T>::operator=(RecurrentLayer&&) noexcept = default;

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
  if constexpr (std::is_same_v<T, float>) {
    if (onednn_ != nullptr) {
      assert(recurrent_mask == nullptr);
      onednn_->Forward(input, steps, batch, params, h0, c0, mutable_hidden_sequence(), h_final, c_final);
      return;
    }
  }
  if (shape_.has_cell_state()) std::copy(c0, c0 + bh, c_seq_.begin());
  ProjectInput(input, params);
  ForwardSteps(params);
  const std::size_t last = static_cast<std::size_t>(steps) * bh;
  std::copy(h_seq_.begin() + last, h_seq_.begin() + last + bh, h_final);
  if (shape_.has_cell_state()) std::copy(c_seq_.begin() + last, c_seq_.begin() + last + bh, c_final);
}

template <typename T>
typename RecurrentLayer<T>::CellSteps RecurrentLayer<T>::StepsOf(const RecurrentShape& shape) {
  if (shape.cell == CellKind::kRnn) return {&RecurrentLayer::RnnForwardStep, &RecurrentLayer::RnnBackwardStep};
  if (shape.cell == CellKind::kLstm) return {&RecurrentLayer::LstmForwardStep, &RecurrentLayer::LstmBackwardStep};
  if (shape.reset_after) return {&RecurrentLayer::GruAfterForwardStep, &RecurrentLayer::GruAfterBackwardStep};
  return {&RecurrentLayer::GruBeforeForwardStep, &RecurrentLayer::GruBeforeBackwardStep};
}

template <typename T>
template <typename RowKernel>
void RecurrentLayer<T>::ForRows(double* cell_time, const RowKernel& row_kernel) {
  PhaseTimer timer(cell_time);
  const long work = static_cast<long>(batch_) * G();  // (B, gH)
  ParallelRanges(row_threads_, batch_, 1, work, [&](int begin, int end) {
    for (int b = begin; b < end; ++b) row_kernel(b);
  });
}

template <typename T>
void RecurrentLayer<T>::RoundTimed(double* cell_time, const T* src, std::size_t n, std::vector<Bf16>& buffer,
                                   std::size_t offset) {
  PhaseTimer timer(cell_time);
  Round(src, n, buffer, offset);
}

template <typename T>
void RecurrentLayer<T>::ForwardSteps(const RecurrentParams<T>& params) {
  const int B = batch_, h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(B) * h, bg = static_cast<std::size_t>(B) * g;
  ForwardStep step;
  step.cell_time = phase_times_ != nullptr ? &phase_times_->cell_forward : nullptr;
  step.w_h = {params.w_h, params.w_h_bf16, g};
  PackStepWeights(params, false);
  for (int t = 0; t < steps_; ++t) {
    step.t = t;
    step.h_prev = h_seq_.data() + t * bh;
    step.h_out = h_seq_.data() + (t + 1) * bh;
    step.h_in = step.h_prev;
    {
      PhaseTimer timer(step.cell_time);
      if (recurrent_mask_ != nullptr) {
        T* masked = h_masked_.data() + t * bh;
        for (std::size_t k = 0; k < bh; ++k) masked[k] = step.h_prev[k] * recurrent_mask_[k];
        step.h_in = masked;
      }
      if (bf16_) Round(step.h_in, bh, h_in_bf16_, t * bh);
    }
    step.h_in_op = {step.h_in, Mirror(h_in_bf16_, t * bh), h};
    step.a = gates_.data() + t * bg;
    (this->*cell_steps_.forward)(params, step);
  }
}

template <typename T>
void RecurrentLayer<T>::RnnForwardStep(const RecurrentParams<T>& params, const ForwardStep& step) {
  const int h = H(), g = G();
  StepProduct(0, threads_, false, g, h, step.h_in_op, step.w_h, T(1), step.a, g);  // a += h~ w_h
  ForRows(step.cell_time, [&](int b) {
    RnnCellForward(step.h_out + static_cast<std::size_t>(b) * h, h, shape_.activation,
                   step.a + static_cast<std::size_t>(b) * g, params.b);
  });
}

template <typename T>
void RecurrentLayer<T>::LstmForwardStep(const RecurrentParams<T>& params, const ForwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(batch_) * h;
  StepProduct(0, threads_, false, g, h, step.h_in_op, step.w_h, T(1), step.a, g);  // a += h~ w_h
  const T* c_prev = c_seq_.data() + step.t * bh;  // (B, H)
  T* c_out = c_seq_.data() + (step.t + 1) * bh;   // (B, H)
  T* tanh_c = tanh_c_.data() + step.t * bh;       // (B, H)
  ForRows(step.cell_time, [&](int b) {
    T* ab = step.a + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    LstmCellForward(ab, ab + h, ab + 2 * h, ab + 3 * h, c_out + k, tanh_c + k, step.h_out + k, h, params.b,
                    c_prev + k);
  });
}

template <typename T>
void RecurrentLayer<T>::GruAfterForwardStep(const RecurrentParams<T>& params, const ForwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(batch_) * h;
  T* rec = step_rec_.data();           // (B, gH): q = h~ w_h without b_h
  T* q_n = aux_.data() + step.t * bh;  // (B, H): q_n + b_h[n], kept for the backward pass
  StepProduct(0, threads_, false, g, h, step.h_in_op, step.w_h, T(0), rec, g);
  ForRows(step.cell_time, [&](int b) {
    T* ab = step.a + static_cast<std::size_t>(b) * g;
    const T* qb = rec + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruAfterCellForward(ab, ab + h, ab + 2 * h, q_n + k, step.h_out + k, h, params.b, params.b_h, qb, qb + h,
                        qb + 2 * h, step.h_prev + k);
  });
}

template <typename T>
void RecurrentLayer<T>::GruBeforeForwardStep(const RecurrentParams<T>& params, const ForwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(batch_) * h;
  T* rec = step_rec_.data();                    // (B, gH): h~ w_h[:, r|z], then (r*h~) w_h[:, n]
  T* reset_hidden = aux_.data() + step.t * bh;  // (B, H): r*h~, kept for the weight gradient
  StepProduct(0, threads_, false, 2 * h, h, step.h_in_op, step.w_h, T(0), rec, g);
  ForRows(step.cell_time, [&](int b) {
    T* ab = step.a + static_cast<std::size_t>(b) * g;
    const T* qb = rec + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruBeforeGatesForward(ab, ab + h, reset_hidden + k, h, params.b, qb, qb + h, step.h_in + k);
  });
  if (bf16_) RoundTimed(step.cell_time, reset_hidden, bh, aux_bf16_, step.t * bh);
  const Operand<T> w_h_n{params.w_h + 2 * h, bf16_ ? params.w_h_bf16 + 2 * h : nullptr, g};  // (H, H) of (H, gH)
  StepProduct(1, threads_, false, h, h, {reset_hidden, Mirror(aux_bf16_, step.t * bh), h}, w_h_n, T(0),
              rec + 2 * h, g);
  ForRows(step.cell_time, [&](int b) {
    T* ab = step.a + static_cast<std::size_t>(b) * g;
    const T* qb = rec + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruBeforeCandidateForward(ab + 2 * h, step.h_out + k, h, params.b, ab + h, qb + 2 * h, step.h_prev + k);
  });
}

template <typename T>
void RecurrentLayer<T>::Backward(const RecurrentInput<T>& input, const RecurrentParams<T>& params,
                                 const T* d_hidden, RecurrentGrads<T> grads, T* d_input, T* d_h0, T* d_c0,
                                 BackwardListener* listener) {
  if constexpr (std::is_same_v<T, float>) {
    if (onednn_ != nullptr) {  // one call over all steps: the listener hears no per-step progress
      onednn_->Backward(d_hidden, grads, d_input, d_h0, d_c0);
      return;
    }
  }
  const int rows = steps_ * batch_, h = H(), g = G(), in = shape_.input_size;
  BackwardSteps(params, d_hidden, listener);

  // Weight gradients as GEMMs over all time steps at once. (threads_ is null in training: exactly Gemm in fp32;
  // dynamic evaluation's segments set it, for their few rows.)
  const Operand<T> h_in_seq{recurrent_mask_ != nullptr ? h_masked_.data() : h_seq_.data(), Mirror(h_in_bf16_, 0),
                            h};                                            // (T*B, H): h~_{t-1}
  const Operand<T> d_gates{d_gates_.data(), Mirror(d_gates_bf16_, 0), g};  // (T*B, gH)
  if (shape_.cell == CellKind::kGru && !shape_.reset_after) {
    Product<T>(threads_, true, false, h, 2 * h, rows, h_in_seq, d_gates, T(1), grads.w_h, g);
    const Operand<T> d_gates_n{d_gates_.data() + 2 * h, bf16_ ? d_gates_bf16_.data() + 2 * h : nullptr, g};
    Product<T>(threads_, true, false, h, h, rows, {aux_.data(), Mirror(aux_bf16_, 0), h}, d_gates_n, T(1),
               grads.w_h + 2 * h, g);
  } else {
    const Operand<T> d_rec = shape_.has_recurrent_bias() ? Operand<T>{d_rec_.data(), Mirror(d_rec_bf16_, 0), g} : d_gates;
    Product<T>(threads_, true, false, h, g, rows, h_in_seq, d_rec, T(1), grads.w_h, g);
    if (shape_.has_recurrent_bias()) AddColumnSums(d_rec.fp32, rows, g, g, grads.b_h);
  }
  AddColumnSums(d_gates_.data(), rows, g, g, grads.b);
  if (input.dense != nullptr) {
    Product<T>(threads_, true, false, in, g, rows, {input.dense, Mirror(x_bf16_, 0), in}, d_gates, T(1), grads.w_x, g);
    if (d_input != nullptr) {
      Product<T>(threads_, false, true, rows, in, g, d_gates, {params.w_x, params.w_x_bf16, g}, T(0), d_input, in);
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
  BackwardStep step;
  step.cell_time = phase_times_ != nullptr ? &phase_times_->cell_backward : nullptr;
  step.w_h = {params.w_h, params.w_h_bf16, g};
  step.d_next = d_h_next_.data();
  step.dc_next = d_c_next_.data();
  step.dh = d_step_.data();
  std::fill(step.d_next, step.d_next + bh, T(0));
  std::fill(step.dc_next, step.dc_next + bh, T(0));
  PackStepWeights(params, true);

  for (int t = steps_ - 1; t >= 0; --t) {
    if (listener != nullptr) listener->Progress();
    step.t = t;
    step.h_prev = h_seq_.data() + t * bh;
    step.h_out = h_seq_.data() + (t + 1) * bh;
    step.h_in = recurrent_mask_ != nullptr ? h_masked_.data() + t * bh : step.h_prev;
    step.a = gates_.data() + t * bg;
    step.da = d_gates_.data() + t * bg;
    step.da_op = {step.da, Mirror(d_gates_bf16_, t * bg), g};
    step.d_out = d_hidden + t * bh;
    (this->*cell_steps_.backward)(params, step);
    // d_next now holds dL/dh~_{t-1}; map it back through the mask and add the direct GRU path z*h_{t-1} (two loops
    // per row, as before the split: one expression would let the compiler contract the product differently).
    if (recurrent_mask_ != nullptr || shape_.cell == CellKind::kGru) {
      ForRows(step.cell_time, [&](int b) {
        const std::size_t row = static_cast<std::size_t>(b) * h;
        T* d_next = step.d_next;
        if (recurrent_mask_ != nullptr) {
          for (int j = 0; j < h; ++j) d_next[row + j] *= recurrent_mask_[row + j];
        }
        if (shape_.cell == CellKind::kGru) {
          const T* ab = step.a + static_cast<std::size_t>(b) * g;
          for (int j = 0; j < h; ++j) d_next[row + j] += step.dh[row + j] * ab[h + j];
        }
      });
    }
  }
}

template <typename T>
void RecurrentLayer<T>::TotalGradient(const BackwardStep& step, int b) const {
  const std::size_t k = static_cast<std::size_t>(b) * H();
  for (int j = 0; j < H(); ++j) step.dh[k + j] = step.d_out[k + j] + step.d_next[k + j];
}

template <typename T>
void RecurrentLayer<T>::GatesBackThroughRecurrentKernel(const BackwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bg = static_cast<std::size_t>(batch_) * g;
  if (bf16_) RoundTimed(step.cell_time, step.da, bg, d_gates_bf16_, step.t * bg);
  StepProduct(0, threads_, true, h, g, step.da_op, step.w_h, T(0), step.d_next, h);  // d_next = da w_h^T
}

template <typename T>
void RecurrentLayer<T>::RnnBackwardStep(const RecurrentParams<T>& /*params*/, const BackwardStep& step) {
  const int h = H();
  ForRows(step.cell_time, [&](int b) {
    TotalGradient(step, b);
    const std::size_t k = static_cast<std::size_t>(b) * h;
    RnnCellBackward(step.da + k, h, shape_.activation, step.h_out + k, step.dh + k);
  });
  GatesBackThroughRecurrentKernel(step);
}

template <typename T>
void RecurrentLayer<T>::LstmBackwardStep(const RecurrentParams<T>& /*params*/, const BackwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(batch_) * h;
  const T* c_prev = c_seq_.data() + step.t * bh;  // (B, H)
  const T* tanh_c = tanh_c_.data() + step.t * bh;  // (B, H)
  ForRows(step.cell_time, [&](int b) {
    TotalGradient(step, b);
    const T* ab = step.a + static_cast<std::size_t>(b) * g;
    T* db = step.da + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    LstmCellBackward(db, db + h, db + 2 * h, db + 3 * h, step.dc_next + k, h, ab, ab + h, ab + 2 * h, ab + 3 * h,
                     c_prev + k, tanh_c + k, step.dh + k);
  });
  GatesBackThroughRecurrentKernel(step);
}

template <typename T>
void RecurrentLayer<T>::GruAfterBackwardStep(const RecurrentParams<T>& /*params*/, const BackwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(batch_) * h, bg = static_cast<std::size_t>(batch_) * g;
  const T* q_n = aux_.data() + step.t * bh;  // (B, H): q_n + b_h[n] of the forward pass
  T* dq = d_rec_.data() + step.t * bg;       // (B, gH): dL/dq, q = h~ w_h + b_h
  ForRows(step.cell_time, [&](int b) {
    TotalGradient(step, b);
    const T* ab = step.a + static_cast<std::size_t>(b) * g;
    T* db = step.da + static_cast<std::size_t>(b) * g;
    T* dqb = dq + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruAfterCellBackward(db, db + h, db + 2 * h, dqb, dqb + h, dqb + 2 * h, h, ab, ab + h, ab + 2 * h, q_n + k,
                         step.h_prev + k, step.dh + k);
  });
  if (bf16_) {
    RoundTimed(step.cell_time, step.da, bg, d_gates_bf16_, step.t * bg);
    RoundTimed(step.cell_time, dq, bg, d_rec_bf16_, step.t * bg);
  }
  StepProduct(0, threads_, true, h, g, {dq, Mirror(d_rec_bf16_, step.t * bg), g}, step.w_h, T(0), step.d_next, h);
}

template <typename T>
void RecurrentLayer<T>::GruBeforeBackwardStep(const RecurrentParams<T>& params, const BackwardStep& step) {
  const int h = H(), g = G();
  const std::size_t bg = static_cast<std::size_t>(batch_) * g;
  T* d_reset_hidden = step_rec_.data();  // (B, H): dL/d(r*h~)
  ForRows(step.cell_time, [&](int b) {
    TotalGradient(step, b);
    const T* ab = step.a + static_cast<std::size_t>(b) * g;
    T* db = step.da + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruBeforeCandidateBackward(db + h, db + 2 * h, h, ab + h, ab + 2 * h, step.h_prev + k, step.dh + k);
  });
  if (bf16_) RoundTimed(step.cell_time, step.da, bg, d_gates_bf16_, step.t * bg);  // its n columns are final here
  const Operand<T> da_n{step.da + 2 * h, bf16_ ? step.da_op.bf16 + 2 * h : nullptr, g};
  const Operand<T> w_h_n{params.w_h + 2 * h, bf16_ ? params.w_h_bf16 + 2 * h : nullptr, g};
  StepProduct(0, threads_, true, h, h, da_n, w_h_n, T(0), d_reset_hidden, h);
  ForRows(step.cell_time, [&](int b) {
    const T* ab = step.a + static_cast<std::size_t>(b) * g;
    T* db = step.da + static_cast<std::size_t>(b) * g;
    const std::size_t k = static_cast<std::size_t>(b) * h;
    GruBeforeGatesBackward(db, step.d_next + k, h, ab, step.h_in + k, d_reset_hidden + k);
  });
  if (bf16_) RoundTimed(step.cell_time, step.da, bg, d_gates_bf16_, step.t * bg);  // now with its r columns
  StepProduct(1, threads_, true, h, 2 * h, step.da_op, step.w_h, T(1), step.d_next, h);  // d_next += da[:, r|z] w_h^T
}

template <typename T>
void RecurrentLayer<T>::AddStreamGradientSquares(const RecurrentInput<T>& input, float scale,
                                                 RecurrentGrads<double> squares) const {
  if constexpr (std::is_same_v<T, float>) {
    assert(input.projected == nullptr && input.token_scale == nullptr);
    const int streams = batch_, k = steps_, h = H(), g = G();
    const int h_step = streams * h, g_step = streams * g;  // a step's rows: one per stream
    const float* h_in = recurrent_mask_ != nullptr ? h_masked_.data() : h_seq_.data();  // (T*B, H): h~_{t-1}
    const float* d_gates = d_gates_.data();                                               // (T*B, gH)
    // Backward's products, over each stream's rows alone.
    if (shape_.cell == CellKind::kGru && !shape_.reset_after) {
      AddStreamProductSquares(h, 2 * h, k, streams, scale, h_in, h_step, h, d_gates, g_step, g, squares.w_h, g);
      AddStreamProductSquares(h, h, k, streams, scale, aux_.data(), h_step, h, d_gates + 2 * h, g_step, g,
                              squares.w_h + 2 * h, g);
    } else {
      const float* d_rec = shape_.has_recurrent_bias() ? d_rec_.data() : d_gates;  // (T*B, gH)
      AddStreamProductSquares(h, g, k, streams, scale, h_in, h_step, h, d_rec, g_step, g, squares.w_h, g);
      if (shape_.has_recurrent_bias()) {
        AddStreamProductSquares(1, g, k, streams, scale, nullptr, 0, 0, d_rec, g_step, g, squares.b_h, g);
      }
    }
    AddStreamProductSquares(1, g, k, streams, scale, nullptr, 0, 0, d_gates, g_step, g, squares.b, g);
    if (input.dense != nullptr) {
      const int in = shape_.input_size;
      AddStreamProductSquares(in, g, k, streams, scale, input.dense, streams * in, in, d_gates, g_step, g, squares.w_x,
                              g);
    } else {
      std::vector<int> order;  // (T)
      std::vector<float> row;  // (gH)
      AddStreamScatterSquares(g, k, streams, scale, input.tokens, d_gates, g_step, g, squares.w_x, g, order, row);
    }
  } else {
    (void)input;
    (void)scale;
    (void)squares;
    assert(false && "float only");
  }
}

template class RecurrentLayer<float>;
template class RecurrentLayer<double>;

}  // namespace charlm
