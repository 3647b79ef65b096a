// Forward and backward passes of the recurrent layers over whole sequences (see recurrent.h for the math).
#include "recurrent.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "blas.h"

namespace charlm {
namespace {

template <typename T>
inline T Sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
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
RecurrentLayer<T>::RecurrentLayer(const RecurrentShape& shape, int max_steps, int max_batch)
    : shape_(shape), max_steps_(max_steps), max_batch_(max_batch) {
  assert(shape.input_size > 0 && shape.hidden_size > 0 && max_steps > 0 && max_batch > 0);
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
}

template <typename T>
void RecurrentLayer<T>::ProjectInput(const RecurrentInput<T>& input, const RecurrentParams<T>& params) {
  const int rows = steps_ * batch_, g = G();
  for (int r = 0; r < rows; ++r) std::copy(params.b, params.b + g, gates_.data() + static_cast<std::size_t>(r) * g);
  if (input.dense != nullptr) {
    Gemm<T>(false, false, rows, g, shape_.input_size, T(1), input.dense, shape_.input_size, params.w_x, g, T(1),
            gates_.data(), g);
    return;
  }
  assert(input.tokens != nullptr);
  for (int r = 0; r < rows; ++r) {
    const int token = input.tokens[r];
    assert(token >= 0 && token < shape_.input_size);
    const T scale = input.token_scale != nullptr ? input.token_scale[r] : T(1);
    const T* w_row = params.w_x + static_cast<std::size_t>(token) * g;
    T* out = gates_.data() + static_cast<std::size_t>(r) * g;
    for (int j = 0; j < g; ++j) out[j] += scale * w_row[j];
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
  for (int t = 0; t < steps_; ++t) {
    const T* h_prev = h_seq_.data() + t * bh;  // (B, H)
    T* h_out = h_seq_.data() + (t + 1) * bh;   // (B, H)
    const T* h_in = h_prev;                    // (B, H): h~_{t-1}
    if (recurrent_mask_ != nullptr) {
      T* masked = h_masked_.data() + t * bh;
      for (std::size_t k = 0; k < bh; ++k) masked[k] = h_prev[k] * recurrent_mask_[k];
      h_in = masked;
    }
    T* a = gates_.data() + t * bg;  // (B, gH)
    switch (shape_.cell) {
      case CellKind::kRnn: {
        Gemm<T>(false, false, B, g, h, T(1), h_in, h, params.w_h, g, T(1), a, g);
        const bool relu = shape_.activation == Activation::kRelu;
        for (std::size_t k = 0; k < bh; ++k) h_out[k] = relu ? std::max(a[k], T(0)) : std::tanh(a[k]);
        break;
      }
      case CellKind::kLstm: {
        Gemm<T>(false, false, B, g, h, T(1), h_in, h, params.w_h, g, T(1), a, g);
        const T* c_prev = c_seq_.data() + t * bh;
        T* c_out = c_seq_.data() + (t + 1) * bh;
        T* tanh_c = tanh_c_.data() + t * bh;
        for (int b = 0; b < B; ++b) {
          T* ab = a + static_cast<std::size_t>(b) * g;
          for (int j = 0; j < h; ++j) {
            const T i_gate = Sigmoid(ab[j]), f_gate = Sigmoid(ab[h + j]);
            const T g_gate = std::tanh(ab[2 * h + j]), o_gate = Sigmoid(ab[3 * h + j]);
            ab[j] = i_gate;
            ab[h + j] = f_gate;
            ab[2 * h + j] = g_gate;
            ab[3 * h + j] = o_gate;
            const std::size_t k = static_cast<std::size_t>(b) * h + j;
            c_out[k] = f_gate * c_prev[k] + i_gate * g_gate;
            tanh_c[k] = std::tanh(c_out[k]);
            h_out[k] = o_gate * tanh_c[k];
          }
        }
        break;
      }
      case CellKind::kGru: {
        T* rec = step_rec_.data();    // (B, gH)
        T* aux = aux_.data() + t * bh;  // (B, H)
        if (shape_.reset_after) {
          for (int b = 0; b < B; ++b) std::copy(params.b_h, params.b_h + g, rec + static_cast<std::size_t>(b) * g);
          Gemm<T>(false, false, B, g, h, T(1), h_in, h, params.w_h, g, T(1), rec, g);
          for (int b = 0; b < B; ++b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T r = Sigmoid(ab[j] + qb[j]), z = Sigmoid(ab[h + j] + qb[h + j]);
              const T n = std::tanh(ab[2 * h + j] + r * qb[2 * h + j]);
              aux[k] = qb[2 * h + j];
              ab[j] = r;
              ab[h + j] = z;
              ab[2 * h + j] = n;
              h_out[k] = (T(1) - z) * n + z * h_prev[k];
            }
          }
        } else {
          Gemm<T>(false, false, B, 2 * h, h, T(1), h_in, h, params.w_h, g, T(0), rec, g);
          for (int b = 0; b < B; ++b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              ab[j] = Sigmoid(ab[j] + qb[j]);
              ab[h + j] = Sigmoid(ab[h + j] + qb[h + j]);
              aux[k] = ab[j] * h_in[k];
            }
          }
          Gemm<T>(false, false, B, h, h, T(1), aux, h, params.w_h + 2 * h, g, T(0), rec + 2 * h, g);
          for (int b = 0; b < B; ++b) {
            T* ab = a + static_cast<std::size_t>(b) * g;
            const T* qb = rec + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T z = ab[h + j];
              const T n = std::tanh(ab[2 * h + j] + qb[2 * h + j]);
              ab[2 * h + j] = n;
              h_out[k] = (T(1) - z) * n + z * h_prev[k];
            }
          }
        }
        break;
      }
    }
  }
}

template <typename T>
void RecurrentLayer<T>::Backward(const RecurrentInput<T>& input, const RecurrentParams<T>& params,
                                 const T* d_hidden, RecurrentGrads<T> grads, T* d_input, T* d_h0, T* d_c0) {
  const int rows = steps_ * batch_, h = H(), g = G(), in = shape_.input_size;
  BackwardSteps(params, d_hidden);

  // Weight gradients as GEMMs over all time steps at once.
  const T* h_in_seq = recurrent_mask_ != nullptr ? h_masked_.data() : h_seq_.data();  // (T*B, H): h~_{t-1}
  if (shape_.cell == CellKind::kGru && !shape_.reset_after) {
    Gemm<T>(true, false, h, 2 * h, rows, T(1), h_in_seq, h, d_gates_.data(), g, T(1), grads.w_h, g);
    Gemm<T>(true, false, h, h, rows, T(1), aux_.data(), h, d_gates_.data() + 2 * h, g, T(1), grads.w_h + 2 * h, g);
  } else {
    const T* d_rec = shape_.has_recurrent_bias() ? d_rec_.data() : d_gates_.data();
    Gemm<T>(true, false, h, g, rows, T(1), h_in_seq, h, d_rec, g, T(1), grads.w_h, g);
    if (shape_.has_recurrent_bias()) AddColumnSums(d_rec, rows, g, g, grads.b_h);
  }
  AddColumnSums(d_gates_.data(), rows, g, g, grads.b);
  if (input.dense != nullptr) {
    Gemm<T>(true, false, in, g, rows, T(1), input.dense, in, d_gates_.data(), g, T(1), grads.w_x, g);
    if (d_input != nullptr) Gemm<T>(false, true, rows, in, g, T(1), d_gates_.data(), g, params.w_x, g, T(0), d_input, in);
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
void RecurrentLayer<T>::BackwardSteps(const RecurrentParams<T>& params, const T* d_hidden) {
  const int B = batch_, h = H(), g = G();
  const std::size_t bh = static_cast<std::size_t>(B) * h, bg = static_cast<std::size_t>(B) * g;
  T* d_next = d_h_next_.data();  // (B, H): dL/dh_{t} arriving from step t+1
  T* dc_next = d_c_next_.data();  // (B, H): dL/dc_{t} arriving from step t+1
  T* dh = d_step_.data();         // (B, H): total dL/dh_t at the current step
  std::fill(d_next, d_next + bh, T(0));
  std::fill(dc_next, dc_next + bh, T(0));

  for (int t = steps_ - 1; t >= 0; --t) {
    const T* h_prev = h_seq_.data() + t * bh;
    const T* h_out = h_seq_.data() + (t + 1) * bh;
    const T* h_in = recurrent_mask_ != nullptr ? h_masked_.data() + t * bh : h_prev;
    const T* a = gates_.data() + t * bg;  // gate activations
    T* da = d_gates_.data() + t * bg;     // gradient at the pre-activations
    const T* d_out = d_hidden + t * bh;
    for (std::size_t k = 0; k < bh; ++k) dh[k] = d_out[k] + d_next[k];

    switch (shape_.cell) {
      case CellKind::kRnn: {
        const bool relu = shape_.activation == Activation::kRelu;
        for (std::size_t k = 0; k < bh; ++k) {
          da[k] = dh[k] * (relu ? (h_out[k] > T(0) ? T(1) : T(0)) : T(1) - h_out[k] * h_out[k]);
        }
        Gemm<T>(false, true, B, h, g, T(1), da, g, params.w_h, g, T(0), d_next, h);
        break;
      }
      case CellKind::kLstm: {
        const T* c_prev = c_seq_.data() + t * bh;
        const T* tanh_c = tanh_c_.data() + t * bh;
        for (int b = 0; b < B; ++b) {
          const T* ab = a + static_cast<std::size_t>(b) * g;
          T* db = da + static_cast<std::size_t>(b) * g;
          for (int j = 0; j < h; ++j) {
            const std::size_t k = static_cast<std::size_t>(b) * h + j;
            const T i_gate = ab[j], f_gate = ab[h + j], g_gate = ab[2 * h + j], o_gate = ab[3 * h + j];
            const T dc = dc_next[k] + dh[k] * o_gate * (T(1) - tanh_c[k] * tanh_c[k]);
            db[j] = dc * g_gate * i_gate * (T(1) - i_gate);
            db[h + j] = dc * c_prev[k] * f_gate * (T(1) - f_gate);
            db[2 * h + j] = dc * i_gate * (T(1) - g_gate * g_gate);
            db[3 * h + j] = dh[k] * tanh_c[k] * o_gate * (T(1) - o_gate);
            dc_next[k] = dc * f_gate;
          }
        }
        Gemm<T>(false, true, B, h, g, T(1), da, g, params.w_h, g, T(0), d_next, h);
        break;
      }
      case CellKind::kGru: {
        if (shape_.reset_after) {
          const T* qn = aux_.data() + t * bh;
          T* dq = d_rec_.data() + t * bg;  // gradient at q = h~ w_h + b_h
          for (int b = 0; b < B; ++b) {
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            T* dqb = dq + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T r = ab[j], z = ab[h + j], n = ab[2 * h + j];
              const T dn_pre = dh[k] * (T(1) - z) * (T(1) - n * n);
              const T dr_pre = dn_pre * qn[k] * r * (T(1) - r);
              const T dz_pre = dh[k] * (h_prev[k] - n) * z * (T(1) - z);
              db[j] = dr_pre;
              db[h + j] = dz_pre;
              db[2 * h + j] = dn_pre;
              dqb[j] = dr_pre;
              dqb[h + j] = dz_pre;
              dqb[2 * h + j] = dn_pre * r;
            }
          }
          Gemm<T>(false, true, B, h, g, T(1), dq, g, params.w_h, g, T(0), d_next, h);
        } else {
          T* dq = step_rec_.data();  // (B, H): gradient at r*h~
          for (int b = 0; b < B; ++b) {
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T z = ab[h + j], n = ab[2 * h + j];
              db[2 * h + j] = dh[k] * (T(1) - z) * (T(1) - n * n);
              db[h + j] = dh[k] * (h_prev[k] - n) * z * (T(1) - z);
            }
          }
          Gemm<T>(false, true, B, h, h, T(1), da + 2 * h, g, params.w_h + 2 * h, g, T(0), dq, h);
          for (int b = 0; b < B; ++b) {
            const T* ab = a + static_cast<std::size_t>(b) * g;
            T* db = da + static_cast<std::size_t>(b) * g;
            for (int j = 0; j < h; ++j) {
              const std::size_t k = static_cast<std::size_t>(b) * h + j;
              const T r = ab[j];
              db[j] = dq[k] * h_in[k] * r * (T(1) - r);
              d_next[k] = dq[k] * r;
            }
          }
          Gemm<T>(false, true, B, h, 2 * h, T(1), da, g, params.w_h, g, T(1), d_next, h);
        }
        break;
      }
    }
    // d_next now holds dL/dh~_{t-1}; map it back through the mask and add the direct GRU path z*h_{t-1}.
    if (recurrent_mask_ != nullptr) {
      for (std::size_t k = 0; k < bh; ++k) d_next[k] *= recurrent_mask_[k];
    }
    if (shape_.cell == CellKind::kGru) {
      for (int b = 0; b < B; ++b) {
        const T* ab = a + static_cast<std::size_t>(b) * g;
        for (int j = 0; j < h; ++j) {
          const std::size_t k = static_cast<std::size_t>(b) * h + j;
          d_next[k] += dh[k] * ab[h + j];
        }
      }
    }
  }
}

template class RecurrentLayer<float>;
template class RecurrentLayer<double>;

}  // namespace charlm
