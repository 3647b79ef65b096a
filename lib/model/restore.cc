// MakeModelSpec and RestoreModel: a model from a config, or from a checkpoint's sections.
#include "model/restore.h"

#include <cstdio>

#include "config/config.h"
#include "util/errors.h"

namespace charlm {

ModelSpec MakeModelSpec(const ModelConfig& model, int vocab_size) {
  ModelSpec spec;
  spec.cell = model.cell;
  spec.vocab_size = vocab_size;
  spec.embedding_size = model.embedding_size;
  spec.hidden_size = model.hidden_size;
  spec.num_layers = model.num_layers;
  spec.activation = model.activation;
  spec.reset_after = model.reset_after;
  spec.dropout = model.dropout;
  spec.recurrent_dropout = model.recurrent_dropout;
  spec.locked_dropout = model.locked_dropout;
  spec.weight_drop = model.weight_drop;
  spec.embedding_dropout = model.embedding_dropout;
  spec.tie_embeddings = model.tie_embeddings;
  return spec;
}

RestoredModel RestoreModel(const std::string& checkpoint_path) {
  CheckpointData checkpoint = LoadCheckpoint(checkpoint_path);
  Config config;
  Vocab vocab;
  try {
    config = ConfigFromJson(checkpoint.config);
    ValidateConfig(config);
    vocab = Vocab::FromJson(checkpoint.vocab);
  } catch (const UserError& e) {
    throw UserError(checkpoint_path + ": the checkpoint's config or vocabulary is invalid (" + e.what() +
                    "): it was not written by this version of charlm; retrain or use another checkpoint");
  }
  // Compared before the model is built: a config saying hidden_size 2e9 (under a valid CRC) must not allocate.
  // The parameters are in the file, so a matching count bounds every size the model is built with.
  const ModelSpec spec = MakeModelSpec(config.model, vocab.size());
  const double described = ParameterCount(spec);
  char count[32];
  std::snprintf(count, sizeof count, "%.0f", described);
  if (static_cast<double>(checkpoint.params.size()) != described) {
    throw UserError(checkpoint_path + ": holds " + std::to_string(checkpoint.params.size()) +
                    " parameters but its config and vocabulary describe " + count +
                    ": the file is inconsistent; retrain or use another checkpoint");
  }
  const AllocationScope scope("the model of checkpoint " + checkpoint_path + " (" + std::string(count) + " parameters)",
                              "load it on a machine with more memory");
  CharModel<float> model(spec);
  model.params() = std::move(checkpoint.params);
  model.set_origin(checkpoint_path);
  return RestoredModel{std::move(config), std::move(vocab), std::move(model), std::move(checkpoint)};
}

}  // namespace charlm
