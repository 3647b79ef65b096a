// Turns a config's data section into the encoded corpus with its split, and picks where samples start.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "text/corpus.h"
#include "text/token_ids.h"
#include "text/vocab.h"

namespace charlm {

struct Dataset {
  Vocab vocab;
  // The corpus after the newline policy and max_chars: all of it, or a training process's share (LoadDatasetShare,
  // lib/parallel/corpus_share.h): positions [train_begin, train_begin + train_held) of the training split, then the
  // whole validation split, and no test split.
  TokenIds ids;
  SplitBounds split;
  std::int64_t train_begin = 0;
  std::int64_t train_held = -1;  // -1: ids is the whole corpus
  // What was read, when the whole corpus was (empty for a data-parallel share): the documents, in order, that
  // a checkpoint stores so that a resumed run can tell its text changed; the documents opened and skipped.
  std::vector<ManifestEntry> manifest;
  std::int64_t documents = 0;
  std::int64_t skipped = 0;

  bool whole() const { return train_held < 0; }
  std::int64_t corpus_chars() const { return split.size; }
  std::int64_t train_chars() const { return split.train_end; }
  std::int64_t val_chars() const { return split.val_end - split.train_end; }
  std::int64_t test_chars() const { return split.size - split.val_end; }

  // The training positions held, from train_begin on: the whole training split when whole().
  IdView TrainHeld() const {
    return ids.view().first(static_cast<std::size_t>(whole() ? split.train_end : train_held));
  }
  IdView Train() const {
    assert(whole());
    return TrainHeld();
  }
  IdView Validation() const {
    return ids.view().subspan(static_cast<std::size_t>(whole() ? split.train_end : train_held),
                              static_cast<std::size_t>(val_chars()));
  }
  IdView Test() const {
    assert(whole());
    return ids.view().subspan(static_cast<std::size_t>(split.val_end), static_cast<std::size_t>(test_chars()));
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



}  // namespace charlm
