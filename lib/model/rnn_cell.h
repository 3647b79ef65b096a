// The SimpleRNN cell on one sequence's row of a step, forward and its reverse: h_t = act(x_t w_x + h~ w_h + b).
#pragma once

#include "config/enums.h"

namespace charlm {

// h_out (H): h_t = act(pre + bias), from pre (H) = x_t w_x + h~_{t-1} w_h without the bias, and bias (H).
template <typename T>
void RnnCellForward(T* h_out, int h, Activation activation, const T* pre, const T* bias);

// d_pre (H): dL/d(pre-activation), from h_out (H) = h_t of the forward pass and dh (H) = dL/dh_t.
template <typename T>
void RnnCellBackward(T* d_pre, int h, Activation activation, const T* h_out, const T* dh);

}  // namespace charlm
