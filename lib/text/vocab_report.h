// The `charlm vocab` report: corpus length, vocabulary size, documents, most frequent characters, the first ids.
#pragma once

#include <ostream>

#include "config/config.h"

namespace charlm {

struct VocabReportOptions {
  DataConfig data;  // the corpus as training reads it: paths, filters, separator, newline policy, max_chars
  int top = 10;     // how many of the most frequent characters to list
  bool json = false;
};

// Reads the corpus as training would (ReadCorpusIds: min_freq 1) and prints, one item per line: the corpus, its
// length in characters, the vocabulary size, the documents read and skipped and the bytes read, the `top` most
// frequent characters with their counts, and the first 20 characters with their ids as the book shows them
// ("chars: ..." / "indices: [...]"). Control characters are printed escaped (\n) so every item stays on one line.
// With json, one object: corpus, characters, vocabulary, documents, skipped, bytes, top [{id, char, count}],
// first_chars, first_ids. UserError on bad options or corpus.
void PrintVocabReport(const VocabReportOptions& options, std::ostream& out);

}  // namespace charlm
