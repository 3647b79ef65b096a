// A Keras-like model summary table: layer, output shape, parameter count, total.
#pragma once

#include <string>

#include "model/model.h"

namespace charlm {

// Shapes are (batch, time, features) for the given batch_size and num_steps.
std::string ModelSummary(const ModelSpec& spec, int batch_size, int num_steps);

// 1234567 -> "1,234,567", as Keras prints counts.
std::string WithThousandsSeparators(std::int64_t value);

}  // namespace charlm
