// The models the precision tests (bf16, fp32_packed) run against double: every cell, both GRU variants, an
// embedding and a one-hot input, with dropout; and the error measure they share.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"

namespace charlm::testing {

struct PrecisionCase {
  std::string name;
  ModelSpec spec;
};

inline std::vector<PrecisionCase> PrecisionCases() {
  std::vector<PrecisionCase> cases;
  for (CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    for (bool reset_after : {true, false}) {
      if (!reset_after && cell != CellKind::kGru) continue;
      ModelSpec spec;
      spec.cell = cell;
      spec.reset_after = reset_after;
      spec.vocab_size = 40;
      spec.embedding_size = 16;
      spec.hidden_size = 48;
      spec.num_layers = 2;
      spec.dropout = 0.2;
      spec.recurrent_dropout = 0.1;
      cases.push_back({std::string(EnumName(cell)) + (reset_after ? "" : " (reset_before)"), spec});
    }
  }
  ModelSpec one_hot;  // one-hot input: layer 0 gathers rows, no input product
  one_hot.cell = CellKind::kLstm;
  one_hot.vocab_size = 40;
  one_hot.hidden_size = 48;
  cases.push_back({"lstm one-hot", one_hot});
  return cases;
}

// max|x - ref| / max|ref| over a whole buffer.
inline double RelativeError(std::span<const float> x, std::span<const double> ref) {
  double diff = 0, scale = 1e-30;
  for (std::size_t k = 0; k < x.size(); ++k) {
    diff = std::max(diff, std::abs(static_cast<double>(x[k]) - ref[k]));
    scale = std::max(scale, std::abs(ref[k]));
  }
  return diff / scale;
}

}  // namespace charlm::testing
