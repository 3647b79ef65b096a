// Proves the recurrent core: finite-difference gradient checks in double, float vs double, chunked = whole,
// the loss at initialization, Keras parameter counts, and the BLAS wrapper against the naive loop.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <span>
#include <vector>

#include "ops/blas.h"
#include "model/model.h"
#include "util/rng.h"

namespace charlm {
namespace {

// max|a-n| / max(max(|a|+|n|), tiny): the relative error used by torch-rnn's gradient checks.
double RelativeError(std::span<const double> analytic, std::span<const double> numeric) {
  double max_diff = 0, max_scale = 1e-12;
  for (std::size_t k = 0; k < analytic.size(); ++k) {
    max_diff = std::max(max_diff, std::abs(analytic[k] - numeric[k]));
    max_scale = std::max(max_scale, std::abs(analytic[k]) + std::abs(numeric[k]));
  }
  return max_diff / max_scale;
}

struct Case {
  std::string name;
  ModelSpec spec;
};

std::vector<Case> GradientCases() {
  std::vector<Case> cases;
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    for (int layers : {1, 2}) {
      for (int embedding : {0, 3}) {
        std::vector<bool> variants = cell == CellKind::kGru ? std::vector<bool>{true, false} : std::vector<bool>{true};
        for (bool reset_after : variants) {
          ModelSpec spec;
          spec.cell = cell;
          spec.vocab_size = 5;
          spec.embedding_size = embedding;
          spec.hidden_size = 4;
          spec.num_layers = layers;
          spec.reset_after = reset_after;
          cases.push_back({std::string(EnumName(cell)) + (cell == CellKind::kGru && !reset_after ? "(reset_before)" : "") +
                               " layers=" + std::to_string(layers) + " embedding=" + std::to_string(embedding),
                           spec});
        }
      }
    }
  }
  ModelSpec relu;
  relu.cell = CellKind::kRnn;
  relu.activation = Activation::kRelu;
  relu.vocab_size = 5;
  relu.hidden_size = 4;
  relu.num_layers = 2;
  cases.push_back({"rnn relu layers=2", relu});
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    ModelSpec dropped;
    dropped.cell = cell;
    dropped.vocab_size = 5;
    dropped.embedding_size = 3;
    dropped.hidden_size = 4;
    dropped.num_layers = 2;
    dropped.dropout = 0.3;
    dropped.recurrent_dropout = 0.25;
    cases.push_back({std::string(EnumName(cell)) + " with dropout and recurrent dropout", dropped});
    dropped.embedding_size = 0;
    cases.push_back({std::string(EnumName(cell)) + " one-hot with dropout", dropped});
  }
  // AWD-LSTM regularization: every mask on, drawn from the same dropout_seed at each evaluation, so held fixed.
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    const std::string name(EnumName(cell));
    ModelSpec base;
    base.cell = cell;
    base.vocab_size = 5;
    base.hidden_size = 4;
    base.num_layers = 2;
    for (int embedding : {0, 4}) {
      const std::string input = embedding > 0 ? " embedding" : " one-hot";
      ModelSpec spec = base;
      spec.embedding_size = embedding;
      spec.dropout = 0.3;
      spec.locked_dropout = true;
      cases.push_back({name + input + " with locked dropout", spec});
      spec = base;
      spec.embedding_size = embedding;
      spec.weight_drop = 0.4;
      cases.push_back({name + input + " with weight_drop", spec});
      spec = base;
      spec.embedding_size = embedding;
      spec.embedding_dropout = 0.4;
      cases.push_back({name + input + " with embedding_dropout", spec});
    }
    ModelSpec tied = base;
    tied.embedding_size = 4;
    tied.tie_embeddings = true;
    cases.push_back({name + " with tied embeddings", tied});
    tied.dropout = 0.3;
    tied.locked_dropout = true;
    tied.recurrent_dropout = 0.25;
    tied.weight_drop = 0.4;
    tied.embedding_dropout = 0.3;
    cases.push_back({name + " with every AWD-LSTM regularizer and tied embeddings", tied});
    if (cell == CellKind::kGru) {  // the book's GRU reads w_h in two slices: both through weight_drop's mask
      tied.reset_after = false;
      cases.push_back({name + "(reset_before) with every AWD-LSTM regularizer and tied embeddings", tied});
    }
  }
  return cases;
}

constexpr int kSteps = 3, kBatch = 2;

struct Data {
  std::vector<int> inputs, targets;
};

Data RandomData(int vocab, int steps, int batch, std::uint64_t seed) {
  Rng rng(seed);
  Data d;
  for (int k = 0; k < steps * batch; ++k) {
    d.inputs.push_back(static_cast<int>(rng.Below(vocab)));
    d.targets.push_back(static_cast<int>(rng.Below(vocab)));
  }
  return d;
}

void RandomizeParams(CharModel<double>& model, std::uint64_t seed, double scale) {
  Rng rng(seed);
  for (auto& p : model.params()) p = scale * rng.Uniform(-1, 1);
}

RecurrentState<double> RandomState(const CharModel<double>& model, int batch, std::uint64_t seed) {
  RecurrentState<double> s = model.MakeState(batch);
  Rng rng(seed);
  for (auto& x : s.h) x = rng.Uniform(-0.8, 0.8);
  for (auto& x : s.c) x = rng.Uniform(-0.8, 0.8);
  return s;
}

TEST_CASE("model: gradients match central finite differences in double for every tensor and the initial state") {
  for (const Case& c : GradientCases()) {
    CAPTURE(c.name);
    CharModel<double> model(c.spec);
    RandomizeParams(model, 7, 0.6);
    const Data data = RandomData(c.spec.vocab_size, kSteps, kBatch, 11);
    const RecurrentState<double> state0 = RandomState(model, kBatch, 13);
    auto ws = model.MakeWorkspace(kSteps, kBatch);
    const ForwardMode mode{true, 12345};  // dropout masks are a function of the seed: the same at every evaluation

    auto loss_at = [&](const RecurrentState<double>& start) {
      RecurrentState<double> s = start;
      return model.Forward(*ws, data.inputs.data(), data.targets.data(), kSteps, kBatch, s, mode);
    };
    model.ZeroGrads();
    RecurrentState<double> s = state0;
    model.Forward(*ws, data.inputs.data(), data.targets.data(), kSteps, kBatch, s, mode);
    RecurrentState<double> d_state = model.MakeState(kBatch);
    model.Backward(*ws, &d_state);

    const double eps = 1e-6;
    for (const ParamTensor& tensor : model.layout().tensors()) {
      CAPTURE(tensor.name);
      std::vector<double> analytic, numeric;
      for (std::size_t k = 0; k < tensor.size(); ++k) {
        double& p = model.params()[tensor.offset + k];
        const double saved = p;
        p = saved + eps;
        const double plus = loss_at(state0);
        p = saved - eps;
        const double minus = loss_at(state0);
        p = saved;
        numeric.push_back((plus - minus) / (2 * eps));
        analytic.push_back(model.grads()[tensor.offset + k]);
      }
      CHECK(RelativeError(analytic, numeric) < 1e-5);
    }
    for (bool cell_state : {false, true}) {
      if (cell_state && state0.c.empty()) continue;
      CAPTURE(cell_state);
      std::vector<double> analytic = cell_state ? d_state.c : d_state.h, numeric;
      for (std::size_t k = 0; k < analytic.size(); ++k) {
        RecurrentState<double> plus = state0, minus = state0;
        (cell_state ? plus.c : plus.h)[k] += eps;
        (cell_state ? minus.c : minus.h)[k] -= eps;
        numeric.push_back((loss_at(plus) - loss_at(minus)) / (2 * eps));
      }
      CHECK(RelativeError(analytic, numeric) < 1e-5);
    }
  }
}

TEST_CASE("model: a layer's input gradient matches finite differences under a random projection") {
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    for (bool reset_after : {true, false}) {
      if (cell != CellKind::kGru && !reset_after) continue;
      CAPTURE(EnumName(cell));
      CAPTURE(reset_after);
      RecurrentShape shape{cell, 4, 5, Activation::kTanh, reset_after};
      const int steps = 3, batch = 2, n = steps * batch, g = shape.gates() * shape.hidden_size;
      Rng rng(99);
      auto random_vec = [&](std::size_t size, double scale) {
        std::vector<double> v(size);
        for (auto& x : v) x = scale * rng.Uniform(-1, 1);
        return v;
      };
      std::vector<double> w_x = random_vec(4 * g, 0.5), w_h = random_vec(5 * g, 0.5), b = random_vec(g, 0.5),
                          b_h = random_vec(g, 0.5), x = random_vec(n * 4, 1.0), h0 = random_vec(batch * 5, 0.5),
                          c0 = random_vec(batch * 5, 0.5), projection = random_vec(n * 5, 1.0);
      RecurrentParams<double> params{w_x.data(), w_h.data(), b.data(), b_h.data()};
      RecurrentLayer<double> layer(shape, steps, batch);
      auto objective = [&](const std::vector<double>& input) {
        std::vector<double> h_final(batch * 5), c_final(batch * 5);
        RecurrentInput<double> in;
        in.dense = input.data();
        layer.Forward(in, steps, batch, params, nullptr, h0.data(), c0.data(), h_final.data(), c_final.data());
        double sum = 0;
        for (int k = 0; k < n * 5; ++k) sum += layer.hidden_sequence()[k] * projection[k];
        return sum;
      };
      objective(x);
      std::vector<double> gw_x(w_x.size()), gw_h(w_h.size()), gb(b.size()), gb_h(b_h.size()), d_input(x.size());
      RecurrentInput<double> in;
      in.dense = x.data();
      layer.Backward(in, params, projection.data(), {gw_x.data(), gw_h.data(), gb.data(), gb_h.data()},
                     d_input.data(), nullptr, nullptr);
      std::vector<double> numeric;
      for (std::size_t k = 0; k < x.size(); ++k) {
        std::vector<double> plus = x, minus = x;
        plus[k] += 1e-6;
        minus[k] -= 1e-6;
        numeric.push_back((objective(plus) - objective(minus)) / 2e-6);
      }
      CHECK(RelativeError(d_input, numeric) < 1e-6);
    }
  }
}

TEST_CASE("model: the float path matches the double path at several input scales") {
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    for (double scale : {0.1, 0.5, 1.5}) {
      CAPTURE(EnumName(cell));
      CAPTURE(scale);
      ModelSpec spec;
      spec.cell = cell;
      spec.vocab_size = 11;
      spec.embedding_size = 6;
      spec.hidden_size = 8;
      spec.num_layers = 2;
      CharModel<double> reference(spec);
      RandomizeParams(reference, 3, scale);
      CharModel<float> fast(spec);
      for (std::size_t k = 0; k < fast.params().size(); ++k) fast.params()[k] = static_cast<float>(reference.params()[k]);
      const Data data = RandomData(spec.vocab_size, 5, 3, 17);
      auto ws_d = reference.MakeWorkspace(5, 3);
      auto ws_f = fast.MakeWorkspace(5, 3);
      auto state_d = reference.MakeState(3);
      auto state_f = fast.MakeState(3);
      reference.ZeroGrads();
      fast.ZeroGrads();
      const double loss_d = reference.Forward(*ws_d, data.inputs.data(), data.targets.data(), 5, 3, state_d, {});
      const float loss_f = fast.Forward(*ws_f, data.inputs.data(), data.targets.data(), 5, 3, state_f, {});
      reference.Backward(*ws_d, nullptr);
      fast.Backward(*ws_f, nullptr);
      CHECK(std::abs(loss_d - loss_f) < 1e-5 * std::max(1.0, std::abs(loss_d)));
      std::vector<double> grad_f(fast.grads().begin(), fast.grads().end());
      CHECK(RelativeError(reference.grads(), grad_f) < 1e-4);
    }
  }
}

TEST_CASE("model: a sequence run in three chunks with carried state equals one pass") {
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    CAPTURE(EnumName(cell));
    ModelSpec spec;
    spec.cell = cell;
    spec.vocab_size = 9;
    spec.hidden_size = 6;
    spec.num_layers = 2;
    CharModel<double> model(spec);
    RandomizeParams(model, 5, 0.7);
    const int steps = 9, batch = 2, chunk = 3;
    const Data data = RandomData(spec.vocab_size, steps, batch, 23);
    auto whole_ws = model.MakeWorkspace(steps, batch);
    auto whole_state = model.MakeState(batch);
    const double whole_loss =
        model.Forward(*whole_ws, data.inputs.data(), data.targets.data(), steps, batch, whole_state, {});
    const double* whole_logits = WorkspaceLogits(*whole_ws);

    auto chunk_ws = model.MakeWorkspace(chunk, batch);
    auto chunk_state = model.MakeState(batch);
    double chunk_loss_sum = 0, max_diff = 0;
    for (int start = 0; start < steps; start += chunk) {
      const std::size_t offset = static_cast<std::size_t>(start) * batch;
      chunk_loss_sum += model.Forward(*chunk_ws, data.inputs.data() + offset, data.targets.data() + offset, chunk,
                                      batch, chunk_state, {});
      const double* logits = WorkspaceLogits(*chunk_ws);
      for (int k = 0; k < chunk * batch * spec.vocab_size; ++k) {
        max_diff = std::max(max_diff, std::abs(logits[k] - whole_logits[offset * spec.vocab_size + k]));
      }
    }
    CHECK(max_diff < 1e-12);
    CHECK(std::abs(chunk_loss_sum / 3 - whole_loss) < 1e-12);
    for (std::size_t k = 0; k < whole_state.h.size(); ++k) CHECK(whole_state.h[k] == doctest::Approx(chunk_state.h[k]).epsilon(1e-12));
  }
}

TEST_CASE("model: at initialization the loss on random data is close to ln(V)") {
  for (InitScheme scheme : {InitScheme::kKeras, InitScheme::kPytorch, InitScheme::kD2l}) {
    for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
      CAPTURE(EnumName(scheme));
      CAPTURE(EnumName(cell));
      ModelSpec spec;
      spec.cell = cell;
      spec.vocab_size = 60;
      spec.hidden_size = 32;
      CharModel<float> model(spec);
      model.Initialize(scheme, 1);
      const Data data = RandomData(spec.vocab_size, 10, 8, 29);
      auto ws = model.MakeWorkspace(10, 8);
      auto state = model.MakeState(8);
      const float loss = model.Forward(*ws, data.inputs.data(), data.targets.data(), 10, 8, state, {});
      CHECK(std::abs(loss - std::log(60.0)) < 0.1 * std::log(60.0));
    }
  }
}

TEST_CASE("model: scoring without keeping the softmax gives the loss and row losses bit for bit") {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 37;  // not a multiple of the lanes: the tail loop counts too
  spec.hidden_size = 16;
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kKeras, 3);
  const Data data = RandomData(spec.vocab_size, 12, 5, 41);
  auto kept = model.MakeWorkspace(12, 5), scored = model.MakeWorkspace(12, 5);
  auto state_kept = model.MakeState(5), state_scored = model.MakeState(5);
  const float loss_kept = model.Forward(*kept, data.inputs.data(), data.targets.data(), 12, 5, state_kept, {});
  ForwardMode score_only;
  score_only.keep_probs = false;
  const float loss_scored =
      model.Forward(*scored, data.inputs.data(), data.targets.data(), 12, 5, state_scored, score_only);
  CHECK(loss_scored == loss_kept);
  for (std::size_t r = 0; r < 60; ++r) CHECK(scored->row_loss[r] == kept->row_loss[r]);
  CHECK(state_scored.h == state_kept.h);
  CHECK(kept->probs_kept);
  CHECK_FALSE(scored->probs_kept);
}

TEST_CASE("model: initializers are seeded, keras' recurrent kernel is orthogonal and the forget bias is 1") {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 10;
  spec.hidden_size = 6;
  CharModel<double> a(spec), b(spec), c(spec);
  a.Initialize(InitScheme::kKeras, 5);
  b.Initialize(InitScheme::kKeras, 5);
  c.Initialize(InitScheme::kKeras, 6);
  CHECK(a.params() == b.params());
  CHECK(a.params() != c.params());
  const double* w_h = a.param_tensors().layer(0).w_h.data();  // (6, 24): rows orthonormal
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) {
      double dot = 0;
      for (int k = 0; k < 24; ++k) dot += w_h[i * 24 + k] * w_h[j * 24 + k];
      CHECK(dot == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-9));
    }
  }
  const double* bias = a.param_tensors().layer(0).b.data();
  for (int j = 0; j < 24; ++j) CHECK(bias[j] == (j >= 6 && j < 12 ? 1.0 : 0.0));
}

TEST_CASE("model: parameter counts are Keras'") {
  auto count = [](CellKind cell, int input, int hidden, bool reset_after = true) {
    return RecurrentShape{cell, input, hidden, Activation::kTanh, reset_after}.num_params();
  };
  CHECK(count(CellKind::kRnn, 16, 32) == 1568);
  CHECK(count(CellKind::kLstm, 16, 32) == 6272);
  CHECK(count(CellKind::kGru, 16, 32, true) == 4800);
  CHECK(count(CellKind::kGru, 16, 32, false) == 4704);
  CHECK(count(CellKind::kLstm, 64, 128) == 98816);
  CHECK(count(CellKind::kGru, 64, 256) == 247296);
  CHECK(count(CellKind::kRnn, 256, 128) == 49280);
  // Embedding(1001, 16) and Dense(10) on 128, through the model's own layout.
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 1001;
  spec.embedding_size = 16;
  spec.hidden_size = 32;
  ParamLayout layout(spec);
  CHECK(layout.Get("embedding").size() == 16016);
  ModelSpec dense;
  dense.vocab_size = 10;
  dense.hidden_size = 128;
  ParamLayout dense_layout(dense);
  CHECK(dense_layout.Get("output.w").size() + dense_layout.Get("output.b").size() == 1290);
  // The layout's total is the sum of the parts.
  CHECK(layout.total() == 16016 + count(CellKind::kLstm, 16, 32) + 32 * 1001 + 1001);
}

TEST_CASE("model: the typed views find the tensors the names do, and each tensor's kind") {
  for (const bool reset_after : {true, false}) {
    for (const int embedding_size : {0, 5}) {
      CAPTURE(reset_after);
      CAPTURE(embedding_size);
      ModelSpec spec;
      spec.cell = CellKind::kGru;
      spec.reset_after = reset_after;
      spec.vocab_size = 7;
      spec.embedding_size = embedding_size;
      spec.hidden_size = 4;
      spec.num_layers = 2;
      CharModel<double> model(spec);
      const ParamLayout& layout = model.layout();
      // The span a view gives for a tensor is the named tensor's range of the buffer.
      auto same = [](std::span<double> view, double* base, const ParamTensor& tensor) {
        return view.data() == base + tensor.offset && view.size() == tensor.size();
      };
      for (double* base : {model.params().data(), model.grads().data()}) {
        const ParamView<double> view = base == model.params().data() ? model.param_tensors() : model.grad_tensors();
        CHECK(view.embedding().size() == static_cast<std::size_t>(spec.vocab_size * embedding_size));
        if (embedding_size > 0) CHECK(same(view.embedding(), base, layout.Get("embedding")));
        for (int l = 0; l < spec.num_layers; ++l) {
          const std::string prefix = "layer" + std::to_string(l) + ".";
          const LayerTensors<std::span<double>> layer = view.layer(l);
          CHECK(same(layer.w_x, base, layout.Get(prefix + "w_x")));
          CHECK(same(layer.w_h, base, layout.Get(prefix + "w_h")));
          CHECK(same(layer.b, base, layout.Get(prefix + "b")));
          CHECK(layout.Has(prefix + "b_h") == reset_after);
          if (reset_after) {
            CHECK(same(layer.b_h, base, layout.Get(prefix + "b_h")));
          } else {
            CHECK(layer.b_h.empty());
          }
        }
        CHECK(same(view.output_w(), base, layout.Get("output.w")));
        CHECK(same(view.output_b(), base, layout.Get("output.b")));
      }
      CHECK(layout.Get("layer1.w_x").kind == TensorKind::kInputKernel);
      CHECK(layout.Get("layer1.w_h").kind == TensorKind::kRecurrentKernel);
      CHECK(layout.Get("layer1.b").kind == TensorKind::kBias);
      if (reset_after) CHECK(layout.Get("layer1.b_h").kind == TensorKind::kRecurrentBias);
      if (embedding_size > 0) CHECK(layout.Get("embedding").kind == TensorKind::kEmbedding);
      CHECK(layout.Get("output.w").kind == TensorKind::kOutputKernel);
      CHECK(layout.Get("output.b").kind == TensorKind::kOutputBias);
    }
  }
}

TEST_CASE("model: the BLAS wrapper agrees with the naive loop for every transpose combination") {
  Rng rng(1);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int m = 5, n = 7, k = 3;
      std::vector<double> a(m * k), b(k * n), c(m * n), ref(m * n);
      for (auto& x : a) x = rng.Uniform(-1, 1);
      for (auto& x : b) x = rng.Uniform(-1, 1);
      for (std::size_t i = 0; i < c.size(); ++i) c[i] = ref[i] = rng.Uniform(-1, 1);
      const int lda = ta ? m : k, ldb = tb ? k : n;
      Gemm<double>(ta, tb, m, n, k, 0.5, a.data(), lda, b.data(), ldb, 2.0, c.data(), n);
      NaiveGemm<double>(ta, tb, m, n, k, 0.5, a.data(), lda, b.data(), ldb, 2.0, ref.data(), n);
      for (int i = 0; i < m * n; ++i) CHECK(c[i] == doctest::Approx(ref[i]).epsilon(1e-12));
    }
  }
}

}  // namespace
}  // namespace charlm
