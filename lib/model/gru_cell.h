// The GRU cell on one sequence's row of a step, in both forms, forward and its reverse (gate order r, z, n):
//   reset_after (PyTorch, cuDNN, Keras' default): a = x_t w_x + b, q = h~ w_h + b_h;
//     r = sigma(a_r + q_r);  z = sigma(a_z + q_z);  n = tanh(a_n + r*q_n);  h_t = (1-z)*n + z*h_{t-1}
//   reset before, the book's form (reset_after=false): r, z as above without b_h; n = tanh(a_n + (r*h~) w_h[:, n]).
//     Its candidate needs the product (r*h~) w_h[:, n] of the gates' result, so each direction runs in two stages
//     around that product: forward the gates then the candidate, backward the candidate then the gates.
#pragma once

namespace charlm {

// reset_after. r_gate, z_gate, n_gate (H each): x_t w_x without the bias in, r, z, n out, in place. q_n_out (H):
// q_n + b_h[n], kept for the backward pass; h_out (H): h_t. bias, rec_bias (3H each): b and b_h; q_r, q_z, q_n (H
// each): h~_{t-1} w_h without b_h; h_prev (H): h_{t-1}.
template <typename T>
void GruAfterCellForward(T* r_gate, T* z_gate, T* n_gate, T* q_n_out, T* h_out, int h, const T* bias,
                         const T* rec_bias, const T* q_r, const T* q_z, const T* q_n, const T* h_prev);

// reset_after. d_r, d_z, d_n (H each): dL/da, the input path's pre-activations; dq_r, dq_z, dq_n (H each): dL/dq, the
// recurrent path's. From r, z, n and q_n (H each) of GruAfterCellForward, h_prev (H): h_{t-1}, dh (H): dL/dh_t.
// The direct path z*h_{t-1} into dL/dh_{t-1} is left to the caller.
template <typename T>
void GruAfterCellBackward(T* d_r, T* d_z, T* d_n, T* dq_r, T* dq_z, T* dq_n, int h, const T* r_gate,
                          const T* z_gate, const T* n_gate, const T* q_n, const T* h_prev, const T* dh);

// Reset before, first forward stage. r_gate, z_gate (H each): x_t w_x without the bias in, r and z out, in place.
// reset_hidden (H): r*h~_{t-1}, the next product's operand. bias (3H): b; q_r, q_z (H each): h~_{t-1} w_h[:, r|z];
// h_in (H): h~_{t-1}.
template <typename T>
void GruBeforeGatesForward(T* r_gate, T* z_gate, T* reset_hidden, int h, const T* bias, const T* q_r, const T* q_z,
                           const T* h_in);

// Reset before, second backward stage (the reverse of GruBeforeGatesForward). d_r (H): dL/da_r; d_h_in (H): dL/dh~
// through r*h~ (the rest comes from the product with w_h[:, r|z]). From r (H), h_in (H): h~_{t-1}, and
// d_reset_hidden (H): dL/d(r*h~).
template <typename T>
void GruBeforeGatesBackward(T* d_r, T* d_h_in, int h, const T* r_gate, const T* h_in, const T* d_reset_hidden);

// Reset before, second forward stage. n_gate (H): x_t w_x without the bias in, n out, in place; h_out (H): h_t.
// bias (3H): b; z_gate (H): z; q_n (H): (r*h~_{t-1}) w_h[:, n]; h_prev (H): h_{t-1}.
template <typename T>
void GruBeforeCandidateForward(T* n_gate, T* h_out, int h, const T* bias, const T* z_gate, const T* q_n,
                               const T* h_prev);

// Reset before, first backward stage (the reverse of GruBeforeCandidateForward). d_z, d_n (H each): dL/da_z, dL/da_n.
// From z, n (H each), h_prev (H): h_{t-1}, and dh (H): dL/dh_t. The direct path z*h_{t-1} is left to the caller.
template <typename T>
void GruBeforeCandidateBackward(T* d_z, T* d_n, int h, const T* z_gate, const T* n_gate, const T* h_prev,
                                const T* dh);

}  // namespace charlm
