// Corpus loading and the sample prefixes shared by train, generate and eval.
#include "text/dataset.h"

#include <cstdio>
#include <algorithm>

#include "util/utf8.h"

#include "util/errors.h"

namespace charlm {

Dataset LoadDataset(const DataConfig& data) {
  const AllocationScope scope("the ids of corpus '" + data.corpus.Label() + "'",
                              "train on the first part of the text with data.max_chars");
  CorpusIds corpus = ReadCorpusIds(CorpusSource::Of(data), data.newline, data.max_chars, data.min_freq);
  Dataset dataset;
  dataset.manifest = std::move(corpus.notes.manifest);
  dataset.documents = corpus.notes.documents;
  dataset.skipped = corpus.notes.skipped;
  dataset.vocab = std::move(corpus.vocab);
  dataset.ids = std::move(corpus.ids);
  dataset.split = SplitCorpus(static_cast<std::int64_t>(dataset.ids.size()), data.val_fraction, data.test_fraction);
  return dataset;
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
