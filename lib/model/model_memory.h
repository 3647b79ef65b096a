// Up-front memory checks: a model or a training step too big for this machine is refused with its sizes.
#pragma once

#include "model/model.h"

namespace charlm {

// A UserError when the parameters, gradients and optimizer state of `spec` alone would exceed the machine's
// physical memory, instead of std::bad_alloc (or the OOM killer) later.
void CheckModelFitsInMemory(const ModelSpec& spec);
// UserError when the model and one training step's activations (WorkspaceFloats) exceed the machine's memory, so
// a huge batch is refused with its sizes before anything is allocated, not by the allocator 8 GB later.
void CheckStepFitsInMemory(const ModelSpec& spec, int batch_size, int num_steps);

}  // namespace charlm
