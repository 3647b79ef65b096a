// Conversion between charlm's parameter layout and PyTorch's state_dict (names, transposes, biases).
#include "interop/torch_layout.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <set>

#include "util/errors.h"

namespace charlm {
namespace {

constexpr std::string_view kMatchFix =
    "make the config's model section (cell, hidden_size, num_layers, embedding_size) and the vocabulary match the "
    "model saved in the file (docs/interop.md)";

// out (cols, rows) = in (rows, cols) transposed, both row-major.
void Transpose(const float* in, int rows, int cols, float* out) {
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) out[static_cast<std::size_t>(c) * rows + r] = in[static_cast<std::size_t>(r) * cols + c];
  }
}

std::string LayerName(std::string_view kind, int layer) { return "rnn." + std::string(kind) + "_l" + std::to_string(layer); }

// Tied embeddings: PyTorch ties by sharing one Parameter between the two modules, so its state_dict names it twice;
// a file saved with shared tensors removed (safetensors' save_model) may hold either name alone.
bool TiedName(const ModelSpec& spec, const std::string& name) {
  return spec.tie_embeddings && (name == "embedding.weight" || name == "output.weight");
}

}  // namespace

void CheckTorchCompatible(const ModelSpec& spec) {
  if (spec.cell == CellKind::kGru && !spec.reset_after) {
    throw UserError("a GRU with model.reset_after false (the book's form) has no PyTorch counterpart: nn.GRU applies "
                    "the reset gate after the hidden product, so its weights would compute another function; only "
                    "a GRU trained with model.reset_after true can be exported or imported");
  }
}

std::string DescribeModel(const ModelSpec& spec) {
  std::string text = std::string(EnumName(spec.cell)) + ", " + std::to_string(spec.num_layers) +
                     (spec.num_layers == 1 ? " layer" : " layers") + " of " + std::to_string(spec.hidden_size) + ", ";
  text += spec.embedding_size > 0 ? "embedding " + std::to_string(spec.embedding_size) : std::string("one-hot input");
  return text + ", " + std::to_string(spec.vocab_size) + " characters";
}

std::vector<TorchTensorSpec> TorchStateDictSpec(const ModelSpec& spec) {
  assert(!(spec.cell == CellKind::kGru && !spec.reset_after));
  const auto v = static_cast<std::uint64_t>(spec.vocab_size), h = static_cast<std::uint64_t>(spec.hidden_size);
  std::vector<TorchTensorSpec> tensors;
  if (spec.embedding_size > 0) tensors.push_back({"embedding.weight", {v, static_cast<std::uint64_t>(spec.embedding_size)}});
  for (int l = 0; l < spec.num_layers; ++l) {
    const RecurrentShape shape = spec.LayerShape(l);
    const auto gh = static_cast<std::uint64_t>(shape.gates()) * h;
    tensors.push_back({LayerName("weight_ih", l), {gh, static_cast<std::uint64_t>(shape.input_size)}});
    tensors.push_back({LayerName("weight_hh", l), {gh, h}});
    tensors.push_back({LayerName("bias_ih", l), {gh}});
    tensors.push_back({LayerName("bias_hh", l), {gh}});
  }
  tensors.push_back({"output.weight", {v, h}});
  tensors.push_back({"output.bias", {v}});
  return tensors;
}

std::vector<SafetensorsTensor> ToTorchStateDict(const CharModel<float>& model) {
  const ModelSpec& spec = model.spec();
  const ParamLayout& layout = model.layout();
  const float* params = model.params().data();
  auto view = [&](const std::string& name) { return params + layout.Get(name).offset; };
  std::vector<SafetensorsTensor> out;
  for (const TorchTensorSpec& torch : TorchStateDictSpec(spec)) {
    SafetensorsTensor tensor{torch.name, torch.shape, {}};
    std::size_t count = 1;
    for (std::uint64_t dim : torch.shape) count *= dim;
    tensor.values.assign(count, 0.0f);
    out.push_back(std::move(tensor));
  }
  std::size_t next = 0;
  if (spec.embedding_size > 0) {
    const ParamTensor& t = layout.Get("embedding");
    std::copy_n(view("embedding"), t.size(), out[next++].values.data());
  }
  for (int l = 0; l < spec.num_layers; ++l) {
    const std::string prefix = "layer" + std::to_string(l) + ".";
    const ParamTensor& w_x = layout.Get(prefix + "w_x");
    const ParamTensor& w_h = layout.Get(prefix + "w_h");
    Transpose(view(w_x.name), w_x.rows, w_x.cols, out[next++].values.data());  // weight_ih (gH, I)
    Transpose(view(w_h.name), w_h.rows, w_h.cols, out[next++].values.data());  // weight_hh (gH, H)
    const ParamTensor& b = layout.Get(prefix + "b");
    std::copy_n(view(b.name), b.size(), out[next++].values.data());  // bias_ih
    if (layout.Has(prefix + "b_h")) {
      std::copy_n(view(prefix + "b_h"), b.size(), out[next].values.data());  // bias_hh; zeros otherwise
    }
    ++next;
  }
  if (spec.tie_embeddings) {  // output.weight is the embedding (V, H == E) itself, as load_state_dict expects it
    const ParamTensor& t = layout.Get("embedding");
    std::copy_n(view("embedding"), t.size(), out[next++].values.data());
  } else {
    const ParamTensor& w_out = layout.Get("output.w");
    Transpose(view("output.w"), w_out.rows, w_out.cols, out[next++].values.data());  // (V, H)
  }
  std::copy_n(view("output.b"), layout.Get("output.b").size(), out[next++].values.data());
  assert(next == out.size());
  return out;
}

void CheckTorchStateDict(const SafetensorsView& file, std::string_view source, const ModelSpec& spec) {
  CheckTorchCompatible(spec);
  const std::string src(source);
  const std::vector<TorchTensorSpec> expected = TorchStateDictSpec(spec);
  const std::string described = " by the model the config and vocabulary describe (" + DescribeModel(spec) + ")";

  std::set<std::string> expected_names;
  for (const TorchTensorSpec& tensor : expected) {
    expected_names.insert(tensor.name);
    const SafetensorsEntry* entry = file.Find(tensor.name);
    const std::string wanted = "F32 of shape " + FormatShape(tensor.shape);
    if (entry == nullptr && TiedName(spec, tensor.name) &&
        (file.Find("embedding.weight") != nullptr || file.Find("output.weight") != nullptr)) {
      continue;  // the other name of the tied weight is there
    }
    if (entry == nullptr) {
      throw UserError(src + ": tensor " + tensor.name + " is missing; it is expected as " + wanted + described + ": " +
                      std::string(kMatchFix));
    }
    if (entry->shape != tensor.shape) {
      throw UserError(src + ": tensor " + tensor.name + " has shape " + FormatShape(entry->shape) + ", expected " +
                      FormatShape(tensor.shape) + described + ": " + std::string(kMatchFix));
    }
    if (entry->dtype != "F32") {
      throw UserError(src + ": tensor " + tensor.name + " has dtype " + entry->dtype + ", expected " + wanted +
                      ": convert the model to float32 before saving (model.float() in PyTorch)");
    }
  }
  for (const SafetensorsEntry& entry : file.tensors) {
    if (expected_names.count(entry.name) == 0) {
      throw UserError(src + ": tensor " + QuoteForMessage(entry.name) + " (" + entry.dtype + " of shape " +
                      FormatShape(entry.shape) + ") is not used" + described + ": " + std::string(kMatchFix) +
                      ", or save only the embedding, rnn and output modules");
    }
  }
}

void FromTorchStateDict(const SafetensorsView& file, std::string_view source, CharModel<float>& model) {
  const ModelSpec& spec = model.spec();
  CheckTorchStateDict(file, source, spec);
  const std::string src(source);
  auto read = [&](const std::string& name) {
    std::vector<float> values = file.ReadF32(*file.Find(name));
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        throw UserError(src + ": tensor " + name + " holds a non-finite value (" + std::to_string(values[i]) +
                        ") at index " + std::to_string(i) + ": the model diverged; save a model with finite weights");
      }
    }
    return values;
  };
  const ParamLayout& layout = model.layout();
  auto view = [&](const std::string& name) { return model.params().data() + layout.Get(name).offset; };
  if (spec.tie_embeddings) {  // either name, or both holding the same values
    const bool has_embedding = file.Find("embedding.weight") != nullptr, has_output = file.Find("output.weight") != nullptr;
    const std::vector<float> values = read(has_embedding ? "embedding.weight" : "output.weight");
    if (has_embedding && has_output && read("output.weight") != values) {
      throw UserError(src + ": tensors embedding.weight and output.weight differ, but the config ties them "
                      "(model.tie_embeddings true): save the model with output.weight = embedding.weight, or import "
                      "it with model.tie_embeddings false");
    }
    std::copy(values.begin(), values.end(), view("embedding"));
  } else if (spec.embedding_size > 0) {
    const std::vector<float> values = read("embedding.weight");
    std::copy(values.begin(), values.end(), view("embedding"));
  }
  for (int l = 0; l < spec.num_layers; ++l) {
    const std::string prefix = "layer" + std::to_string(l) + ".";
    const ParamTensor& w_x = layout.Get(prefix + "w_x");
    const ParamTensor& w_h = layout.Get(prefix + "w_h");
    Transpose(read(LayerName("weight_ih", l)).data(), w_x.cols, w_x.rows, view(w_x.name));  // (gH, I) -> (I, gH)
    Transpose(read(LayerName("weight_hh", l)).data(), w_h.cols, w_h.rows, view(w_h.name));
    const std::vector<float> b_ih = read(LayerName("bias_ih", l));
    const std::vector<float> b_hh = read(LayerName("bias_hh", l));
    float* b = view(prefix + "b");
    if (layout.Has(prefix + "b_h")) {
      std::copy(b_ih.begin(), b_ih.end(), b);
      std::copy(b_hh.begin(), b_hh.end(), view(prefix + "b_h"));
    } else {
      // One bias block: PyTorch's two add up. A zero bias_hh (what charlm exports) leaves bias_ih's bits as they
      // are, so that -0.0 survives an export and import unchanged.
      for (std::size_t i = 0; i < b_ih.size(); ++i) b[i] = b_hh[i] == 0.0f ? b_ih[i] : b_ih[i] + b_hh[i];
    }
  }
  if (!spec.tie_embeddings) {  // tied: read with the embedding above
    const ParamTensor& w_out = layout.Get("output.w");
    Transpose(read("output.weight").data(), w_out.cols, w_out.rows, view("output.w"));  // (V, H) -> (H, V)
  }
  const std::vector<float> b_out = read("output.bias");
  std::copy(b_out.begin(), b_out.end(), view("output.b"));
}

}  // namespace charlm
