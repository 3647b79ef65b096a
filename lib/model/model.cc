// Forward and backward of the whole character model, parameter layout, and the three initializers.
#include "model/model.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "model/onednn_recurrent.h"
#include "ops/blas.h"
#include "util/errors.h"
#include "ops/column_threads.h"
#include "ops/stream_gradients.h"
#include "util/rng.h"
#include "ops/vecmath.h"

namespace charlm {

RecurrentShape ModelSpec::LayerShape(int layer) const {
  RecurrentShape shape;
  shape.cell = cell;
  shape.input_size = layer > 0 ? hidden_size : (embedding_size > 0 ? embedding_size : vocab_size);
  shape.hidden_size = hidden_size;
  shape.activation = activation;
  shape.reset_after = reset_after;
  return shape;
}

double ParameterCount(const ModelSpec& spec) {
  const double vocab = spec.vocab_size, embedding = spec.embedding_size, hidden = spec.hidden_size;
  const double layers = spec.num_layers;
  const RecurrentShape shape = spec.LayerShape(0);
  const double gated = static_cast<double>(shape.gates()) * hidden;  // gH
  const double biases = shape.has_recurrent_bias() ? 2.0 : 1.0;
  const double first_input = spec.embedding_size > 0 ? embedding : vocab;
  const double first_layer = gated * (first_input + hidden) + gated * biases;
  const double upper_layer = gated * (hidden + hidden) + gated * biases;
  const double output_kernel = spec.tie_embeddings ? 0.0 : hidden * vocab;  // tied: the embedding serves
  return (spec.embedding_size > 0 ? vocab * embedding : 0.0) + first_layer + (layers - 1) * upper_layer +
         output_kernel + vocab;
}

double WorkspaceFloats(const ModelSpec& spec, double steps, double batch) {
  const double rows = steps * batch;  // T*B
  const double vocab = spec.vocab_size, embedding = spec.embedding_size, hidden = spec.hidden_size;
  const double gated = static_cast<double>(spec.LayerShape(0).gates()) * hidden;
  // Per layer and row, at most (RecurrentLayer): gates, d_gates, d_rec (gH each); h_seq, h_masked, c_seq, tanh_c,
  // aux, the dropout input and mask (H each); bf16 mirrors are smaller than the float buffers they round.
  const double per_layer_row = 3 * gated + 7 * hidden;
  // The stack's top (MakeWorkspace): logits and probs (V each), the two gradient buffers (max(H, E) each), the
  // embedded rows and their mask (E each), output dropout (2H), token scale and row loss.
  const double top_row = 2 * vocab + 2 * std::max(hidden, embedding) + 2 * embedding + 2 * hidden + 2;
  // Not per row: weight_drop's mask and masked copy of each layer's w_h and one gradient of it (H x gH each), and
  // embedding_dropout's (V) factors.
  const double weight_drop = spec.weight_drop > 0 ? (2 * spec.num_layers + 1) * hidden * gated : 0.0;
  return rows * (spec.num_layers * per_layer_row + top_row) + weight_drop + vocab;
}

ParamLayout::ParamLayout(const ModelSpec& spec) {
  auto add = [this](std::string name, TensorKind kind, int rows, int cols) {
    tensors_.push_back({std::move(name), kind, total_, rows, cols});
    total_ += tensors_.back().size();
    return TensorPlace{tensors_.back().offset, tensors_.back().size()};
  };
  if (spec.embedding_size > 0) {
    embedding_ = add("embedding", TensorKind::kEmbedding, spec.vocab_size, spec.embedding_size);
  }
  for (int l = 0; l < spec.num_layers; ++l) {
    const RecurrentShape shape = spec.LayerShape(l);
    const int gh = shape.gates() * shape.hidden_size;
    const std::string prefix = "layer" + std::to_string(l) + ".";
    LayerTensors<TensorPlace> layer;
    layer.w_x = add(prefix + "w_x", TensorKind::kInputKernel, shape.input_size, gh);
    layer.w_h = add(prefix + "w_h", TensorKind::kRecurrentKernel, shape.hidden_size, gh);
    layer.b = add(prefix + "b", TensorKind::kBias, 1, gh);
    if (shape.has_recurrent_bias()) layer.b_h = add(prefix + "b_h", TensorKind::kRecurrentBias, 1, gh);
    layers_.push_back(layer);
  }
  // Tied: no output.w; the output layer reads the embedding transposed (OutputKernel).
  if (!spec.tie_embeddings) output_w_ = add("output.w", TensorKind::kOutputKernel, spec.hidden_size, spec.vocab_size);
  output_b_ = add("output.b", TensorKind::kOutputBias, 1, spec.vocab_size);
}

const ParamTensor& ParamLayout::Get(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return t;
  }
  assert(false && "unknown parameter tensor");
  return tensors_.front();
}

bool ParamLayout::Has(const std::string& name) const {
  return std::any_of(tensors_.begin(), tensors_.end(), [&](const ParamTensor& t) { return t.name == name; });
}

template <typename T>
void RecurrentState<T>::Zero() {
  std::fill(h.begin(), h.end(), T(0));
  std::fill(c.begin(), c.end(), T(0));
}


template <typename T>
const T* WorkspaceLogits(const Workspace<T>& ws) {
  return ws.logits.data();
}

template <typename T>
CharModel<T>::CharModel(const ModelSpec& spec)
    : spec_(spec), layout_(spec), params_(layout_.total(), T(0)), grads_(layout_.total() + kReduceTail, T(0)) {
  assert(spec.vocab_size > 0 && spec.hidden_size > 0 && spec.num_layers > 0);
  assert(!spec.tie_embeddings || spec.embedding_size == spec.hidden_size);  // ValidateConfig says so to the user
}

void CheckFiniteOutput(double value, const std::string& origin, std::string_view what) {
  if (std::isfinite(value)) return;
  const std::string weights = origin.empty() ? "the model's weights" : "the weights of checkpoint " + origin;
  std::ostringstream shown;
  shown << value;
  throw UserError(weights + " give a non-finite " + std::string(what) + " (" + shown.str() + ")" +
                  ": they overflow float32 (weights near its largest value, 3.4e38, are finite but their products "
                  "are not), so nothing computed from them means anything; use a checkpoint with trained, finite-sized "
                  "weights");
}

void CheckFinitePerplexity(double mean_loss, const std::string& origin) {
  if (std::isfinite(std::exp(mean_loss))) return;
  const std::string weights = origin.empty() ? "the model's weights" : "the weights of checkpoint " + origin;
  char loss[64];
  std::snprintf(loss, sizeof loss, "%.4g", mean_loss);
  throw UserError(weights + " give a loss of " + loss + " nats per character, whose perplexity (e to the loss) "
                  "overflows: no trained model is that far off (a uniform guess costs the log of the vocabulary's "
                  "size), so their logits are out of scale; use a checkpoint with trained, finite-sized weights");
}

template <typename T>
CharModel<T>::~CharModel() = default;
template <typename T>
CharModel<T>::CharModel(CharModel&&) noexcept = default;

template <typename T>
void CharModel<T>::set_precision(Precision precision) {
  assert((precision == Precision::kFp32 || std::is_same_v<T, float>));
  precision_ = precision;
}

template <typename T>
void CharModel<T>::ZeroGrads() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <typename T>
RecurrentState<T> CharModel<T>::MakeState(int batch) const {
  RecurrentState<T> state;
  state.num_layers = spec_.num_layers;
  state.batch = batch;
  state.hidden = spec_.hidden_size;
  const std::size_t n = static_cast<std::size_t>(spec_.num_layers) * batch * spec_.hidden_size;
  state.h.assign(n, T(0));
  if (spec_.cell == CellKind::kLstm) state.c.assign(n, T(0));
  return state;
}

template <typename T>
void CharModel<T>::set_engine(Engine engine) {
  if (engine == Engine::kOnednn) {
    for (int l = 0; l < spec_.num_layers; ++l) {
      std::string why = OnednnRecurrentRefusal(spec_.LayerShape(l), spec_.recurrent_dropout);
      if (why.empty() && !std::is_same_v<T, float>) why = "oneDNN's RNN primitive runs float only";
      if (!why.empty()) throw UserError("train.engine \"onednn\" cannot run this model: " + why +
                                        "; use train.engine \"charlm\"");
    }
  }
  engine_ = engine;
}

template <typename T>
std::unique_ptr<Workspace<T>> CharModel<T>::MakeWorkspace(int max_steps, int max_batch) const {
  return MakeWorkspaceOn(max_steps, max_batch, engine_);
}

template <typename T>
std::unique_ptr<Workspace<T>> CharModel<T>::MakeWorkspaceOn(int max_steps, int max_batch, Engine engine) const {
  auto ws = std::make_unique<Workspace<T>>();
  ws->max_steps = max_steps;
  ws->max_batch = max_batch;
  const std::size_t n = static_cast<std::size_t>(max_steps) * max_batch;
  const int h = spec_.hidden_size, e = spec_.embedding_size, v = spec_.vocab_size;
  ws->layers.reserve(spec_.num_layers);
  ws->inputs_l.resize(spec_.num_layers);
  ws->masks_l.resize(spec_.num_layers);
  ws->rec_masks.resize(spec_.num_layers);
  for (int l = 0; l < spec_.num_layers; ++l) {
    ws->layers.emplace_back(spec_.LayerShape(l), max_steps, max_batch, precision_, engine);
    if (spec_.dropout > 0 && l > 0) ws->inputs_l[l].resize(n * h);
    if (spec_.dropout > 0 && (l > 0 || e > 0)) ws->masks_l[l].resize(n * (l > 0 ? h : e));
    if (spec_.recurrent_dropout > 0) ws->rec_masks[l].resize(static_cast<std::size_t>(max_batch) * h);
  }
  if (spec_.weight_drop > 0) {
    const std::size_t kernel = static_cast<std::size_t>(h) * spec_.LayerShape(0).gates() * h;  // (H, gH)
    ws->w_h_masks.assign(spec_.num_layers, std::vector<T>(kernel));
    ws->w_h_dropped.assign(spec_.num_layers, std::vector<T>(kernel));
    if (precision_ == Precision::kBf16) ws->w_h_dropped_bf16.assign(spec_.num_layers, std::vector<Bf16>(kernel));
    ws->d_w_h_dropped.resize(kernel);
  }
  if (spec_.embedding_dropout > 0) ws->vocab_scale.resize(v);
  if (e > 0) ws->embedded.resize(n * e);
  if (e == 0 && (spec_.dropout > 0 || spec_.embedding_dropout > 0)) ws->token_scale.resize(n);
  if (spec_.dropout > 0) {
    ws->output_in.resize(n * h);
    ws->output_mask.resize(n * h);
  }
  ws->logits.resize(n * v);
  ws->probs.resize(n * v);
  ws->row_loss.resize(n);
  ws->d_hidden_a.resize(n * std::max(h, e));
  ws->d_hidden_b.resize(n * std::max(h, e));
  if (precision_ == Precision::kBf16) {
    ws->params_bf16.resize(layout_.total());
    ws->output_in_bf16.resize(n * h);
    ws->d_logits_bf16.resize(n * v);
  }
  return ws;
}

template <typename T>
std::unique_ptr<Workspace<T>> CharModel<T>::MakeGenerationWorkspace(int max_steps, ColumnThreads* threads,
                                                                     int max_batch) const {
  auto ws = MakeWorkspaceOn(max_steps, max_batch, Engine::kCharlm);  // one-step products, the input table
  ws->threads = threads;
  ws->params_bf16_fixed = true;
  for (RecurrentLayer<T>& layer : ws->layers) layer.set_threads(threads);
  const std::size_t rows = static_cast<std::size_t>(spec_.vocab_size);
  const std::size_t cols = static_cast<std::size_t>(spec_.LayerShape(0).gates()) * spec_.hidden_size;
  if (spec_.embedding_size > 0 && rows * cols * sizeof(T) <= kMaxInputTableBytes) {
    ws->input_table = std::make_unique_for_overwrite<T[]>(rows * cols);  // untouched until a row is filled
    ws->input_table_ready.assign(rows, 0);
    if (max_batch > 1) ws->input_table_rows.resize(static_cast<std::size_t>(max_batch) * cols);
  }
  return ws;
}

template <typename T>
const Bf16* CharModel<T>::Bf16Mirror(const Workspace<T>& ws, const T* param) const {
  return ws.params_bf16.empty() ? nullptr : ws.params_bf16.data() + (param - params_.data());
}

template <typename T>
RecurrentParams<T> CharModel<T>::LayerParams(int l, const Workspace<T>& ws) const {
  const LayerTensors<std::span<const T>> layer = param_tensors().layer(l);
  RecurrentParams<T> params{layer.w_x.data(),
                            layer.w_h.data(),
                            layer.b.data(),
                            layer.b_h.empty() ? nullptr : layer.b_h.data(),
                            Bf16Mirror(ws, layer.w_x.data()),
                            Bf16Mirror(ws, layer.w_h.data())};
  if (WeightDropOn(ws)) {  // the layer reads the masked copy Forward made, in both passes
    params.w_h = ws.w_h_dropped[l].data();
    params.w_h_bf16 = ws.w_h_dropped_bf16.empty() ? nullptr : ws.w_h_dropped_bf16[l].data();
  }
  return params;
}

template <typename T>
RecurrentGrads<T> CharModel<T>::LayerGrads(int l) {
  const LayerTensors<std::span<T>> layer = grad_tensors().layer(l);
  return {layer.w_x.data(), layer.w_h.data(), layer.b.data(), layer.b_h.empty() ? nullptr : layer.b_h.data()};
}

template <typename T>
const T* CharModel<T>::OutputKernel() const {
  return spec_.tie_embeddings ? param_tensors().embedding().data() : param_tensors().output_w().data();
}

template <typename T>
const T* CharModel<T>::LayerInput(const Workspace<T>& ws, int l) const {
  return ws.training && spec_.dropout > 0 ? ws.inputs_l[l].data() : ws.layers[l - 1].hidden_sequence();
}

namespace {

// Softmax work (rows x vocabulary) from which Forward splits it over the row threads.
constexpr long kMinSoftmaxSplitWork = 1L << 20;

// Reductions over a logits row keep kLanes independent partial results so GCC can vectorize them without
// reassociating float sums (which it may not do on its own): a single running sum is a chain of dependent
// adds, 2,583 of them per token for the lyrics vocabulary.
constexpr int kLanes = 16;

// row[j] += bias[j]; returns max_j row[j].
template <typename T>
T AddBiasAndMax(const T* __restrict bias, int v, T* __restrict row) {
  T lane_max[kLanes];
  std::fill(lane_max, lane_max + kLanes, -std::numeric_limits<T>::infinity());
  int j = 0;
  for (; j + kLanes <= v; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      row[j + l] += bias[j + l];
      lane_max[l] = row[j + l] > lane_max[l] ? row[j + l] : lane_max[l];
    }
  }
  T result = *std::max_element(lane_max, lane_max + kLanes);
  for (; j < v; ++j) {
    row[j] += bias[j];
    result = std::max(result, row[j]);
  }
  return result;
}

// Returns the sum of exp(row[j] - shift); with kStore also writes each term to p[j]. The same lanes and order
// either way, so scoring alone (evaluation) gives the bits of the loss training computes.
template <bool kStore, typename T>
T ExpShiftedAndSum(const T* __restrict row, int v, T shift, T* __restrict p) {
  T lane_sum[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= v; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T term = Exp(row[j + l] - shift);
      if constexpr (kStore) p[j + l] = term;
      lane_sum[l] += term;
    }
  }
  T sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lane_sum[l];
  for (; j < v; ++j) {
    const T term = Exp(row[j] - shift);
    if constexpr (kStore) p[j] = term;
    sum += term;
  }
  return sum;
}

// Fills a (steps * batch, width) time-major mask with 0 or 1/(1-p) (inverted dropout, so evaluation needs no
// rescaling). Row t * batch + b belongs to global stream first_stream + b, whose values come from its own Rng seeded
// by (seed, purpose, stream): the masks do not depend on how the streams are split among processes. `locked`
// (variational dropout, model.locked_dropout): each stream draws one row and repeats it at every step.
template <typename T>
void FillDropoutMask(std::uint64_t seed, std::uint64_t purpose, double p, T* mask, int steps, int batch, int width,
                     int first_stream, bool locked = false) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  const auto w = static_cast<std::size_t>(width);
  for (int b = 0; b < batch; ++b) {
    Rng rng(MixSeed(MixSeed(seed, purpose), static_cast<std::uint64_t>(first_stream + b)));
    const T* first_row = mask + static_cast<std::size_t>(b) * w;  // step 0's row of this stream
    for (int t = 0; t < steps; ++t) {
      T* row = mask + (static_cast<std::size_t>(t) * batch + b) * w;
      if (locked && t > 0) {
        std::copy_n(first_row, w, row);
        continue;
      }
      for (std::size_t k = 0; k < w; ++k) row[k] = rng.Uniform() < p ? T(0) : keep_scale;
    }
  }
}

// One-hot input under locked dropout: the input is a V-wide one-hot row whose locked mask is one (V) draw per
// stream, of which only the hot entry matters; so token (t, b)'s factor is a pure function of (seed, purpose,
// stream, token), the same at every step, with no (B, V) mask stored. Writes (steps * batch) factors.
template <typename T>
void FillLockedTokenScale(std::uint64_t seed, std::uint64_t purpose, double p, const int* tokens, T* scale, int steps,
                          int batch, int first_stream) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for (int t = 0; t < steps; ++t) {
    for (int b = 0; b < batch; ++b) {
      const std::size_t r = static_cast<std::size_t>(t) * batch + b;
      const std::uint64_t stream_seed = MixSeed(MixSeed(seed, purpose), static_cast<std::uint64_t>(first_stream + b));
      Rng rng(MixSeed(stream_seed, static_cast<std::uint64_t>(tokens[r])));
      scale[r] = rng.Uniform() < p ? T(0) : keep_scale;
    }
  }
}

// Fills `count` factors 0 or 1/(1-p) from one Rng seeded by (seed, purpose) alone: the masks shared by every stream
// and every process of a training step (weight_drop's on w_h, embedding_dropout's over the vocabulary).
template <typename T>
void FillSharedMask(std::uint64_t seed, std::uint64_t purpose, double p, T* mask, std::size_t count) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  Rng rng(MixSeed(seed, purpose));
  for (std::size_t k = 0; k < count; ++k) mask[k] = rng.Uniform() < p ? T(0) : keep_scale;
}

}  // namespace

template <typename T>
T CharModel<T>::Forward(Workspace<T>& ws, const int* inputs, const int* targets, int steps, int batch,
                        RecurrentState<T>& state, const ForwardMode& mode) const {
  assert(steps <= ws.max_steps && batch <= ws.max_batch && state.batch == batch);
  ws.steps = steps;
  ws.batch = batch;
  ws.inputs = inputs;
  ws.targets = targets;
  const bool dropout = mode.training && spec_.dropout > 0;
  const bool rec_dropout = mode.training && spec_.recurrent_dropout > 0;
  const bool embedding_drop = mode.training && spec_.embedding_dropout > 0;
  const bool locked = spec_.locked_dropout;
  ws.training = mode.training;
  ws.probs_kept = targets != nullptr && mode.keep_probs;
  // One purpose per mask, each drawn per stream (FillDropoutMask): input, layer l's input, layer l's recurrent
  // mask, output; then the masks shared by all streams (FillSharedMask): layer l's w_h, the vocabulary's.
  const std::uint64_t seed = mode.dropout_seed;
  const int first = mode.first_stream, layers = spec_.num_layers;
  const auto input_purpose = [](int l) { return static_cast<std::uint64_t>(l); };
  const auto recurrent_purpose = [layers](int l) { return static_cast<std::uint64_t>(layers + l); };
  const auto output_purpose = static_cast<std::uint64_t>(2 * layers);
  const auto weight_drop_purpose = [layers](int l) { return static_cast<std::uint64_t>(2 * layers + 1 + l); };
  const auto embedding_purpose = static_cast<std::uint64_t>(3 * layers + 1);
  if (embedding_drop) {
    FillSharedMask(seed, embedding_purpose, spec_.embedding_dropout, ws.vocab_scale.data(), ws.vocab_scale.size());
  }
  const int n = steps * batch, h = spec_.hidden_size, e = spec_.embedding_size, v = spec_.vocab_size;
  const bool bf16 = precision_ == Precision::kBf16;
  assert(bf16 == !ws.params_bf16.empty());  // the workspace was made for this precision
  if constexpr (std::is_same_v<T, float>) {
    if (bf16 && !(ws.params_bf16_fixed && ws.params_bf16_ready)) {
      ConvertToBf16(params_.data(), params_.size(), ws.params_bf16.data());
      ws.params_bf16_ready = true;
    }
  }
  const ParamView<const T> weights = param_tensors();

  RecurrentInput<T> input;
  if (e > 0 && steps == 1 && targets == nullptr && !mode.training && ws.input_table != nullptr) {
    // Generation: layer 0's x w_x from the input table, computed here on the token's first use exactly as
    // ProjectInput would compute it for this one row (SplitGemm, beta 0, bias added later in the step kernel; a
    // few rows go through GemmFewRows, whose rows have the bits of one-row products).
    const int g = spec_.LayerShape(0).gates() * h;
    for (int r = 0; r < batch; ++r) {
      assert(inputs[r] >= 0 && inputs[r] < v);
      const auto token = static_cast<std::size_t>(inputs[r]);
      T* row = ws.input_table.get() + token * g;
      if (ws.input_table_ready[token] == 0) {
        const T* embedding_row = weights.embedding().data() + token * e;  // (E)
        const T* w_x = weights.layer(0).w_x.data();                      // (E, gH)
        Product<T>(ws.threads, false, false, 1, g, e, {embedding_row, Bf16Mirror(ws, embedding_row), e},
                   {w_x, Bf16Mirror(ws, w_x), g}, T(0), row, g);
        ws.input_table_ready[token] = 1;
      }
      if (batch == 1) {
        input.projected = row;
      } else {
        assert(ws.input_table_rows.size() >= static_cast<std::size_t>(batch) * g);
        std::copy_n(row, g, ws.input_table_rows.data() + static_cast<std::size_t>(r) * g);
        input.projected = ws.input_table_rows.data();
      }
    }
  } else if (e > 0) {
    const T* table = weights.embedding().data();  // (V, E)
    for (int r = 0; r < n; ++r) {
      assert(inputs[r] >= 0 && inputs[r] < v);
      std::copy(table + static_cast<std::size_t>(inputs[r]) * e, table + static_cast<std::size_t>(inputs[r] + 1) * e,
                ws.embedded.data() + static_cast<std::size_t>(r) * e);
    }
    if (dropout) {
      FillDropoutMask(seed, input_purpose(0), spec_.dropout, ws.masks_l[0].data(), steps, batch, e, first, locked);
      for (std::size_t k = 0; k < static_cast<std::size_t>(n) * e; ++k) ws.embedded[k] *= ws.masks_l[0][k];
    }
    if (embedding_drop) {  // a dropped character's row is zero wherever it occurs
      for (int r = 0; r < n; ++r) {
        const T scale = ws.vocab_scale[inputs[r]];
        T* row = ws.embedded.data() + static_cast<std::size_t>(r) * e;  // (E)
        for (int j = 0; j < e; ++j) row[j] *= scale;
      }
    }
    input.dense = ws.embedded.data();
  } else {
    input.tokens = inputs;
    T* token_scale = ws.token_scale.data();  // (T*B)
    if (dropout && locked) {
      FillLockedTokenScale(seed, input_purpose(0), spec_.dropout, inputs, token_scale, steps, batch, first);
    } else if (dropout) {
      FillDropoutMask(seed, input_purpose(0), spec_.dropout, token_scale, steps, batch, 1, first);
    } else if (embedding_drop) {
      std::fill_n(token_scale, n, T(1));
    }
    if (embedding_drop) {
      for (int r = 0; r < n; ++r) token_scale[r] *= ws.vocab_scale[inputs[r]];
    }
    if (dropout || embedding_drop) input.token_scale = token_scale;
  }

  for (int l = 0; l < spec_.num_layers; ++l) {
    if (l > 0) {
      if (dropout) {
        const T* below = ws.layers[l - 1].hidden_sequence();
        T* in = ws.inputs_l[l].data();
        const std::size_t count = static_cast<std::size_t>(n) * h;
        FillDropoutMask(seed, input_purpose(l), spec_.dropout, ws.masks_l[l].data(), steps, batch, h, first, locked);
        for (std::size_t k = 0; k < count; ++k) in[k] = below[k] * ws.masks_l[l][k];
      }
      input = RecurrentInput<T>{};
      input.dense = LayerInput(ws, l);
    }
    const T* rec_mask = nullptr;
    if (rec_dropout) {
      FillDropoutMask(seed, recurrent_purpose(l), spec_.recurrent_dropout, ws.rec_masks[l].data(), 1, batch, h, first);
      rec_mask = ws.rec_masks[l].data();
    }
    if (WeightDropOn(ws)) {  // DropConnect: the layer runs on w_h * mask (LayerParams points it there)
      const std::span<const T> w_h = weights.layer(l).w_h;  // (H, gH)
      std::vector<T>& mask = ws.w_h_masks[l];               // (H, gH)
      std::vector<T>& dropped = ws.w_h_dropped[l];          // (H, gH)
      assert(mask.size() == w_h.size() && dropped.size() == w_h.size());
      FillSharedMask(seed, weight_drop_purpose(l), spec_.weight_drop, mask.data(), mask.size());
      for (std::size_t k = 0; k < w_h.size(); ++k) dropped[k] = w_h[k] * mask[k];
      if constexpr (std::is_same_v<T, float>) {
        if (bf16) ConvertToBf16(dropped.data(), dropped.size(), ws.w_h_dropped_bf16[l].data());
      }
    }
    T* h_state = state.LayerH(l);
    T* c_state = state.LayerC(l);
    ws.layers[l].set_row_threads(ws.row_threads);
    ws.layers[l].set_phase_times(ws.phase_times);
    ws.layers[l].Forward(input, steps, batch, LayerParams(l, ws), rec_mask, h_state, c_state, h_state, c_state);
  }

  const T* top = ws.layers.back().hidden_sequence();  // (T*B, H)
  if (dropout) {
    const std::size_t count = static_cast<std::size_t>(n) * h;
    FillDropoutMask(seed, output_purpose, spec_.dropout, ws.output_mask.data(), steps, batch, h, first, locked);
    for (std::size_t k = 0; k < count; ++k) ws.output_in[k] = top[k] * ws.output_mask[k];
    top = ws.output_in.data();
  }
  const bool tied = spec_.tie_embeddings;
  const T* w_out = OutputKernel();             // (H, V), or tied the embedding (V, H) read transposed
  const T* b_out = weights.output_b().data();  // (V)
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) ConvertToBf16(top, static_cast<std::size_t>(n) * h, ws.output_in_bf16.data());
  }
  const Bf16* top_bf16 = bf16 ? ws.output_in_bf16.data() : nullptr;  // (T*B, H)
  Product<T>(ws.threads, false, tied, n, v, h, {top, top_bf16, h}, {w_out, Bf16Mirror(ws, w_out), tied ? h : v}, T(0),
             ws.logits.data(), v);  // + bias below
  PhaseTimer softmax_timer(ws.phase_times != nullptr ? &ws.phase_times->softmax : nullptr);
  T* row_loss = ws.row_loss.data();  // (T*B)
  // Split only when large: the worker has gone to sleep during the output product, and waking it cost more than
  // half of char-rnn's 0.15 ms softmax (V 65) while d2l's 1.6-1.8 ms (V 2,583) ran 12-31 % faster on two threads.
  const long softmax_work = static_cast<long>(n) * v;
  ParallelRanges(ws.row_threads, n, 1, softmax_work >= kMinSoftmaxSplitWork ? softmax_work : 0, [&](int begin, int end) {
    for (int r = begin; r < end; ++r) {
      T* row = ws.logits.data() + static_cast<std::size_t>(r) * v;
      T* p = ws.probs.data() + static_cast<std::size_t>(r) * v;
      const T max_logit = AddBiasAndMax(b_out, v, row);
      if (targets == nullptr) continue;
      // Fused, max-shifted softmax cross-entropy; probs are kept for the backward pass.
      assert(targets[r] >= 0 && targets[r] < v);
      if (!mode.keep_probs) {
        row_loss[r] = std::log(ExpShiftedAndSum<false>(row, v, max_logit, p)) - (row[targets[r]] - max_logit);
        continue;
      }
      const T sum = ExpShiftedAndSum<true>(row, v, max_logit, p);
      const T inv = T(1) / sum;
      for (int j = 0; j < v; ++j) p[j] *= inv;
      row_loss[r] = std::log(sum) - (row[targets[r]] - max_logit);
    }
  });
  if (targets == nullptr) return T(0);
  double loss_sum = 0.0;  // in row order, whatever the split
  for (int r = 0; r < n; ++r) loss_sum += static_cast<double>(row_loss[r]);
  return static_cast<T>(loss_sum / n);
}

namespace {

// What layer l reads, as the backward passes take it: `below` (layer l - 1's output, l > 0), else the embedded rows
// (with an embedding), else the ids with their dropout factors (or null).
template <typename T>
RecurrentInput<T> BackwardInput(int l, const T* below, const T* embedded, const int* tokens, const T* token_scale) {
  RecurrentInput<T> input;
  if (l > 0) {
    input.dense = below;
  } else if (embedded != nullptr) {
    input.dense = embedded;
  } else {
    input.tokens = tokens;
    input.token_scale = token_scale;
  }
  return input;
}

}  // namespace

template <typename T>
void CharModel<T>::Backward(Workspace<T>& ws, RecurrentState<T>* d_initial_state, BackwardListener* listener) {
  assert(ws.targets != nullptr && ws.probs_kept);
  const int n = ws.steps * ws.batch, h = spec_.hidden_size, e = spec_.embedding_size, v = spec_.vocab_size;
  const bool dropout = ws.training && spec_.dropout > 0;
  const bool embedding_drop = ws.training && spec_.embedding_dropout > 0;
  const bool tied = spec_.tie_embeddings;

  // dL/dlogits = (softmax - onehot) / (T*B): the loss is a mean over tokens.
  // The output bias gradient (column sums of dL/dlogits) is accumulated in the same pass.
  // One thread: split by columns over ws.row_threads (each column's sum still in row order) this pass ran at
  // half the speed on two threads (1.13-1.17 ms against 0.55-0.63 per d2l step, docs/benchmarks.md).
  T* d_logits = ws.probs.data();
  const T inv_n = T(1) / static_cast<T>(n);
  {
    PhaseTimer timer(ws.phase_times != nullptr ? &ws.phase_times->softmax_backward : nullptr);
    T* __restrict gb_out = grad_tensors().output_b().data();  // (V)
    for (int r = 0; r < n; ++r) {
      T* __restrict row = d_logits + static_cast<std::size_t>(r) * v;
      row[ws.targets[r]] -= T(1);
      for (int j = 0; j < v; ++j) {
        row[j] *= inv_n;
        gb_out[j] += row[j];
      }
    }
  }
  // In bf16, the operands' mirrors: the output layer's input rounded by Forward, dL/dlogits rounded here.
  const bool bf16 = !ws.params_bf16.empty();
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) ConvertToBf16(d_logits, static_cast<std::size_t>(n) * v, ws.d_logits_bf16.data());
  }
  const Operand<T> top{dropout ? ws.output_in.data() : ws.layers.back().hidden_sequence(),
                       bf16 ? ws.output_in_bf16.data() : nullptr, h};  // (T*B, H)
  const Operand<T> d_logits_op{d_logits, bf16 ? ws.d_logits_bf16.data() : nullptr, v};  // (T*B, V)
  if (tied) {
    // The output path's share of the embedding's gradient, (V, H) = dL/dlogits^T top; the input path's share is
    // added at the end, so the embedding's gradient is final only then.
    T* g_embedding = grad_tensors().embedding().data();  // (V, H)
    Product<T>(ws.threads, true, false, v, h, n, d_logits_op, top, T(1), g_embedding, h);  // null threads: exactly Gemm
    if (listener != nullptr) listener->GradientsFinalFrom(layout_.output_b().offset);  // output.b
  } else {
    T* gw_out = grad_tensors().output_w().data();  // (H, V)
    Product<T>(ws.threads, true, false, h, v, n, top, d_logits_op, T(1), gw_out, v);  // null threads: exactly Gemm
    if (listener != nullptr) listener->GradientsFinalFrom(layout_.output_w().offset);  // output.w, output.b
  }
  T* d_top = ws.d_hidden_a.data();  // (T*B, H)
  const T* w_out_fp32 = OutputKernel();  // (H, V), or tied (V, H)
  const Operand<T> w_out{w_out_fp32, Bf16Mirror(ws, w_out_fp32), tied ? h : v};
  // ws.threads: null in training (exactly Gemm); dynamic evaluation's segments set it for their few rows.
  Product<T>(ws.threads, false, !tied, n, h, v, d_logits_op, w_out, T(0), d_top, h);
  if (dropout) {
    for (std::size_t k = 0; k < static_cast<std::size_t>(n) * h; ++k) d_top[k] *= ws.output_mask[k];
  }

  T* d_below = ws.d_hidden_b.data();
  for (int l = spec_.num_layers - 1; l >= 0; --l) {
    const RecurrentInput<T> input =
        BackwardInput<T>(l, l > 0 ? LayerInput(ws, l) : nullptr, e > 0 ? ws.embedded.data() : nullptr, ws.inputs,
                         dropout || embedding_drop ? ws.token_scale.data() : nullptr);
    const bool needs_d_input = l > 0 || e > 0;
    T* d_h0 = d_initial_state != nullptr ? d_initial_state->LayerH(l) : nullptr;
    T* d_c0 = d_initial_state != nullptr ? d_initial_state->LayerC(l) : nullptr;
    RecurrentGrads<T> grads = LayerGrads(l);
    T* const g_w_h = grads.w_h;  // (H, gH)
    if (WeightDropOn(ws)) {      // the layer's w_h gradient is that of the masked copy, taken through the mask below
      std::fill(ws.d_w_h_dropped.begin(), ws.d_w_h_dropped.end(), T(0));
      grads.w_h = ws.d_w_h_dropped.data();
    }
    ws.layers[l].Backward(input, LayerParams(l, ws), d_top, grads, needs_d_input ? d_below : nullptr, d_h0, d_c0,
                          listener);
    if (WeightDropOn(ws)) {
      const std::vector<T>& mask = ws.w_h_masks[l];  // (H, gH)
      for (std::size_t k = 0; k < mask.size(); ++k) g_w_h[k] += ws.d_w_h_dropped[k] * mask[k];
    }
    if (listener != nullptr) listener->GradientsFinalFrom(layout_.layer(l).w_x.offset);  // the layout's first of layer l
    if (!needs_d_input) break;
    const int width = l > 0 ? h : e;
    if (dropout) {
      for (std::size_t k = 0; k < static_cast<std::size_t>(n) * width; ++k) d_below[k] *= ws.masks_l[l][k];
    }
    if (l == 0) {  // embedding: scatter the rows back to the looked-up entries
      ws.d_embedded = d_below;
      T* g_table = grad_tensors().embedding().data();  // (V, E)
      for (int r = 0; r < n; ++r) {
        T* g_row = g_table + static_cast<std::size_t>(ws.inputs[r]) * e;
        const T* d_row = d_below + static_cast<std::size_t>(r) * e;
        if (embedding_drop) {  // through the character's factor (0 for a dropped one)
          const T scale = ws.vocab_scale[ws.inputs[r]];
          for (int j = 0; j < e; ++j) g_row[j] += d_row[j] * scale;
        } else {
          for (int j = 0; j < e; ++j) g_row[j] += d_row[j];
        }
      }
      if (listener != nullptr) listener->GradientsFinalFrom(layout_.embedding().offset);
    }
    std::swap(d_top, d_below);
  }
}

template <typename T>
void CharModel<T>::AddStreamGradientSquares(const Workspace<T>& ws, float scale, std::span<double> squares) const {
  if constexpr (std::is_same_v<T, float>) {
    assert(!ws.training && ws.probs_kept && !spec_.tie_embeddings && ws.params_bf16.empty());
    assert(squares.size() == layout_.total());
    const int streams = ws.batch, k = ws.steps, h = spec_.hidden_size, e = spec_.embedding_size, v = spec_.vocab_size;
    const ParamView<double> square{squares.data(), layout_};
    const float* top = ws.layers.back().hidden_sequence();  // (T*B, H)
    const float* d_logits = ws.probs.data();                // (T*B, V): dL/dlogits after Backward
    AddStreamProductSquares(h, v, k, streams, scale, top, streams * h, h, d_logits, streams * v, v,
                            square.output_w().data(), v);
    AddStreamProductSquares(1, v, k, streams, scale, nullptr, 0, 0, d_logits, streams * v, v,
                            square.output_b().data(), v);
    for (int l = 0; l < spec_.num_layers; ++l) {
      const RecurrentInput<T> input = BackwardInput<T>(l, l > 0 ? LayerInput(ws, l) : nullptr,
                                                       e > 0 ? ws.embedded.data() : nullptr, ws.inputs, nullptr);
      const LayerTensors<std::span<double>> layer = square.layer(l);
      ws.layers[l].AddStreamGradientSquares(input, scale,
                                            {layer.w_x.data(), layer.w_h.data(), layer.b.data(), layer.b_h.data()});
    }
    if (e > 0) {
      assert(ws.d_embedded != nullptr);
      std::vector<int> order;  // (T)
      std::vector<float> row;  // (E)
      AddStreamScatterSquares(e, k, streams, scale, ws.inputs, ws.d_embedded, streams * e, e,
                              square.embedding().data(), e, order, row);
    }
  } else {
    (void)ws;
    (void)scale;
    (void)squares;
    assert(false && "float only");
  }
}

namespace {

template <typename T>
void FillUniform(Rng& rng, T* out, std::size_t n, double bound) {
  for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<T>(rng.Uniform(-bound, bound));
}

template <typename T>
void FillNormal(Rng& rng, T* out, std::size_t n, double stddev) {
  for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<T>(stddev * rng.Normal());
}

// Keras' orthogonal initializer for a (rows, cols) kernel with rows <= cols: orthonormal rows, obtained here
// by modified Gram-Schmidt on Gaussian rows (in double, whatever T is).
template <typename T>
void FillOrthogonalRows(Rng& rng, T* out, int rows, int cols) {
  std::vector<double> m(static_cast<std::size_t>(rows) * cols);
  for (auto& x : m) x = rng.Normal();
  for (int i = 0; i < rows; ++i) {
    double* ri = m.data() + static_cast<std::size_t>(i) * cols;
    for (int j = 0; j < i; ++j) {
      const double* rj = m.data() + static_cast<std::size_t>(j) * cols;
      double dot = 0;
      for (int k = 0; k < cols; ++k) dot += ri[k] * rj[k];
      for (int k = 0; k < cols; ++k) ri[k] -= dot * rj[k];
    }
    double norm = 0;
    for (int k = 0; k < cols; ++k) norm += ri[k] * ri[k];
    norm = std::sqrt(norm);
    for (int k = 0; k < cols; ++k) ri[k] /= norm;
  }
  for (std::size_t k = 0; k < m.size(); ++k) out[k] = static_cast<T>(m[k]);
}

// The kinds of tensor the initializers tell apart.
bool IsBias(TensorKind kind) {
  return kind == TensorKind::kBias || kind == TensorKind::kRecurrentBias || kind == TensorKind::kOutputBias;
}
bool IsRecurrentLayer(TensorKind kind) {
  return kind == TensorKind::kInputKernel || kind == TensorKind::kRecurrentKernel || kind == TensorKind::kBias ||
         kind == TensorKind::kRecurrentBias;
}

}  // namespace

template <typename T>
void CharModel<T>::Initialize(InitScheme scheme, std::uint64_t seed) {
  const double h = spec_.hidden_size;
  // Each tensor draws from its own Rng, seeded by (seed, its index in the layout).
  for (std::size_t index = 0; index < layout_.tensors().size(); ++index) {
    const ParamTensor& tensor = layout_.tensors()[index];
    Rng rng(MixSeed(seed, index));
    T* data = params_.data() + tensor.offset;
    const TensorKind kind = tensor.kind;
    switch (scheme) {
      case InitScheme::kKeras:
        if (kind == TensorKind::kEmbedding) {
          FillUniform(rng, data, tensor.size(), 0.05);
        } else if (IsBias(kind)) {
          std::fill(data, data + tensor.size(), T(0));
          if (spec_.cell == CellKind::kLstm && kind == TensorKind::kBias) {
            std::fill(data + spec_.hidden_size, data + 2 * spec_.hidden_size, T(1));  // unit forget-gate bias
          }
        } else if (kind == TensorKind::kRecurrentKernel) {
          FillOrthogonalRows(rng, data, tensor.rows, tensor.cols);
        } else {  // glorot_uniform
          FillUniform(rng, data, tensor.size(), std::sqrt(6.0 / (tensor.rows + tensor.cols)));
        }
        break;
      case InitScheme::kPytorch:
        if (kind == TensorKind::kEmbedding) {
          FillNormal(rng, data, tensor.size(), 1.0);
        } else if (IsRecurrentLayer(kind)) {
          FillUniform(rng, data, tensor.size(), 1.0 / std::sqrt(h));
        } else {  // nn.Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
          FillUniform(rng, data, tensor.size(), 1.0 / std::sqrt(h));
        }
        break;
      case InitScheme::kD2l:
        if (IsBias(kind)) {
          std::fill(data, data + tensor.size(), T(0));
        } else {
          FillNormal(rng, data, tensor.size(), 0.01);
        }
        break;
    }
  }
}

template class CharModel<float>;
template class CharModel<double>;
template struct RecurrentState<float>;
template struct RecurrentState<double>;
template const float* WorkspaceLogits(const Workspace<float>&);
template const double* WorkspaceLogits(const Workspace<double>&);

}  // namespace charlm
