// Matches charlm's logits, loss, final state and every gradient against PyTorch (tests/fixtures/torch_parity.json).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "test_util.h"

namespace charlm {
namespace {

constexpr int kExpectedFixtureVersion = 1;

std::vector<double> Flatten(const nlohmann::json& j) {
  std::vector<double> out;
  if (j.is_array() && !j.empty() && j.front().is_array()) {
    for (const auto& part : j) {
      for (double x : part) out.push_back(x);
    }
  } else {
    for (double x : j) out.push_back(x);
  }
  return out;
}

// Copies the fixture's tensors (already in charlm's layout) into the flat buffer by name.
template <typename T>
void LoadTensors(const nlohmann::json& tensors, const ParamLayout& layout, std::vector<T>& flat) {
  auto put = [&](const std::string& name, const nlohmann::json& values) {
    const ParamTensor& t = layout.Get(name);
    const std::vector<double> v = Flatten(values);
    REQUIRE(v.size() == t.size());
    for (std::size_t k = 0; k < v.size(); ++k) flat[t.offset + k] = static_cast<T>(v[k]);
  };
  if (tensors.contains("embedding")) put("embedding", tensors["embedding"]);
  for (std::size_t l = 0; l < tensors["layers"].size(); ++l) {
    for (const auto& [key, values] : tensors["layers"][l].items()) put("layer" + std::to_string(l) + "." + key, values);
  }
  put("output.w", tensors["w_out"]);
  put("output.b", tensors["b_out"]);
}

template <typename T>
void CheckCase(const nlohmann::json& c, double tolerance) {
  ModelSpec spec;
  spec.cell = *ParseEnum<CellKind>(c["cell"].get<std::string>());
  spec.activation = *ParseEnum<Activation>(c["activation"].get<std::string>());
  spec.reset_after = c["reset_after"];
  spec.vocab_size = c["vocab_size"];
  spec.embedding_size = c["embedding_size"];
  spec.hidden_size = c["hidden_size"];
  spec.num_layers = c["num_layers"];
  const int steps = c["num_steps"], batch = c["batch_size"];
  CharModel<T> model(spec);
  LoadTensors(c["params"], model.layout(), model.params());
  const std::vector<int> inputs = c["inputs"].get<std::vector<int>>();
  const std::vector<int> targets = c["targets"].get<std::vector<int>>();
  RecurrentState<T> state = model.MakeState(batch);
  const std::vector<double> h0 = Flatten(c["h0"]);
  REQUIRE(h0.size() == state.h.size());
  for (std::size_t k = 0; k < h0.size(); ++k) state.h[k] = static_cast<T>(h0[k]);
  if (c.contains("c0")) {
    const std::vector<double> c0 = Flatten(c["c0"]);
    REQUIRE(c0.size() == state.c.size());
    for (std::size_t k = 0; k < c0.size(); ++k) state.c[k] = static_cast<T>(c0[k]);
  }
  auto ws = model.MakeWorkspace(steps, batch);
  model.ZeroGrads();
  const T loss = model.Forward(*ws, inputs.data(), targets.data(), steps, batch, state, {});
  RecurrentState<T> d_state = model.MakeState(batch);
  model.Backward(*ws, &d_state);

  CHECK(std::abs(loss - c["loss"].get<double>()) < tolerance);
  const std::vector<double> logits = Flatten(c["logits"]);
  REQUIRE(logits.size() == static_cast<std::size_t>(steps * batch * spec.vocab_size));
  double worst = 0;
  for (std::size_t k = 0; k < logits.size(); ++k) worst = std::max(worst, std::abs(WorkspaceLogits(*ws)[k] - logits[k]));
  CHECK(worst < tolerance);
  const std::vector<double> h_final = Flatten(c["h_final"]);
  worst = 0;
  for (std::size_t k = 0; k < h_final.size(); ++k) worst = std::max(worst, std::abs(state.h[k] - h_final[k]));
  CHECK(worst < tolerance);

  std::vector<T> expected_grads(model.grads().size(), T(0));
  LoadTensors(c["grads"], model.layout(), expected_grads);
  for (const ParamTensor& t : model.layout().tensors()) {
    CAPTURE(t.name);
    worst = 0;
    for (std::size_t k = 0; k < t.size(); ++k) {
      worst = std::max(worst, static_cast<double>(std::abs(model.grads()[t.offset + k] - expected_grads[t.offset + k])));
    }
    CHECK(worst < tolerance);
  }
  const std::vector<double> d_h0 = Flatten(c["grads"]["h0"]);
  worst = 0;
  for (std::size_t k = 0; k < d_h0.size(); ++k) worst = std::max(worst, std::abs(d_state.h[k] - d_h0[k]));
  CHECK(worst < tolerance);
  if (c["grads"].contains("c0")) {
    const std::vector<double> d_c0 = Flatten(c["grads"]["c0"]);
    worst = 0;
    for (std::size_t k = 0; k < d_c0.size(); ++k) worst = std::max(worst, std::abs(d_state.c[k] - d_c0[k]));
    CHECK(worst < tolerance);
  }
}

TEST_CASE("torch parity: logits, loss, final state and every gradient match PyTorch for RNN, GRU and LSTM") {
  std::ifstream in(testing::SourceDir() / "tests" / "fixtures" / "torch_parity.json");
  REQUIRE(in.good());
  const nlohmann::json fixture = nlohmann::json::parse(in);
  REQUIRE(fixture["format_version"].get<int>() == kExpectedFixtureVersion);
  REQUIRE(fixture["cases"].size() == 3);
  for (const auto& c : fixture["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    CheckCase<float>(c, 1e-4);   // the shipped path
    CheckCase<double>(c, 1e-10);  // the reference path: agreement to rounding
  }
}

}  // namespace
}  // namespace charlm
