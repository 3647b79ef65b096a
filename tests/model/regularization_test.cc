// Proves the AWD-LSTM regularizers' masks: locked dropout's per-sequence masks, weight_drop's and embedding_dropout's
// masks shared by every sequence and process, none at evaluation, and tied embeddings' one tensor and summed gradient.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "model/model.h"
#include "util/rng.h"

namespace charlm {
namespace {

constexpr int kSteps = 6, kBatch = 3, kVocab = 7;

ModelSpec SmallSpec(CellKind cell, int embedding) {
  ModelSpec spec;
  spec.cell = cell;
  spec.vocab_size = kVocab;
  spec.embedding_size = embedding;
  spec.hidden_size = 5;
  spec.num_layers = 2;
  return spec;
}

template <typename T>
void Randomize(CharModel<T>& model, std::uint64_t seed) {
  Rng rng(seed);
  for (auto& p : model.params()) p = static_cast<T>(0.5 * rng.Uniform(-1, 1));
}

// (kSteps * kBatch) ids, time-major, every character several times.
std::vector<int> Tokens(std::uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(kSteps * kBatch);
  for (int& id : ids) id = static_cast<int>(rng.Below(kVocab));
  return ids;
}

// Row t*B + b of a (T*B, width) time-major buffer.
template <typename T>
std::vector<T> Row(const std::vector<T>& buffer, int t, int b, int width) {
  const auto begin = buffer.begin() + (static_cast<std::ptrdiff_t>(t) * kBatch + b) * width;
  return std::vector<T>(begin, begin + width);
}

template <typename T>
T RunForward(const CharModel<T>& model, Workspace<T>& ws, const std::vector<int>& x, const std::vector<int>& y,
             const ForwardMode& mode) {
  RecurrentState<T> state = model.MakeState(kBatch);
  return model.Forward(ws, x.data(), y.data(), kSteps, kBatch, state, mode);
}

TEST_CASE("locked dropout: each sequence's mask is the same at every time step and differs between sequences") {
  for (bool locked : {false, true}) {
    CAPTURE(locked);
    ModelSpec spec = SmallSpec(CellKind::kLstm, 4);
    spec.dropout = 0.5;
    spec.locked_dropout = locked;
    CharModel<double> model(spec);
    Randomize(model, 1);
    auto ws = model.MakeWorkspace(kSteps, kBatch);
    RunForward(model, *ws, Tokens(2), Tokens(3), ForwardMode{true, 99});
    const int h = spec.hidden_size;
    // The embedding's mask (E wide), layer 1's input mask and the output layer's (H wide).
    for (const auto& [mask, width] : {std::pair{&ws->masks_l[0], 4}, std::pair{&ws->masks_l[1], h},
                                      std::pair{&ws->output_mask, h}}) {
      bool same_over_steps = true;
      for (int b = 0; b < kBatch; ++b) {
        for (int t = 1; t < kSteps; ++t) same_over_steps = same_over_steps && Row(*mask, t, b, width) == Row(*mask, 0, b, width);
      }
      CHECK(same_over_steps == locked);
      CHECK(Row(*mask, 0, 0, width) != Row(*mask, 0, 1, width));
      CHECK(Row(*mask, 0, 1, width) != Row(*mask, 0, 2, width));
    }
  }
}

TEST_CASE("locked dropout: one-hot input keeps a character's factor for the whole sequence") {
  ModelSpec spec = SmallSpec(CellKind::kGru, 0);
  spec.dropout = 0.5;
  spec.locked_dropout = true;
  CharModel<double> model(spec);
  Randomize(model, 1);
  auto ws = model.MakeWorkspace(kSteps, kBatch);
  const std::vector<int> x = Tokens(4);
  RunForward(model, *ws, x, Tokens(5), ForwardMode{true, 7});
  int repeats = 0, zeros = 0;
  for (int b = 0; b < kBatch; ++b) {
    for (int t = 0; t < kSteps; ++t) {
      const double factor = ws->token_scale[t * kBatch + b];
      CHECK((factor == 0.0 || factor == 2.0));
      zeros += factor == 0.0;
      for (int u = 0; u < t; ++u) {
        if (x[u * kBatch + b] != x[t * kBatch + b]) continue;
        ++repeats;
        CHECK(ws->token_scale[u * kBatch + b] == factor);
      }
    }
  }
  CHECK(repeats > 0);
  CHECK(zeros > 0);
}

TEST_CASE("weight_drop: one mask on w_h per step, the same for every sequence and every stream offset") {
  for (CellKind cell : {CellKind::kGru, CellKind::kLstm}) {
    CAPTURE(EnumName(cell));
    ModelSpec spec = SmallSpec(cell, 0);
    spec.weight_drop = 0.5;
    CharModel<double> model(spec);
    Randomize(model, 3);
    auto ws = model.MakeWorkspace(kSteps, kBatch);
    // Every sequence the same: with no other mask, a per-sequence w_h would make their logits differ.
    std::vector<int> x(kSteps * kBatch), y(kSteps * kBatch);
    for (int t = 0; t < kSteps; ++t) {
      for (int b = 0; b < kBatch; ++b) {
        x[t * kBatch + b] = (t * 3) % kVocab;
        y[t * kBatch + b] = (t * 5 + 1) % kVocab;
      }
    }
    RunForward(model, *ws, x, y, ForwardMode{true, 5, 0});
    const std::vector<double> logits(ws->logits.begin(), ws->logits.begin() + kSteps * kBatch * kVocab);
    for (int t = 0; t < kSteps; ++t) {
      for (int b = 1; b < kBatch; ++b) {
        for (int j = 0; j < kVocab; ++j) {
          CHECK(logits[(t * kBatch + b) * kVocab + j] == doctest::Approx(logits[t * kBatch * kVocab + j]).epsilon(1e-12));
        }
      }
    }
    // The mask: 0 or 1/(1-p), some of each, w_h * mask in the copy, and no dependence on the streams held.
    const std::span<const double> w_h = model.param_tensors().layer(1).w_h;
    const std::vector<double> mask = ws->w_h_masks[1];
    int dropped = 0;
    for (std::size_t k = 0; k < mask.size(); ++k) {
      CHECK((mask[k] == 0.0 || mask[k] == 2.0));
      dropped += mask[k] == 0.0;
      CHECK(ws->w_h_dropped[1][k] == w_h[k] * mask[k]);
    }
    CHECK(dropped > 0);
    CHECK(dropped < static_cast<int>(mask.size()));
    CHECK(ws->w_h_masks[0] != ws->w_h_masks[1]);  // each layer its own
    RunForward(model, *ws, x, y, ForwardMode{true, 5, 17});
    CHECK(ws->w_h_masks[1] == mask);
    RunForward(model, *ws, x, y, ForwardMode{true, 6, 0});
    CHECK(ws->w_h_masks[1] != mask);  // a new step, a new mask
  }
}

TEST_CASE("embedding dropout: a dropped character is zero wherever it occurs, for embedding and one-hot input") {
  for (int embedding : {4, 0}) {
    CAPTURE(embedding);
    ModelSpec spec = SmallSpec(CellKind::kLstm, embedding);
    spec.embedding_dropout = 0.5;
    CharModel<double> model(spec);
    Randomize(model, 8);
    auto ws = model.MakeWorkspace(kSteps, kBatch);
    const std::vector<int> x = Tokens(9);
    RunForward(model, *ws, x, Tokens(10), ForwardMode{true, 21, 0});
    const std::vector<double> scale = ws->vocab_scale;
    int dropped_occurrences = 0, kept_occurrences = 0;
    for (int r = 0; r < kSteps * kBatch; ++r) {
      const double factor = scale[x[r]];
      CHECK((factor == 0.0 || factor == 2.0));
      if (embedding > 0) {
        const std::span<const double> table = model.param_tensors().embedding();
        for (int j = 0; j < embedding; ++j) {
          CHECK(ws->embedded[r * embedding + j] == table[x[r] * embedding + j] * factor);
        }
      } else {
        CHECK(ws->token_scale[r] == factor);
      }
      (factor == 0.0 ? dropped_occurrences : kept_occurrences) += 1;
    }
    CHECK(dropped_occurrences > 1);
    CHECK(kept_occurrences > 1);
    RunForward(model, *ws, x, Tokens(10), ForwardMode{true, 21, 11});
    CHECK(ws->vocab_scale == scale);  // the same for another process's streams
  }
}

TEST_CASE("regularizers: no mask at evaluation: the loss is the one without the keys, bit for bit") {
  for (CellKind cell : {CellKind::kGru, CellKind::kLstm}) {
    for (int embedding : {0, 4}) {
      CAPTURE(EnumName(cell));
      CAPTURE(embedding);
      ModelSpec plain = SmallSpec(cell, embedding);
      plain.dropout = 0.3;
      ModelSpec regularized = plain;
      regularized.locked_dropout = true;
      regularized.weight_drop = 0.5;
      regularized.embedding_dropout = 0.4;
      CharModel<float> a(plain), b(regularized);
      Randomize(a, 4);
      b.params() = a.params();
      auto ws_a = a.MakeWorkspace(kSteps, kBatch);
      auto ws_b = b.MakeWorkspace(kSteps, kBatch);
      const std::vector<int> x = Tokens(12), y = Tokens(13);
      const float eval_a = RunForward(a, *ws_a, x, y, ForwardMode{false, 3});
      const float eval_b = RunForward(b, *ws_b, x, y, ForwardMode{false, 3});
      CHECK(eval_a == eval_b);
      CHECK(RunForward(a, *ws_a, x, y, ForwardMode{true, 3}) != RunForward(b, *ws_b, x, y, ForwardMode{true, 3}));
    }
  }
}

TEST_CASE("tied embeddings: one tensor, no output.w, and the embedding's gradient is the sum of both paths'") {
  for (CellKind cell : {CellKind::kGru, CellKind::kLstm}) {
    CAPTURE(EnumName(cell));
    ModelSpec untied_spec = SmallSpec(cell, 5);  // embedding_size == hidden_size
    untied_spec.dropout = 0.2;
    ModelSpec tied_spec = untied_spec;
    tied_spec.tie_embeddings = true;
    CharModel<double> tied(tied_spec), untied(untied_spec);
    CHECK_FALSE(tied.layout().Has("output.w"));
    CHECK(untied.layout().Has("output.w"));
    CHECK(tied.layout().total() + 5 * kVocab == untied.layout().total());
    CHECK(ParameterCount(tied_spec) == static_cast<double>(tied.layout().total()));
    CHECK(tied.layout().output_w().size == 0);

    Randomize(tied, 6);
    // The untied model: the same tensors by name, and output.w (H, V) = embedding (V, H) transposed.
    for (const ParamTensor& t : tied.layout().tensors()) {
      const ParamTensor& u = untied.layout().Get(t.name);
      std::copy_n(tied.params().data() + t.offset, t.size(), untied.params().data() + u.offset);
    }
    const std::span<const double> embedding = tied.param_tensors().embedding();
    const std::span<double> output_w = untied.param_tensors().output_w();
    const int h = 5;
    for (int v = 0; v < kVocab; ++v) {
      for (int j = 0; j < h; ++j) output_w[j * kVocab + v] = embedding[v * h + j];
    }
    const std::vector<int> x = Tokens(14), y = Tokens(15);
    auto ws_t = tied.MakeWorkspace(kSteps, kBatch);
    auto ws_u = untied.MakeWorkspace(kSteps, kBatch);
    tied.ZeroGrads();
    untied.ZeroGrads();
    const double loss_t = RunForward(tied, *ws_t, x, y, ForwardMode{true, 8});
    const double loss_u = RunForward(untied, *ws_u, x, y, ForwardMode{true, 8});
    CHECK(loss_t == doctest::Approx(loss_u).epsilon(1e-14));
    tied.Backward(*ws_t, nullptr);
    untied.Backward(*ws_u, nullptr);
    const std::span<const double> g_embedding = tied.grad_tensors().embedding();
    const std::span<const double> g_input = untied.grad_tensors().embedding();
    const std::span<const double> g_output = untied.grad_tensors().output_w();
    double max_output_grad = 0;
    for (int v = 0; v < kVocab; ++v) {
      for (int j = 0; j < h; ++j) {
        const double sum = g_input[v * h + j] + g_output[j * kVocab + v];
        CHECK(g_embedding[v * h + j] == doctest::Approx(sum).epsilon(1e-12));
        max_output_grad = std::max(max_output_grad, std::abs(g_output[j * kVocab + v]));
      }
    }
    CHECK(max_output_grad > 1e-3);  // the output path does contribute
    for (const ParamTensor& t : tied.layout().tensors()) {
      if (t.kind == TensorKind::kEmbedding) continue;
      CAPTURE(t.name);
      const ParamTensor& u = untied.layout().Get(t.name);
      for (std::size_t k = 0; k < t.size(); ++k) {
        CHECK(tied.grads()[t.offset + k] == doctest::Approx(untied.grads()[u.offset + k]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("weight_drop: the workspace holds the masked copy and its bf16 mirror before the first step") {
  ModelSpec spec = SmallSpec(CellKind::kLstm, 4);
  spec.weight_drop = 0.3;
  CharModel<float> model(spec);
  auto ws = model.MakeWorkspace(kSteps, kBatch);
  const std::size_t kernel = static_cast<std::size_t>(spec.hidden_size) * 4 * spec.hidden_size;  // (H, gH)
  REQUIRE(ws->w_h_dropped.size() == 2);
  CHECK(ws->w_h_dropped[1].size() == kernel);
  CHECK(ws->w_h_masks[1].size() == kernel);
  CHECK(ws->d_w_h_dropped.size() == kernel);
  CHECK(ws->w_h_dropped_bf16.empty());  // fp32: no mirror
  const double bound = WorkspaceFloats(spec, kSteps, kBatch);
  CHECK(bound >= static_cast<double>(3 * kernel * 2));
}

}  // namespace
}  // namespace charlm
