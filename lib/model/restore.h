// A model built from a config (its spec) or restored from a checkpoint, with its config and vocabulary.
#pragma once

#include <string>

#include "config/config.h"
#include "format/checkpoint.h"
#include "model/model.h"
#include "text/vocab.h"

namespace charlm {

ModelSpec MakeModelSpec(const ModelConfig& model, int vocab_size);

// A trained model with its config and vocabulary, as `generate`, `eval` and `--resume` need it.
struct RestoredModel {
  Config config;
  Vocab vocab;
  CharModel<float> model;
  CheckpointData checkpoint;  // the file's sections; its params have been moved into model
};
// UserError when the file is not a usable checkpoint, or its parts disagree (parameter count vs config and vocab).
RestoredModel RestoreModel(const std::string& checkpoint_path);

}  // namespace charlm
