// Corpus loading and checkpoint restoring shared by train, generate and eval.
#include "text/dataset.h"

#include <cstdio>
#include <algorithm>

#include "text/utf8.h"

#include "errors.h"

namespace charlm {

Dataset LoadDataset(const DataConfig& data) {
  const AllocationScope scope("the ids of corpus file '" + data.corpus + "'",
                              "train on the first part of the text with data.max_chars");
  CorpusIds corpus = ReadCorpusIds(data.corpus, data.newline, data.max_chars, data.min_freq);
  Dataset dataset;
  dataset.vocab = std::move(corpus.vocab);
  dataset.ids = std::move(corpus.ids);
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
  return RestoredModel{std::move(config), std::move(vocab), std::move(model), std::move(checkpoint)};
}

std::string CorpusPrefix(const Dataset& data, int max_chars) {
  const IdView text = data.Validation().empty() ? data.TrainHeld() : data.Validation();
  const auto char_at = [&](std::size_t k) {
    return data.vocab.unk_id() == text[k] ? U'\uFFFD' : data.vocab.CharAt(text[k]);
  };
  const auto is_space = [](char32_t c) { return c == U' ' || c == U'\t' || c == U'\r' || c == U'\n' || c == U'\u3000'; };
  std::size_t start = 0;
  for (std::size_t k = 0; k < std::min<std::size_t>(text.size(), 256); ++k) {
    if (char_at(k) == U'\n') {
      start = k + 1;
      break;
    }
  }
  while (start < text.size() && is_space(char_at(start))) ++start;
  std::u32string prefix;
  for (std::size_t k = start; k < text.size() && prefix.size() < static_cast<std::size_t>(max_chars); ++k) {
    const char32_t c = char_at(k);
    if (c == U'\n' || data.vocab.unk_id() == text[k]) break;
    prefix += c;
  }
  if (prefix.size() == static_cast<std::size_t>(max_chars)) {  // cut off: end at a word boundary if there is one
    const std::size_t space = prefix.find_last_of(U' ');
    if (space != std::u32string::npos && space >= 4) prefix.resize(space);
  }
  while (!prefix.empty() && is_space(prefix.back())) prefix.pop_back();
  return prefix.empty() ? SuggestedPrefix(data.vocab, {}) : EncodeUtf8(prefix);
}

std::vector<std::string> SamplePrefixes(const std::vector<std::string>& configured, const Dataset& data) {
  if (!configured.empty()) return configured;
  return {CorpusPrefix(data)};
}

}  // namespace charlm
