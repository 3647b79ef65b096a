// The LSTM cell's forward and backward on one row (lstm_cell.h); RecurrentLayer runs them over a step's rows.
#include "model/lstm_cell.h"

#include "ops/vecmath.h"

namespace charlm {

// Each buffer is its own restrict pointer (one per gate) so that GCC vectorizes over j with the inline float
// nonlinearities of vecmath.h. The bias is added here rather than copied into every row before the products: one
// pass over memory instead of two.
template <typename T>
void LstmCellForward(T* __restrict i_gate, T* __restrict f_gate, T* __restrict g_gate, T* __restrict o_gate,
                     T* __restrict c_out, T* __restrict tanh_c, T* __restrict h_out, int h, const T* __restrict bias,
                     const T* __restrict c_prev) {
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

template <typename T>
void LstmCellBackward(T* __restrict d_i, T* __restrict d_f, T* __restrict d_g, T* __restrict d_o,
                      T* __restrict dc_next, int h, const T* __restrict i_gate, const T* __restrict f_gate,
                      const T* __restrict g_gate, const T* __restrict o_gate, const T* __restrict c_prev,
                      const T* __restrict tanh_c, const T* __restrict dh) {
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

template void LstmCellForward(float*, float*, float*, float*, float*, float*, float*, int, const float*, const float*);
template void LstmCellForward(double*, double*, double*, double*, double*, double*, double*, int, const double*,
                              const double*);
template void LstmCellBackward(float*, float*, float*, float*, float*, int, const float*, const float*, const float*,
                               const float*, const float*, const float*, const float*);
template void LstmCellBackward(double*, double*, double*, double*, double*, int, const double*, const double*,
                               const double*, const double*, const double*, const double*, const double*);

}  // namespace charlm
