// The character language model: input (one-hot gather or embedding) -> recurrent stack -> dense -> softmax.
//
// Parameters, gradients each live in one flat buffer; ParamLayout places (and names, for checkpoints and interop) the
// tensors in it, ParamView gives them typed, in this order:
//   embedding (V, E)                                  only when embedding_size > 0
//   layer{l}.w_x (I_l, gH), layer{l}.w_h (H, gH), layer{l}.b (gH), layer{l}.b_h (gH, GRU reset_after only)
//     I_0 = E, or V for one-hot input (its rows are gathered, never multiplied); I_l = H for l > 0
//   output.w (H, V), output.b (V)                    output.w only without tie_embeddings (tied: the output layer
//                                                     multiplies by embedding^T, so E == H and the embedding is held once)
// Sequences are time-major: token (t, b) is at index t*B + b. The loss is the mean cross-entropy over T*B.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/enums.h"
#include "model/recurrent.h"

namespace charlm {

class ColumnThreads;

struct ModelSpec {
  CellKind cell = CellKind::kLstm;
  int vocab_size = 0;
  int embedding_size = 0;  // 0 = one-hot input
  int hidden_size = 0;
  int num_layers = 1;
  Activation activation = Activation::kTanh;
  bool reset_after = true;
  double dropout = 0.0;            // inverted dropout on the input of each recurrent layer and of the output layer
  double recurrent_dropout = 0.0;  // one mask per sequence on h_{t-1}, reused at every step
  // AWD-LSTM regularization (Merity et al. 2017); all off by default, which leaves the model as it was bit for bit.
  bool locked_dropout = false;     // `dropout`'s masks drawn once per sequence and reused at every time step
  double weight_drop = 0.0;        // DropConnect on each layer's w_h: one mask per training step, shared by all streams
  double embedding_dropout = 0.0;  // whole characters dropped: one (V) mask per training step, shared by all streams
  bool tie_embeddings = false;     // the output layer is embedding^T (needs embedding_size == hidden_size)

  RecurrentShape LayerShape(int layer) const;
};

// What a tensor is to the model, whatever its name: the initializers and the typed views go by it.
enum class TensorKind {
  kEmbedding,        // embedding (V, E)
  kInputKernel,      // layer{l}.w_x (I_l, gH)
  kRecurrentKernel,  // layer{l}.w_h (H, gH)
  kBias,             // layer{l}.b (gH)
  kRecurrentBias,    // layer{l}.b_h (gH), GRU reset_after only
  kOutputKernel,     // output.w (H, V)
  kOutputBias,       // output.b (V)
};

struct ParamTensor {
  std::string name;  // the name checkpoints, interop and the summary know it by
  TensorKind kind = TensorKind::kEmbedding;
  std::size_t offset = 0;
  int rows = 0;
  int cols = 0;
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
};

// Where one tensor lies in a flat buffer laid out by ParamLayout: [offset, offset + size); size 0 where the model has
// no such tensor.
struct TensorPlace {
  std::size_t offset = 0;
  std::size_t size = 0;
};

// One recurrent layer's tensors: their places (ParamLayout::layer) or spans of a buffer (ParamView::layer).
template <typename Tensor>
struct LayerTensors {
  Tensor w_x;  // (I_l, gH)
  Tensor w_h;  // (H, gH)
  Tensor b;    // (gH)
  Tensor b_h;  // (gH): GRU reset_after only, else empty
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelSpec& spec);
  // Every tensor in the buffer's order, with its name and kind.
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  std::size_t total() const { return total_; }
  // By name, for what knows the tensors by name (interop, tests); the model goes by the typed places below.
  const ParamTensor& Get(const std::string& name) const;  // asserts it exists
  bool Has(const std::string& name) const;

  const TensorPlace& embedding() const { return embedding_; }  // (V, E); size 0 for one-hot input
  const LayerTensors<TensorPlace>& layer(int l) const { return layers_[l]; }
  const TensorPlace& output_w() const { return output_w_; }  // (H, V)
  const TensorPlace& output_b() const { return output_b_; }  // (V)

 private:
  std::vector<ParamTensor> tensors_;
  std::size_t total_ = 0;
  TensorPlace embedding_;
  std::vector<LayerTensors<TensorPlace>> layers_;  // (L)
  TensorPlace output_w_, output_b_;
};

// A typed view of a flat buffer laid out by ParamLayout (the parameters, or their gradients). The spans are made on
// each call from the buffer's address, so that a buffer replaced as a whole (a restored checkpoint) leaves no view
// dangling; making one costs a few additions, no lookup and no allocation.
template <typename T>
class ParamView {
 public:
  ParamView(T* base, const ParamLayout& layout) : base_(base), layout_(&layout) {}
  std::span<T> embedding() const { return At(layout_->embedding()); }  // (V, E); empty for one-hot input
  LayerTensors<std::span<T>> layer(int l) const {
    const LayerTensors<TensorPlace>& place = layout_->layer(l);
    return {At(place.w_x), At(place.w_h), At(place.b), At(place.b_h)};
  }
  std::span<T> output_w() const { return At(layout_->output_w()); }  // (H, V)
  std::span<T> output_b() const { return At(layout_->output_b()); }  // (V)

 private:
  std::span<T> At(const TensorPlace& place) const { return {base_ + place.offset, place.size}; }
  T* base_;
  const ParamLayout* layout_;
};

// The number of scalars ParamLayout(spec) holds, computed in double from the sizes alone: no allocation, no loop
// over layers and no overflow, so that a spec read from a config or a checkpoint (num_layers 2147483647, hidden_size
// 2e9) can be checked against the machine's memory before anything is built from it.
double ParameterCount(const ModelSpec& spec);

// An upper bound on the scalars MakeWorkspace(steps, batch) allocates, computed in double from the sizes alone, so
// that train.batch_size x train.num_steps can be checked against the machine's memory before a step is built.
double WorkspaceFloats(const ModelSpec& spec, double steps, double batch);

// The hidden state of every layer: h (L, B, H), and c (L, B, H) for LSTM (else empty).
template <typename T>
struct RecurrentState {
  int num_layers = 0, batch = 0, hidden = 0;
  std::vector<T> h, c;
  void Zero();
  T* LayerH(int l) { return h.data() + static_cast<std::size_t>(l) * batch * hidden; }
  T* LayerC(int l) { return c.empty() ? nullptr : c.data() + static_cast<std::size_t>(l) * batch * hidden; }
  const T* LayerH(int l) const { return h.data() + static_cast<std::size_t>(l) * batch * hidden; }
  const T* LayerC(int l) const { return c.empty() ? nullptr : c.data() + static_cast<std::size_t>(l) * batch * hidden; }
};

// Activation buffers for one (max_steps, max_batch), made by CharModel::MakeWorkspace, reused every step.
template <typename T>
struct Workspace {
  int max_steps = 0, max_batch = 0;
  int steps = 0, batch = 0;
  bool training = false;
  bool probs_kept = false;       // the last Forward wrote the softmax to probs (ForwardMode::keep_probs)
  const int* inputs = nullptr;   // borrowed from the last Forward
  const int* targets = nullptr;  // borrowed from the last Forward
  std::vector<RecurrentLayer<T>> layers;
  std::vector<T> embedded;               // (T*B, E): gathered embedding rows, dropout applied
  std::vector<T> token_scale;            // (T*B): one-hot input dropout factors
  std::vector<std::vector<T>> inputs_l;  // per layer l > 0: (T*B, H) dropout-masked input (dropout only;
                                         // without it layer l reads layer l-1's hidden sequence directly)
  std::vector<std::vector<T>> masks_l;   // per layer: (T*B, I_l) input-dropout mask (empty for one-hot layer 0)
  std::vector<std::vector<T>> rec_masks;  // per layer: (B, H) recurrent-dropout mask
  std::vector<T> output_in;              // (T*B, H): top hidden sequence after output dropout
  std::vector<T> output_mask;            // (T*B, H)
  std::vector<T> logits;                 // (T*B, V)
  std::vector<T> probs;                  // (T*B, V): softmax, turned into dL/dlogits in Backward
  std::vector<T> d_hidden_a, d_hidden_b;  // (T*B, max(H, E)): gradients flowing down the stack
  const T* d_embedded = nullptr;          // (T*B, E): dL/d(embedded rows) of the last Backward:
                                          // d_hidden_a or _b (an embedding only, else null)

  // bf16 precision only (else empty): the parameters rounded to bf16 in params()' layout, refreshed by every
  // Forward (once per training step; a generation workspace's only by its first), and the output layer's mirrors.
  std::vector<Bf16> params_bf16;     // (layout total)
  bool params_bf16_fixed = false;    // generation: the parameters do not change while it is used
  bool params_bf16_ready = false;
  std::vector<Bf16> output_in_bf16;  // (T*B, H): the output layer's input
  std::vector<Bf16> d_logits_bf16;   // (T*B, V)

  // Generation only (CharModel::MakeGenerationWorkspace). The input table caches layer 0's x w_x for each
  // embedding row, (V, gH), filled when a token first comes through a one-step, logits-only Forward, by the very
  // product that Forward would have run, so the output is bit-identical and each later step reads one row instead
  // of multiplying E x gH. Pages of rows never used are never touched. Null without an embedding.
  std::unique_ptr<T[]> input_table;
  std::vector<unsigned char> input_table_ready;  // (V): row v of input_table is filled
  std::vector<T> input_table_rows;  // (B, gH): one step of B > 1 rows (beam search): their table rows side by side
  ColumnThreads* threads = nullptr;               // batch-1 products are split over these (borrowed), if set

  // Training and evaluation: the cell kernels and the softmax are split over these by rows, bit-identical to the
  // caller alone; null = the caller alone.
  ColumnThreads* row_threads = nullptr;  // borrowed
  PhaseTimes* phase_times = nullptr;     // borrowed: where the elementwise phases' time is added, if set
  std::vector<T> row_loss;               // (T*B): each row's cross-entropy, summed in row order after the split

  // Training with weight_drop > 0 only (else empty): DropConnect on w_h. The layers read the masked copy in place
  // of w_h; its gradient lands in d_w_h_dropped and reaches grads() through the same mask.
  std::vector<std::vector<T>> w_h_masks;             // per layer: (H, gH) 0 or 1/(1-p)
  std::vector<std::vector<T>> w_h_dropped;           // per layer: (H, gH) w_h * mask
  std::vector<std::vector<Bf16>> w_h_dropped_bf16;   // per layer: (H, gH) its bf16 mirror (bf16 precision only)
  std::vector<T> d_w_h_dropped;                      // (H, gH): dL/d(w_h * mask) of the layer being backpropagated
  // Training with embedding_dropout > 0 only: each character's input factor, 0 or 1/(1-p).
  std::vector<T> vocab_scale;                        // (V)
};

struct ForwardMode {
  bool training = false;          // dropout on
  std::uint64_t dropout_seed = 0;  // with first_stream, the masks are a pure function of it
  // The global index of column 0 of the batch: each stream's masks are drawn from (dropout_seed, its global index),
  // so a data-parallel worker holding streams [first_stream, first_stream + B) draws the masks one process would.
  int first_stream = 0;
  // false: the loss and each row's loss only (evaluation); the softmax is not written to Workspace::probs, so
  // Backward cannot follow. Saves a write and a pass over the (T*B, V) probabilities.
  bool keep_probs = true;
};

template <typename T>
class CharModel {
 public:
  explicit CharModel(const ModelSpec& spec);
  ~CharModel();
  CharModel(CharModel&&) noexcept;

  const ModelSpec& spec() const { return spec_; }
  const ParamLayout& layout() const { return layout_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }
  // (layout total): the gradients, the first part of reduce_buffer().
  std::span<T> grads() { return std::span<T>(grads_).first(layout_.total()); }
  std::span<const T> grads() const { return std::span<const T>(grads_).first(layout_.total()); }
  // The gradients and after them kReduceTail slots, one buffer (layout total + kReduceTail): a data-parallel
  // reduce writes this worker's loss sum and token count there, so one in-place sum carries all three.
  std::span<T> reduce_buffer() { return grads_; }
  static constexpr std::size_t kReduceTail = 2;
  // Typed views of the parameters and of the gradients.
  ParamView<T> param_tensors() { return {params_.data(), layout_}; }
  ParamView<const T> param_tensors() const { return {params_.data(), layout_}; }
  ParamView<T> grad_tensors() { return {grads_.data(), layout_}; }

  void Initialize(InitScheme scheme, std::uint64_t seed);
  // fp32 (the default) or bf16 products (float only; the caller has checked RequireBf16). Workspaces made
  // afterwards follow it.
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }
  // What runs the recurrent layers of the workspaces made afterwards by MakeWorkspace (generation workspaces always
  // run charlm's kernels). Engine::kOnednn throws a one-line UserError naming train.engine where a layer cannot run
  // on oneDNN's primitive (OnednnRecurrentRefusal: the book's GRU, recurrent dropout, a build without oneDNN, double).
  void set_engine(Engine engine);
  Engine engine() const { return engine_; }
  // Where the weights came from, for the messages that blame them (CheckFiniteOutput): the checkpoint's path
  // (RestoreModel); empty for a model being trained.
  const std::string& origin() const { return origin_; }
  void set_origin(std::string origin) { origin_ = std::move(origin); }
  void ZeroGrads();
  RecurrentState<T> MakeState(int batch) const;
  std::unique_ptr<Workspace<T>> MakeWorkspace(int max_steps, int max_batch) const;
  // A workspace for generation at up to max_batch rows (1 for sampling, beam search's rows): products split over
  // `threads` (may be null) and, with an embedding whose table fits in kMaxInputTableBytes, the input table (see
  // Workspace). Use it only while the parameters stay unchanged: the table holds products of the parameters as
  // they were when each token was first seen.
  std::unique_ptr<Workspace<T>> MakeGenerationWorkspace(int max_steps, ColumnThreads* threads, int max_batch = 1) const;
  // 64 MiB: the d2l preset's LSTM table is 10.6 MB; a much larger vocabulary skips the table rather than grow RSS.
  static constexpr std::size_t kMaxInputTableBytes = std::size_t{64} << 20;

  // Runs T steps of B sequences from `state` (updated to the final state). inputs and targets are (T*B)
  // time-major; targets may be null (logits only). Returns the mean cross-entropy, or 0 without targets.
  T Forward(Workspace<T>& ws, const int* inputs, const int* targets, int steps, int batch, RecurrentState<T>& state,
            const ForwardMode& mode) const;
  // Backpropagates the last Forward (which had targets) and adds into grads(). d_initial_state, if non-null,
  // receives the gradient with respect to the state Forward started from (shape as MakeState(batch)). `listener`,
  // if non-null, hears of every suffix of grads() as it becomes final: the output layer's, each recurrent
  // layer's from the top down (the layout's order backwards), then the embedding's; and of every time step.
  void Backward(Workspace<T>& ws, RecurrentState<T>* d_initial_state, BackwardListener* listener = nullptr);
  // After Backward on a batch of independent streams (evaluation: dropout off, fp32 products, no tied embeddings,
  // whose embedding's gradient adds two paths before it could be squared): adds to `squares` (laid out as params())
  // each stream's own share of the gradient, times `scale`, squared, in double. Dynamic evaluation's statistics
  // (eval/dynamic.h) are these sums over many streams' segments at once. float only.
  void AddStreamGradientSquares(const Workspace<T>& ws, float scale, std::span<double> squares) const;

 private:
  RecurrentParams<T> LayerParams(int l, const Workspace<T>& ws) const;
  RecurrentGrads<T> LayerGrads(int l);
  const T* LayerInput(const Workspace<T>& ws, int l) const;  // (T*B, H), l > 0
  // The output layer's kernel as the products read it: output.w (H, V), or with tie_embeddings the embedding
  // (V, H) read transposed.
  const T* OutputKernel() const;
  // Whether the training masks of weight_drop are on for the last (or current) Forward on ws.
  bool WeightDropOn(const Workspace<T>& ws) const { return ws.training && spec_.weight_drop > 0; }

  std::unique_ptr<Workspace<T>> MakeWorkspaceOn(int max_steps, int max_batch, Engine engine) const;
  // The bf16 mirror of the parameters from `param` (a pointer into params_) in ws, or null in fp32.
  const Bf16* Bf16Mirror(const Workspace<T>& ws, const T* param) const;

  ModelSpec spec_;
  ParamLayout layout_;
  std::vector<T> params_;  // (layout_.total())
  std::vector<T> grads_;   // (layout_.total() + kReduceTail): grads(), then the reduce's tail
  Precision precision_ = Precision::kFp32;
  Engine engine_ = Engine::kCharlm;
  std::string origin_;
};

// A non-finite output of the model (a loss, a logit, a log-probability) is an error, never a figure or a text: the
// weights are to blame, since finite weights as large as 3e38 (an imported file) still overflow float32 in their
// products. UserError naming `origin` (CharModel::origin) and `what` (e.g. "loss over the text") when `value` is
// not finite; eval, score and generate check through it.
void CheckFiniteOutput(double value, const std::string& origin, std::string_view what);
// A finite mean loss whose perplexity (e^loss) overflows: logits of a scale no trained model has, so the weights
// are to blame as for a non-finite value (a perplexity of inf is never a result).
void CheckFinitePerplexity(double mean_loss, const std::string& origin);

// (T*B, V) logits of the last Forward on this workspace.
template <typename T>
const T* WorkspaceLogits(const Workspace<T>& ws);

extern template class CharModel<float>;
extern template class CharModel<double>;

}  // namespace charlm
