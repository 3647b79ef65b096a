// The `charlm vocab` report: corpus length, vocabulary size, most frequent characters, the first characters as ids.
#include "text/vocab_report.h"

#include <algorithm>

#include "text/corpus.h"
#include "util/errors.h"
#include "util/utf8.h"
#include "text/vocab.h"

namespace charlm {

void PrintVocabReport(const VocabReportOptions& options, std::ostream& out) {
  if (options.top < 0) {
    throw UserError("top " + std::to_string(options.top) + " is negative: use 0 or more characters to list");
  }
  const std::u32string text = ReadCorpus(options.corpus, options.newline, options.max_chars);
  const Vocab vocab = Vocab::Build(text);

  out << "corpus: " << options.corpus << " (newline " << EnumName(options.newline);
  if (options.max_chars > 0) out << ", max " << options.max_chars << " characters";
  out << ")\n";
  out << "characters: " << text.size() << "\n";
  out << "vocabulary: " << vocab.size() << "\n";

  const int top = std::min(options.top, vocab.size());
  if (top > 0) {
    // Ids are already in descending frequency, so the first `top` ids are the most frequent characters.
    out << "top " << top << " characters (id 'character' count):\n";
    for (int id = 0; id < top; ++id) {
      out << "  " << id << " '" << PrintableCodePoint(vocab.CharAt(id)) << "' " << vocab.counts()[id] << "\n";
    }
  }

  const std::size_t shown = std::min<std::size_t>(20, text.size());
  std::string chars;
  std::string indices;
  for (std::size_t i = 0; i < shown; ++i) {
    chars += PrintableCodePoint(text[i]);
    if (i > 0) indices += ", ";
    indices += std::to_string(*vocab.Find(text[i]));
  }
  out << "chars: " << chars << "\n";
  out << "indices: [" << indices << "]\n";
}

}  // namespace charlm
