// The `charlm vocab` report: corpus length, vocabulary size, documents, most frequent characters, the first ids.
#include "text/vocab_report.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "text/corpus.h"
#include "text/vocab.h"
#include "util/errors.h"
#include "util/utf8.h"

namespace charlm {

void PrintVocabReport(const VocabReportOptions& options, std::ostream& out) {
  if (options.top < 0) {
    throw UserError("top " + std::to_string(options.top) + " is negative: use 0 or more characters to list");
  }
  const DataConfig& data = options.data;
  const CorpusIds corpus = ReadCorpusIds(CorpusSource::Of(data), data.newline, data.max_chars, 1);
  const Vocab& vocab = corpus.vocab;
  const int top = std::min(options.top, vocab.size());
  const std::size_t shown = std::min<std::size_t>(20, corpus.ids.size());
  std::u32string first_chars;
  std::vector<int> first_ids;
  for (std::size_t i = 0; i < shown; ++i) {
    first_ids.push_back(corpus.ids.view()[i]);
    first_chars += vocab.CharAt(corpus.ids.view()[i]);
  }

  if (options.json) {
    nlohmann::json most = nlohmann::json::array();
    // Ids are in descending frequency, so the first `top` ids are the most frequent characters.
    for (int id = 0; id < top; ++id) {
      most.push_back({{"id", id}, {"char", EncodeUtf8(vocab.CharAt(id))}, {"count", vocab.counts()[id]}});
    }
    const nlohmann::json report = {
        {"corpus", data.corpus.paths.size() == 1 ? nlohmann::json(data.corpus.paths[0]) : nlohmann::json(data.corpus.paths)},
        {"newline", EnumName(data.newline)},
        {"max_chars", data.max_chars},
        {"characters", corpus.notes.chars},
        {"vocabulary", vocab.size()},
        {"documents", corpus.notes.documents},
        {"skipped", corpus.notes.skipped},
        {"bytes", corpus.notes.file_bytes},
        {"top", most},
        {"first_chars", EncodeUtf8(first_chars)},
        {"first_ids", first_ids}};
    out << report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  out << "corpus: " << data.corpus.Label() << " (newline " << EnumName(data.newline);
  if (data.max_chars > 0) out << ", max " << data.max_chars << " characters";
  out << ")\n";
  // The separator between documents counts among the characters, so a folder can have more characters than bytes.
  out << "characters: " << corpus.notes.chars
      << (corpus.notes.documents - corpus.notes.skipped > 1 ? " (separators between documents included)" : "") << "\n";
  out << "vocabulary: " << vocab.size() << "\n";
  // The same count as --json's "documents": every document met, the skipped ones among them.
  out << "documents: " << corpus.notes.documents << ", " << corpus.notes.skipped << " of them skipped ("
      << corpus.notes.file_bytes << " bytes read)\n";
  if (top > 0) {
    out << "top " << top << " characters (id 'character' count):\n";
    for (int id = 0; id < top; ++id) {
      out << "  " << id << " '" << PrintableCodePoint(vocab.CharAt(id)) << "' " << vocab.counts()[id] << "\n";
    }
  }
  std::string chars;
  std::string indices;
  for (std::size_t i = 0; i < shown; ++i) {
    chars += PrintableCodePoint(first_chars[i]);
    if (i > 0) indices += ", ";
    indices += std::to_string(first_ids[i]);
  }
  out << "chars: " << chars << "\n";
  out << "indices: [" << indices << "]\n";
}

}  // namespace charlm
