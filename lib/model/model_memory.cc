// CheckModelFitsInMemory and CheckStepFitsInMemory against the machine's physical memory.
#include "model/model_memory.h"

#include <unistd.h>

#include <cstdio>

#include "util/errors.h"

namespace charlm {

void CheckStepFitsInMemory(const ModelSpec& spec, int batch_size, int num_steps) {
  const double model_gb = 4.0 * sizeof(float) * ParameterCount(spec) / 1e9;
  const double step_gb = sizeof(float) * WorkspaceFloats(spec, num_steps, batch_size) / 1e9;
  const double machine_gb =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  if (machine_gb > 0 && model_gb + step_gb > machine_gb) {
    char message[512];
    std::snprintf(message, sizeof message,
                  "train.batch_size %d x train.num_steps %d = %.0f characters a step, whose activations need up to "
                  "%.1f GB (the model itself %.1f GB), more than this machine's %.1f GB of memory: lower "
                  "train.batch_size or train.num_steps",
                  batch_size, num_steps, static_cast<double>(batch_size) * num_steps, step_gb, model_gb, machine_gb);
    throw UserError(message);
  }
}

void CheckModelFitsInMemory(const ModelSpec& spec) {
  // ParamLayout's count, from the sizes alone: building the layout of 2^31 layers would itself take gigabytes.
  const double params = ParameterCount(spec);
  // Parameters, gradients and up to two optimizer moments: four floats each, before any activation.
  const double needed_gb = 4.0 * sizeof(float) * params / 1e9;
  const double machine_gb =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  if (machine_gb > 0 && needed_gb > machine_gb) {
    char message[400];
    std::snprintf(message, sizeof message,
                  "the model has %.0f parameters, which with gradients and optimizer state need %.1f GB, more than "
                  "this machine's %.1f GB of memory: make model.hidden_size, model.num_layers or model.embedding_size "
                  "smaller",
                  params, needed_gb, machine_gb);
    throw UserError(message);
  }
}

}  // namespace charlm
