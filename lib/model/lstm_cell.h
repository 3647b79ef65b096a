// The LSTM cell on one sequence's row of a step, forward and its reverse:
//   [i f g o] = [sigma sigma tanh sigma](x_t w_x + h~ w_h + b);  c_t = f*c_{t-1} + i*g;  h_t = o*tanh(c_t)
#pragma once

namespace charlm {

// i_gate, f_gate, g_gate, o_gate (H each): the pre-activations x_t w_x + h~_{t-1} w_h without the bias in, the gate
// activations out, in place (kept for the backward pass). c_out (H): c_t; tanh_c (H): tanh(c_t), kept; h_out (H): h_t.
// bias (4H): b in gate order i, f, g, o; c_prev (H): c_{t-1}.
template <typename T>
void LstmCellForward(T* i_gate, T* f_gate, T* g_gate, T* o_gate, T* c_out, T* tanh_c, T* h_out, int h, const T* bias,
                     const T* c_prev);

// d_i, d_f, d_g, d_o (H each): dL/d(pre-activations) out. dc_next (H): dL/dc_t in, dL/dc_{t-1} out. From the gate
// activations i, f, g, o and tanh(c_t) (H each) of LstmCellForward, c_prev (H): c_{t-1}, and dh (H): dL/dh_t.
template <typename T>
void LstmCellBackward(T* d_i, T* d_f, T* d_g, T* d_o, T* dc_next, int h, const T* i_gate, const T* f_gate,
                      const T* g_gate, const T* o_gate, const T* c_prev, const T* tanh_c, const T* dh);

}  // namespace charlm
