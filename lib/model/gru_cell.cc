// The GRU cell's forward and backward on one row, both forms (gru_cell.h); RecurrentLayer runs them over a step's rows.
#include "model/gru_cell.h"

#include "ops/vecmath.h"

namespace charlm {

// As in lstm_cell.cc: one restrict pointer per gate so that GCC vectorizes over j, and the biases added here.

template <typename T>
void GruAfterCellForward(T* __restrict r_gate, T* __restrict z_gate, T* __restrict n_gate, T* __restrict q_n_out,
                         T* __restrict h_out, int h, const T* __restrict bias, const T* __restrict rec_bias,
                         const T* __restrict q_r, const T* __restrict q_z, const T* __restrict q_n,
                         const T* __restrict h_prev) {
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

template <typename T>
void GruAfterCellBackward(T* __restrict d_r, T* __restrict d_z, T* __restrict d_n, T* __restrict dq_r,
                          T* __restrict dq_z, T* __restrict dq_n, int h, const T* __restrict r_gate,
                          const T* __restrict z_gate, const T* __restrict n_gate, const T* __restrict q_n,
                          const T* __restrict h_prev, const T* __restrict dh) {
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

template <typename T>
void GruBeforeGatesForward(T* __restrict r_gate, T* __restrict z_gate, T* __restrict reset_hidden, int h,
                           const T* __restrict bias, const T* __restrict q_r, const T* __restrict q_z,
                           const T* __restrict h_in) {
  for (int j = 0; j < h; ++j) {
    const T r = Sigmoid(r_gate[j] + bias[j] + q_r[j]);
    r_gate[j] = r;
    z_gate[j] = Sigmoid(z_gate[j] + bias[h + j] + q_z[j]);
    reset_hidden[j] = r * h_in[j];
  }
}

template <typename T>
void GruBeforeGatesBackward(T* __restrict d_r, T* __restrict d_h_in, int h, const T* __restrict r_gate,
                            const T* __restrict h_in, const T* __restrict d_reset_hidden) {
  for (int j = 0; j < h; ++j) {
    const T r = r_gate[j];
    d_r[j] = d_reset_hidden[j] * h_in[j] * r * (T(1) - r);
    d_h_in[j] = d_reset_hidden[j] * r;
  }
}

template <typename T>
void GruBeforeCandidateForward(T* __restrict n_gate, T* __restrict h_out, int h, const T* __restrict bias,
                               const T* __restrict z_gate, const T* __restrict q_n, const T* __restrict h_prev) {
  for (int j = 0; j < h; ++j) {
    const T z = z_gate[j];
    const T n = Tanh(n_gate[j] + bias[2 * h + j] + q_n[j]);
    n_gate[j] = n;
    h_out[j] = (T(1) - z) * n + z * h_prev[j];
  }
}

template <typename T>
void GruBeforeCandidateBackward(T* __restrict d_z, T* __restrict d_n, int h, const T* __restrict z_gate,
                                const T* __restrict n_gate, const T* __restrict h_prev, const T* __restrict dh) {
  for (int j = 0; j < h; ++j) {
    const T z = z_gate[j], n = n_gate[j];
    d_n[j] = dh[j] * (T(1) - z) * (T(1) - n * n);
    d_z[j] = dh[j] * (h_prev[j] - n) * z * (T(1) - z);
  }
}

#define CHARLM_GRU_CELL_INSTANTIATE(T)                                                                              \
  template void GruAfterCellForward(T*, T*, T*, T*, T*, int, const T*, const T*, const T*, const T*, const T*,      \
                                    const T*);                                                                      \
  template void GruAfterCellBackward(T*, T*, T*, T*, T*, T*, int, const T*, const T*, const T*, const T*, const T*, \
                                     const T*);                                                                     \
  template void GruBeforeGatesForward(T*, T*, T*, int, const T*, const T*, const T*, const T*);                     \
  template void GruBeforeGatesBackward(T*, T*, int, const T*, const T*, const T*);                                  \
  template void GruBeforeCandidateForward(T*, T*, int, const T*, const T*, const T*, const T*);                     \
  template void GruBeforeCandidateBackward(T*, T*, int, const T*, const T*, const T*, const T*);
CHARLM_GRU_CELL_INSTANTIATE(float)
CHARLM_GRU_CELL_INSTANTIATE(double)
#undef CHARLM_GRU_CELL_INSTANTIATE

}  // namespace charlm
