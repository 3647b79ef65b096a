// Builds the summary table from the same layout the model allocates, so the counts cannot drift from the model.
#include "model/summary.h"

#include <cstdio>
#include <initializer_list>
#include <vector>

namespace charlm {

std::string WithThousandsSeparators(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (std::size_t k = 0; k < digits.size(); ++k) {
    if (k > 0 && (digits.size() - k) % 3 == 0) out += ',';
    out += digits[k];
  }
  return value < 0 ? "-" + out : out;
}

std::string ModelSummary(const ModelSpec& spec, int batch_size, int num_steps) {
  const ParamLayout layout(spec);
  auto count = [](std::initializer_list<TensorPlace> places) {
    std::int64_t n = 0;
    for (const TensorPlace& place : places) n += static_cast<std::int64_t>(place.size);
    return n;
  };
  auto shape = [&](int features) {
    return "(" + std::to_string(batch_size) + ", " + std::to_string(num_steps) + ", " + std::to_string(features) + ")";
  };
  struct Row {
    std::string layer, output_shape;
    std::int64_t params;
  };
  std::vector<Row> rows;
  if (spec.embedding_size > 0) {
    rows.push_back({"embedding (Embedding)", shape(spec.embedding_size), count({layout.embedding()})});
  } else {
    rows.push_back({"one_hot (OneHot gather)", shape(spec.vocab_size), 0});
  }
  const char* type = spec.cell == CellKind::kRnn ? "SimpleRNN" : spec.cell == CellKind::kGru ? "GRU" : "LSTM";
  for (int l = 0; l < spec.num_layers; ++l) {
    rows.push_back({std::string(EnumName(spec.cell)) + "_" + std::to_string(l) + " (" + type + ")", shape(spec.hidden_size),
                    count({layout.layer(l).w_x, layout.layer(l).w_h, layout.layer(l).b, layout.layer(l).b_h})});
  }
  // Tied: the kernel is the embedding's, counted there once; the dense layer adds its bias alone.
  rows.push_back({spec.tie_embeddings ? "dense (Dense, tied to embedding)" : "dense (Dense)", shape(spec.vocab_size),
                  count({layout.output_w(), layout.output_b()})});

  std::string out;
  char line[160];
  const std::string rule(75, '_'), double_rule(75, '=');
  std::snprintf(line, sizeof line, "Model: \"charlm\" (%s%s, %d layer%s, %s input)\n", type,
                spec.cell == CellKind::kGru ? (spec.reset_after ? " reset_after=true" : " reset_after=false") : "",
                spec.num_layers, spec.num_layers == 1 ? "" : "s", spec.embedding_size > 0 ? "embedding" : "one-hot");
  out += line;
  out += rule + "\n";
  std::snprintf(line, sizeof line, "%-32s %-26s %s\n", "Layer (type)", "Output Shape", "Param #");
  out += line;
  out += double_rule + "\n";
  std::int64_t total = 0;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    std::snprintf(line, sizeof line, "%-32s %-26s %s\n", rows[k].layer.c_str(), rows[k].output_shape.c_str(),
                  WithThousandsSeparators(rows[k].params).c_str());
    out += line;
    out += (k + 1 < rows.size() ? rule : double_rule) + "\n";
    total += rows[k].params;
  }
  out += "Total params: " + WithThousandsSeparators(total) + "\n";
  out += "Trainable params: " + WithThousandsSeparators(total) + "\n";
  out += "Non-trainable params: 0\n";
  return out;
}

}  // namespace charlm
