// A recurrent layer run by oneDNN's fused RNN primitive (train.engine "onednn"): forward_training and backward
// through its workspace, on charlm's own parameter and gradient buffers, reordered into the primitive's layouts.
//
// Which charlm cell maps to which oneDNN cell (docs/cells.md):
//   LSTM                      -> vanilla_lstm, gates i, f, g, o in both (no reordering), one bias
//   SimpleRNN (tanh or relu)  -> vanilla_rnn (eltwise_tanh or eltwise_relu)
//   GRU, reset_after = true   -> lbr_gru (linear before reset); oneDNN's gate order is u (= z), r, o (= n), charlm's
//                                r, z, n; its bias has four gates [b_u, b_r, b_o, b_o'] = [b_z + b_h_z, b_r + b_h_r,
//                                b_n, b_h_n], since only the candidate keeps its recurrent bias apart
//   GRU, reset_after = false  -> none: stays on charlm's kernels (OnednnRecurrentRefusal says why)
// Recurrent dropout (a mask on h_{t-1}) has no counterpart in the primitive either.
#pragma once

#include <memory>
#include <string>

#include "model/recurrent.h"

namespace charlm {

// Empty when train.engine "onednn" can run a layer of `shape` with `recurrent_dropout`; else why not, one line.
std::string OnednnRecurrentRefusal(const RecurrentShape& shape, double recurrent_dropout);

class OnednnRecurrent {
 public:
  // bf16: bf16 inputs, weights and hidden states, fp32 accumulation, cell state, bias and gradients.
  // Allocates the staging buffers for (max_steps, max_batch); the primitives and their memory objects are made on
  // the first Forward of each (steps, batch) and kept.
  OnednnRecurrent(const RecurrentShape& shape, int max_steps, int max_batch, bool bf16);
  ~OnednnRecurrent();
  OnednnRecurrent(OnednnRecurrent&&) noexcept;
  OnednnRecurrent& operator=(OnednnRecurrent&&) noexcept;

  // Runs steps 0..T-1 from h0/c0 (B, H) (c0 LSTM only). input: dense (T*B, I) or tokens (one-hot rows, times
  // token_scale if set); not `projected`. h_seq (T*B, H): h_1..h_T out. h_final/c_final (B, H) may alias h0/c0.
  void Forward(const RecurrentInput<float>& input, int steps, int batch, const RecurrentParams<float>& params,
               const float* h0, const float* c0, float* h_seq, float* h_final, float* c_final);
  // Backpropagates the last Forward (its weights, as reordered then): d_hidden (T*B, H) = dL/dh_seq; adds into
  // grads; writes d_input (T*B, I) and d_h0/d_c0 (B, H) where non-null. The final state is detached.
  void Backward(const float* d_hidden, RecurrentGrads<float> grads, float* d_input, float* d_h0, float* d_c0);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace charlm
