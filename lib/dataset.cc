// Corpus loading and checkpoint restoring shared by train, generate and eval.
#include "dataset.h"

#include "errors.h"

namespace charlm {

Dataset LoadDataset(const DataConfig& data) {
  const std::u32string text = ReadCorpus(data.corpus, data.newline, data.max_chars);
  Dataset dataset;
  dataset.vocab = Vocab::Build(text, data.min_freq);
  dataset.ids = dataset.vocab.Encode(text);
  dataset.split = SplitCorpus(static_cast<std::int64_t>(dataset.ids.size()), data.val_fraction, data.test_fraction);
  return dataset;
}

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
  CharModel<float> model(MakeModelSpec(config.model, vocab.size()));
  if (checkpoint.params.size() != model.params().size()) {
    throw UserError(checkpoint_path + ": holds " + std::to_string(checkpoint.params.size()) +
                    " parameters but its config and vocabulary describe " + std::to_string(model.params().size()) +
                    ": the file is inconsistent; retrain or use another checkpoint");
  }
  model.params() = checkpoint.params;
  return RestoredModel{std::move(config), std::move(vocab), std::move(model), std::move(checkpoint)};
}

}  // namespace charlm
