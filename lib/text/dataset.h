// Turns a config into the pieces every command needs: the encoded corpus with its split, the model spec, and
// a model restored from a checkpoint.
#pragma once

#include <string>
#include <vector>

#include "checkpoint.h"
#include "config.h"
#include "text/corpus.h"
#include "model/model.h"
#include "text/token_ids.h"
#include "text/vocab.h"

namespace charlm {

struct Dataset {
  Vocab vocab;
  TokenIds ids;  // the whole corpus after the newline policy and max_chars
  SplitBounds split;
  IdView Train() const { return ids.view().first(static_cast<std::size_t>(split.train_end)); }
  IdView Validation() const {
    return ids.view().subspan(static_cast<std::size_t>(split.train_end),
                              static_cast<std::size_t>(split.val_end - split.train_end));
  }
  IdView Test() const {
    return ids.view().subspan(static_cast<std::size_t>(split.val_end), static_cast<std::size_t>(split.size - split.val_end));
  }
};

// Where samples start when generate.prefixes is empty: up to max_chars characters of the validation split (the
// training text without one), from its first line start within its first 256 characters if it has one, after any
// leading whitespace, cut at the next line break. Falls back to the most frequent character; text of the corpus
// itself, so it fits any language.
std::string CorpusPrefix(const Dataset& data, int max_chars = 16);

// generate.prefixes, or {CorpusPrefix(data)} when it is empty.
std::vector<std::string> SamplePrefixes(const std::vector<std::string>& configured, const Dataset& data);

// Reads data.corpus and builds the vocabulary from the whole text (the book's choice), then encodes and splits it.
Dataset LoadDataset(const DataConfig& data);

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
