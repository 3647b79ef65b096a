// The SimpleRNN cell's forward and backward on one row (rnn_cell.h); RecurrentLayer runs them over a step's rows.
#include "model/rnn_cell.h"

#include <algorithm>

#include "ops/vecmath.h"

namespace charlm {

// The activation is chosen outside the loop so that each loop vectorizes as one straight body.
template <typename T>
void RnnCellForward(T* __restrict h_out, int h, Activation activation, const T* __restrict pre,
                    const T* __restrict bias) {
  if (activation == Activation::kRelu) {
    for (int j = 0; j < h; ++j) h_out[j] = std::max(pre[j] + bias[j], T(0));
  } else {
    for (int j = 0; j < h; ++j) h_out[j] = Tanh(pre[j] + bias[j]);
  }
}

template <typename T>
void RnnCellBackward(T* __restrict d_pre, int h, Activation activation, const T* __restrict h_out,
                     const T* __restrict dh) {
  if (activation == Activation::kRelu) {
    for (int j = 0; j < h; ++j) d_pre[j] = dh[j] * (h_out[j] > T(0) ? T(1) : T(0));
  } else {
    for (int j = 0; j < h; ++j) d_pre[j] = dh[j] * (T(1) - h_out[j] * h_out[j]);
  }
}

template void RnnCellForward(float*, int, Activation, const float*, const float*);
template void RnnCellForward(double*, int, Activation, const double*, const double*);
template void RnnCellBackward(float*, int, Activation, const float*, const float*);
template void RnnCellBackward(double*, int, Activation, const double*, const double*);

}  // namespace charlm
