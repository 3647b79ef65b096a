// Recurrent layers (SimpleRNN, GRU in both forms, LSTM) that run whole sequences forward and backward.
//
// Shapes: T time steps, B sequences, I input features, H hidden units, g gates (RNN 1, GRU 3, LSTM 4).
// Sequences are time-major: row t*B + b of a (T*B, X) buffer is step t of sequence b.
//
// Weights (row-major, so x_t (B, I) * W_x (I, gH) is one sgemm):
//   w_x (I, gH)   input kernel         w_h (H, gH)   recurrent kernel
//   b   (gH)      bias                 b_h (gH)      recurrent bias (GRU with reset_after only)
// Gate order along the gH axis:
//   LSTM: i (input), f (forget), g (cell candidate), o (output)        = PyTorch's and Keras' order
//   GRU:  r (reset), z (update), n (candidate)                          = PyTorch's order (Keras: z, r, h)
// Equations (sigma = logistic, * = elementwise, h~ = h_{t-1} * recurrent-dropout mask, else h_{t-1}):
//   RNN:  h_t = act(x_t w_x + h~ w_h + b)
//   LSTM: [i f g o] = [sigma sigma tanh sigma](x_t w_x + h~ w_h + b);  c_t = f*c_{t-1} + i*g;  h_t = o*tanh(c_t)
//   GRU reset_after=true (PyTorch, cuDNN, Keras' default):
//         a = x_t w_x + b,  q = h~ w_h + b_h;  r = sigma(a_r + q_r);  z = sigma(a_z + q_z)
//         n = tanh(a_n + r*q_n);  h_t = (1-z)*n + z*h_{t-1}
//   GRU reset_after=false (the original form, used in the book):
//         r, z as above without b_h;  n = tanh(a_n + (r*h~) w_h[:, n]);  h_t = (1-z)*n + z*h_{t-1}
//
// The cells' math on one row of a step, forward and backward side by side, is in rnn_cell.h, gru_cell.h and
// lstm_cell.h; RecurrentLayer runs them over the rows of each step, around the products with w_h.
//
// Memory per layer, allocated once for (max_steps, max_batch): about (2g + 4) * T*B*H scalars of caches
// (pre-activations/gates, their gradients, the hidden and cell sequences).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/bf16_gemm.h"
#include "config/enums.h"
#include "ops/phase_times.h"

namespace charlm {

class ColumnThreads;
class OnednnRecurrent;

// Told by a backward pass as its gradients become final, so that a caller can send them off (a data-parallel
// reduce) while the rest is still being computed.
class BackwardListener {
 public:
  virtual ~BackwardListener() = default;
  // The gradients from `first` to the end of the model's grads() will not change again in this backward pass.
  virtual void GradientsFinalFrom(std::size_t first) = 0;
  // Once per time step: lets what GradientsFinalFrom started move on (MPI progresses only inside MPI calls).
  virtual void Progress() = 0;
};

struct RecurrentShape {
  CellKind cell = CellKind::kLstm;
  int input_size = 0;
  int hidden_size = 0;
  Activation activation = Activation::kTanh;  // SimpleRNN only
  bool reset_after = true;                    // GRU only

  int gates() const { return cell == CellKind::kRnn ? 1 : cell == CellKind::kGru ? 3 : 4; }
  bool has_cell_state() const { return cell == CellKind::kLstm; }
  bool has_recurrent_bias() const { return cell == CellKind::kGru && reset_after; }
  // The number of trainable scalars, as Keras counts them.
  std::int64_t num_params() const {
    const std::int64_t g = gates(), h = hidden_size, i = input_size;
    return g * h * (i + h) + g * h * (has_recurrent_bias() ? 2 : 1);
  }
};

template <typename T>
struct RecurrentParams {
  const T* w_x = nullptr;  // (I, gH)
  const T* w_h = nullptr;  // (H, gH)
  const T* b = nullptr;    // (gH)
  const T* b_h = nullptr;  // (gH), GRU reset_after only
  const Bf16* w_x_bf16 = nullptr;  // (I, gH): bf16 precision only, w_x rounded (once per step, by CharModel)
  const Bf16* w_h_bf16 = nullptr;  // (H, gH): bf16 precision only
};

template <typename T>
struct RecurrentGrads {  // accumulated into (+=)
  T* w_x = nullptr;
  T* w_h = nullptr;
  T* b = nullptr;
  T* b_h = nullptr;
};

// A layer's input sequence: either dense features, or token ids whose one-hot rows are gathered from w_x
// (never a dense one-hot product), each optionally scaled by an input-dropout factor, or the products x w_x
// themselves, already computed (generation's input table).
template <typename T>
struct RecurrentInput {
  const T* projected = nullptr;    // (T*B, gH): x w_x without the bias
  const T* dense = nullptr;        // (T*B, I)
  const int* tokens = nullptr;     // (T*B), ids in [0, I)
  const T* token_scale = nullptr;  // (T*B) or null: dropout factor applied to each gathered one-hot row
};

template <typename T>
class RecurrentLayer {
 public:
  // bf16: every product takes bf16 mirrors of its operands (the weights' from RecurrentParams, the activations'
  // rounded here into buffers of the same layout) and accumulates in fp32; nothing else changes.
  // Engine::kOnednn (float only; OnednnRecurrentRefusal(shape) empty, no recurrent mask, no `projected` input):
  // Forward and Backward run oneDNN's RNN primitive (onednn_recurrent.h) in place of the kernels below.
  RecurrentLayer(const RecurrentShape& shape, int max_steps, int max_batch, Precision precision = Precision::kFp32,
                 Engine engine = Engine::kCharlm);
  ~RecurrentLayer();
  RecurrentLayer(RecurrentLayer&&) noexcept;
  RecurrentLayer& operator=(RecurrentLayer&&) noexcept;
  bool runs_onednn() const { return onednn_ != nullptr; }

  const RecurrentShape& shape() const { return shape_; }
  // Whether the last Forward or Backward ran its per-step products on a packed w_h (bf16 or fp32_packed, T > 1).
  bool step_weights_packed() const { return step_weights_packed_; }

  // Threads that the products go through SplitGemm's own kernels with (batch-1 and few-row products, split over
  // them: generation, dynamic evaluation's segments); null = Gemm on the caller only, as in training.
  void set_threads(ColumnThreads* threads) { threads_ = threads; }
  // Threads that the per-step cell kernels are split over by sequences (rows of the batch); null = the caller
  // only. Each row is computed by the same code either way, so the bits do not change.
  void set_row_threads(ColumnThreads* threads) { row_threads_ = threads; }
  // Where the cell kernels' time is added (charlm bench --breakdown); null = not timed.
  void set_phase_times(PhaseTimes* times) { phase_times_ = times; }

  // Runs steps 0..T-1. h0/c0 (B, H) are the initial state (c0 ignored unless LSTM);
  // recurrent_mask (B, H) or null is applied to h_{t-1} at every step. Writes the final state to
  // h_final/c_final (may alias h0/c0). The output sequence is hidden_sequence().
  void Forward(const RecurrentInput<T>& input, int steps, int batch, const RecurrentParams<T>& params,
               const T* recurrent_mask, const T* h0, const T* c0, T* h_final, T* c_final);

  // Runs steps T-1..0 for the last Forward. d_hidden (T*B, H) is the gradient of the loss with respect
  // to hidden_sequence(); accumulates weight gradients; writes d_input (T*B, I) for dense input (if non-null)
  // and the gradients for the initial state d_h0/d_c0 (B, H) (if non-null). The final state is detached.
  // `listener`, if non-null, hears of every time step (BackwardListener::Progress).
  void Backward(const RecurrentInput<T>& input, const RecurrentParams<T>& params, const T* d_hidden,
                RecurrentGrads<T> grads, T* d_input, T* d_h0, T* d_c0, BackwardListener* listener = nullptr);

  // After Backward on a batch of independent streams (evaluation: no dropout, fp32 activations): adds to `squares`
  // (laid out as the layer's tensors) each stream's own share of the layer's weight gradients, times `scale`,
  // squared, in double: the gradient statistics of dynamic evaluation (eval/dynamic.h), gathered over many streams
  // in one pass. float only.
  void AddStreamGradientSquares(const RecurrentInput<T>& input, float scale, RecurrentGrads<double> squares) const;

  // (T*B, H): h_1..h_T of the last Forward.
  const T* hidden_sequence() const { return h_seq_.data() + static_cast<std::size_t>(batch_) * H(); }
  T* mutable_hidden_sequence() { return h_seq_.data() + static_cast<std::size_t>(batch_) * H(); }

 private:
  int H() const { return shape_.hidden_size; }
  int G() const { return shape_.gates() * shape_.hidden_size; }
  void ProjectInput(const RecurrentInput<T>& input, const RecurrentParams<T>& params);
  void ForwardSteps(const RecurrentParams<T>& params);
  void BackwardSteps(const RecurrentParams<T>& params, const T* d_hidden, BackwardListener* listener);

  // What one step of ForwardSteps hands its cell: step t's slices of the layer's buffers.
  struct ForwardStep {
    int t = 0;
    const T* h_prev = nullptr;  // (B, H): h_{t-1}
    const T* h_in = nullptr;    // (B, H): h~_{t-1}, h_{t-1} masked (or h_prev itself without a mask)
    Operand<T> h_in_op;         // (B, H): h_in and its bf16 mirror
    Operand<T> w_h;             // (H, gH): the recurrent kernel and its bf16 mirror
    T* a = nullptr;             // (B, gH): x_t w_x without the bias in, the gate activations out
    T* h_out = nullptr;         // (B, H): h_t
    double* cell_time = nullptr;  // where the cell kernels' time goes, or null
  };
  // What one step of BackwardSteps hands its cell. The cell writes da (and the recurrent path's gradients) and
  // d_next = dL/dh~_{t-1} through the products; BackwardSteps then maps d_next through the mask.
  struct BackwardStep {
    int t = 0;
    const T* h_prev = nullptr;  // (B, H): h_{t-1}
    const T* h_out = nullptr;   // (B, H): h_t
    const T* h_in = nullptr;    // (B, H): h~_{t-1}
    const T* a = nullptr;       // (B, gH): the gate activations of the forward pass
    T* da = nullptr;            // (B, gH): dL/d(pre-activations of the input path)
    Operand<T> da_op;           // (B, gH): da and its bf16 mirror, rounded once da is final
    Operand<T> w_h;             // (H, gH): read transposed
    const T* d_out = nullptr;   // (B, H): dL/dh_t from the layer above (d_hidden's block t)
    T* d_next = nullptr;        // (B, H): dL/dh_t from step t+1 in, dL/dh~_{t-1} out
    T* dc_next = nullptr;       // (B, H): LSTM dL/dc_t in, dL/dc_{t-1} out
    T* dh = nullptr;            // (B, H): the total dL/dh_t, d_out + d_next
    double* cell_time = nullptr;  // where the cell kernels' time goes, or null
  };
  // One step of each cell, forward and backward side by side: the products with w_h around the cell's row kernels
  // (rnn_cell.h, lstm_cell.h, gru_cell.h).
  using ForwardStepFn = void (RecurrentLayer::*)(const RecurrentParams<T>&, const ForwardStep&);
  using BackwardStepFn = void (RecurrentLayer::*)(const RecurrentParams<T>&, const BackwardStep&);
  struct CellSteps {
    ForwardStepFn forward = nullptr;
    BackwardStepFn backward = nullptr;
  };
  // The pair for the shape's cell (and, for the GRU, its form).
  static CellSteps StepsOf(const RecurrentShape& shape);
  void RnnForwardStep(const RecurrentParams<T>& params, const ForwardStep& step);
  void RnnBackwardStep(const RecurrentParams<T>& params, const BackwardStep& step);
  void LstmForwardStep(const RecurrentParams<T>& params, const ForwardStep& step);
  void LstmBackwardStep(const RecurrentParams<T>& params, const BackwardStep& step);
  void GruAfterForwardStep(const RecurrentParams<T>& params, const ForwardStep& step);
  void GruAfterBackwardStep(const RecurrentParams<T>& params, const BackwardStep& step);
  void GruBeforeForwardStep(const RecurrentParams<T>& params, const ForwardStep& step);
  void GruBeforeBackwardStep(const RecurrentParams<T>& params, const BackwardStep& step);
  // row_kernel(b) for every sequence b of the batch, split by rows over row_threads_ (each row's code and order
  // unchanged, so its bits too), timed into cell_time if set.
  template <typename RowKernel>
  void ForRows(double* cell_time, const RowKernel& row_kernel);
  // RNN and LSTM, once step.da is final: rounds it (bf16) and sends it back, d_next = da w_h^T.
  void GatesBackThroughRecurrentKernel(const BackwardStep& step);
  // Row b of step.dh = step.d_out + step.d_next.
  void TotalGradient(const BackwardStep& step, int b) const;
  // Round, timed into cell_time if set.
  void RoundTimed(double* cell_time, const T* src, std::size_t n, std::vector<Bf16>& buffer, std::size_t offset);
  // The bf16 mirror of an activation buffer at `offset`, or null in fp32 precision (Product then runs fp32).
  Bf16* Mirror(std::vector<Bf16>& buffer, std::size_t offset) { return bf16_ ? buffer.data() + offset : nullptr; }
  // Rounds n values of src into the mirror at `offset` (bf16 only).
  void Round(const T* src, std::size_t n, std::vector<Bf16>& buffer, std::size_t offset);
  // bf16 and more than one step: packs w_h (forward) or its transpose (backward) for the per-step products of one
  // sequence, each slice a step uses into its own PackedProduct; the step products then run on them. fp32 keeps
  // OpenBLAS (docs/benchmarks.md has oneDNN's packed fp32 measured against it).
  void PackStepWeights(const RecurrentParams<T>& params, bool backward);
  // C (B x n) = a (B x k) op(w) + beta C, one step: on packed_[slot] when PackStepWeights packed it (with
  // these shapes), else exactly Product.
  void StepProduct(int slot, ColumnThreads* threads, bool trans_b, int n, int k, Operand<T> a, Operand<T> w,
                   T beta, T* c, int ldc);

  RecurrentShape shape_;
  CellSteps cell_steps_;  // StepsOf(shape_)
  int max_steps_, max_batch_;
  int steps_ = 0, batch_ = 0;
  const T* recurrent_mask_ = nullptr;  // (B, H) of the last Forward, borrowed
  ColumnThreads* threads_ = nullptr;   // borrowed
  ColumnThreads* row_threads_ = nullptr;  // borrowed
  PhaseTimes* phase_times_ = nullptr;     // borrowed
  bool bf16_ = false;
  bool fp32_packed_ = false;  // Precision::kFp32Packed: the per-step products on a packed fp32 w_h

  std::vector<T> gates_;       // (T*B, gH): input projection + bias, then the gate activations in place
  std::vector<T> h_seq_;       // ((T+1)*B, H): row block 0 is h0, block t+1 is h_t
  std::vector<T> h_masked_;    // (T*B, H): h~_{t-1} when a recurrent mask is used
  std::vector<T> c_seq_;       // ((T+1)*B, H): LSTM cell states, block 0 is c0
  std::vector<T> tanh_c_;      // (T*B, H): LSTM tanh(c_t)
  std::vector<T> aux_;         // (T*B, H): GRU reset_after q_n = h~ w_h[:, n] + b_h[n]; reset_after=false r*h~
  std::vector<T> d_gates_;     // (T*B, gH): gradient at the pre-activations of the input path
  std::vector<T> d_rec_;       // (T*B, gH): GRU reset_after gradient at q (the recurrent path)
  std::vector<T> step_rec_;    // (B, gH): per-step recurrent matmul output
  std::vector<T> d_h_next_;    // (B, H): gradient flowing into h_{t-1}
  std::vector<T> d_c_next_;    // (B, H): gradient flowing into c_{t-1}
  std::vector<T> d_step_;      // (B, H): per-step scratch
  // bf16 mirrors (bf16 precision only, else empty) of the activations the products read.
  std::vector<Bf16> x_bf16_;       // (T*B, I): dense input
  std::vector<Bf16> h_in_bf16_;    // (T*B, H): h~_{t-1}, block t
  std::vector<Bf16> aux_bf16_;     // (T*B, H): GRU reset_after=false r*h~
  std::vector<Bf16> d_gates_bf16_;  // (T*B, gH)
  std::vector<Bf16> d_rec_bf16_;    // (T*B, gH): GRU reset_after
  // bf16: w_h (or slices of it) packed for the current sequence's per-step products, forward or backward.
  std::array<PackedProduct, 2> packed_;
  bool step_weights_packed_ = false;  // packed_ holds the current sequence's (and direction's) weights
  // Engine::kOnednn: the primitive that runs Forward and Backward (then only h_seq_ of the buffers above is used).
  std::unique_ptr<OnednnRecurrent> onednn_;
};

extern template class RecurrentLayer<float>;
extern template class RecurrentLayer<double>;

}  // namespace charlm
