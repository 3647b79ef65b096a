// charlm's parameter buffer <-> the state_dict of the plain PyTorch model (nn.Embedding + nn.RNN/GRU/LSTM + nn.Linear,
// attributes named embedding, rnn, output). The table of names and layouts is in docs/interop.md.
//
//   embedding.weight (V, E)            = embedding (V, E)
//   rnn.weight_ih_l{k} (gH, I)          = layer{k}.w_x (I, gH) transposed; I = V for a one-hot layer 0
//   rnn.weight_hh_l{k} (gH, H)          = layer{k}.w_h (H, gH) transposed
//   rnn.bias_ih_l{k}, rnn.bias_hh_l{k}  = layer{k}.b and zeros; GRU (reset_after): layer{k}.b and layer{k}.b_h
//   output.weight (V, H), output.bias   = output.w (H, V) transposed, output.b
//     tied (model.tie_embeddings): output.weight = embedding (V, E == H), written under both names as PyTorch's
//     shared Parameter is; read back from either name (both present: they must be equal)
// Gate blocks keep their order: it is PyTorch's (LSTM i, f, g, o; GRU r, z, n).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/safetensors.h"
#include "model/model.h"

namespace charlm {

struct TorchTensorSpec {
  std::string name;
  std::vector<std::uint64_t> shape;
};

// UserError when the model has no PyTorch counterpart: the GRU with reset_after false (nn.GRU applies the reset gate
// after the hidden product, always).
void CheckTorchCompatible(const ModelSpec& spec);

// The tensors of the PyTorch model for spec, in state_dict order (asserts CheckTorchCompatible).
std::vector<TorchTensorSpec> TorchStateDictSpec(const ModelSpec& spec);

// The model's parameters under PyTorch's names and layouts, in state_dict order.
std::vector<SafetensorsTensor> ToTorchStateDict(const CharModel<float>& model);

// Checks that a parsed file holds exactly the tensors of TorchStateDictSpec(spec), as F32 of those shapes. Each
// mismatch (missing, extra, dtype, shape) is a one-line UserError naming source, the tensor and the expected dtype
// and shape. Cheap: nothing the size of the model is allocated, so it runs before the model is built.
void CheckTorchStateDict(const SafetensorsView& file, std::string_view source, const ModelSpec& spec);

// CheckTorchStateDict, then fills model.params() from the file; a non-finite value is a UserError naming the tensor.
// Biases of a cell with one bias block are summed.
void FromTorchStateDict(const SafetensorsView& file, std::string_view source, CharModel<float>& model);

// "lstm, 2 layers of 256, embedding 64, 98 characters": the model a config and vocabulary describe, for messages.
std::string DescribeModel(const ModelSpec& spec);

}  // namespace charlm
