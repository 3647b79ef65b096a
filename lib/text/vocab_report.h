// The `charlm vocab` report: corpus length, vocabulary size, most frequent characters, the first characters as ids.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "config/enums.h"

namespace charlm {

struct VocabReportOptions {
  std::string corpus;
  NewlinePolicy newline = NewlinePolicy::kKeep;
  std::int64_t max_chars = 0;  // 0 = the whole corpus
  int top = 10;                // how many of the most frequent characters to list
};

// Reads the corpus as training would (ReadCorpus, Vocab::Build) and prints, one item per line:
// the corpus length in characters, the vocabulary size, the `top` most frequent characters with their counts, and
// the first 20 characters with their ids as the book shows them ("chars: ..." / "indices: [...]").
// Control characters are printed escaped (\n) so every item stays on one line. UserError on bad options or corpus.
void PrintVocabReport(const VocabReportOptions& options, std::ostream& out);

}  // namespace charlm
