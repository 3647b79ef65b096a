// The training text: reading a UTF-8 corpus file, applying the newline policy, and cutting train/val/test splits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/errors.h"
#include "config/enums.h"
#include "text/documents.h"
#include "text/token_ids.h"
#include "text/vocab.h"

namespace charlm {

// A text given in memory (a prefix, a separator) read by the corpus reader's rules, so that it means what the same
// bytes in a corpus file would: decoded strictly (a leading BOM skipped), each "\r\n" read as "\n", then the
// newline policy (keep: unchanged; space: each '\n' and each lone '\r' becomes one space; drop: they are removed).
// `what` names it in the invalid-UTF-8 message.
std::u32string DecodeText(std::string_view utf8, NewlinePolicy policy, const std::string& what);

// What reading a corpus noticed besides its characters; each is also logged once.
struct CorpusNotes {
  std::uint64_t file_bytes = 0;
  std::int64_t chars = 0;             // characters kept: after the newline policy and max_chars
  std::int64_t crlf_line_breaks = 0;  // "\r\n" pairs read as one "\n"
  std::int64_t control_chars = 0;     // kept controls other than \n and \t: C0 (a lone \r, form feed...), DEL, C1
  char32_t first_control = 0;
  std::int64_t first_control_index = -1;  // its position among the kept characters
  // Read whole (not a part): the documents opened (skipped ones included), those skipped, and what was read of
  // each document kept, in order. file_bytes is then the bytes read (decompressed).
  std::int64_t documents = 0;
  std::int64_t skipped = 0;
  std::vector<ManifestEntry> manifest;
};

// Reads the file in pieces, decodes it strictly, reads each "\r\n" as "\n" (so a text saved on Windows trains
// as the same text saved elsewhere), applies the policy, then keeps the first max_chars characters (0 = all), in
// that order because the book replaces newlines before slicing [0:10000]; reading stops there.
// Throws a one-line UserError naming the path for: missing file, a directory, unreadable file, empty file or empty
// after the policy, invalid UTF-8, negative max_chars, a file whose characters would not fit in memory.
std::u32string ReadCorpus(const std::string& path, NewlinePolicy policy, std::int64_t max_chars);
// Any source: one plain file as above; folders, several paths, compressed files and archives as their documents
// in order (lib/text/documents.h), source.separator between two, documents that are not text skipped and counted
// (or an error, source.on_invalid), a compressed stream's characters refused past half of the memory (UserError
// naming data.max_chars).
std::u32string ReadCorpus(const CorpusSource& source, NewlinePolicy policy, std::int64_t max_chars);

// A corpus as training holds it: the vocabulary and the ids, never the text.
struct CorpusIds {
  Vocab vocab;
  TokenIds ids;
  CorpusNotes notes;
};

// The characters ReadCorpus would return, as ids of Vocab::Build(text, min_freq), without ever holding the text:
// ids are given by first appearance while the file streams by, counted, and renumbered in place to the
// vocabulary's order at the end. Memory: the ids, 2 bytes a character below 65,536 symbols. The ids' worst case
// (2 bytes a byte of the file, or of max_chars) must fit in half of the machine's memory, checked before anything
// is allocated: the model and its workspaces need the rest. UserErrors as ReadCorpus.
CorpusIds ReadCorpusIds(const std::string& path, NewlinePolicy policy, std::int64_t max_chars, int min_freq);
CorpusIds ReadCorpusIds(const CorpusSource& source, NewlinePolicy policy, std::int64_t max_chars, int min_freq);

// A text read as ids of a vocabulary it was not built from (what `eval --text` and `score --text` score).
struct TextIds {
  TokenIds ids;                // in the vocabulary's width; characters outside it are <unk>, or left out without one
  std::int64_t chars = 0;      // characters read, those left out included
  std::u32string missing;      // the characters left out, each once, by first appearance
  CorpusNotes notes;
};

// The characters ReadCorpus would return (max_chars 0), as ids of `vocab`, streamed without holding the text:
// 2 bytes a character for vocabularies below 65,536 symbols. The same UserErrors and memory check as
// ReadCorpusIds.
TextIds ReadTextIds(const std::string& path, NewlinePolicy policy, const Vocab& vocab);
TextIds ReadTextIds(const CorpusSource& source, NewlinePolicy policy, const Vocab& vocab);

// Logs what reading noticed (Windows line breaks, control characters) as ReadCorpusIds does.
void LogCorpusNotes(const std::string& path, const CorpusNotes& notes);

// Reading a corpus in parts, for processes that each hold a share of it (lib/parallel/corpus_share.h). A part starts
// where a character starts and not between the "\r" and "\n" of a line break, so no UTF-8 sequence and no "\r\n"
// crosses a part's ends, and the characters read from there are those reading the whole file gives from there.
// (In a file that is not valid UTF-8, the part holding a bad byte says so as reading the whole file would.)

// Every process must read the same file: its size and 16 blocks of 4 KiB spread over it, to compare. The
// UserErrors of ReadCorpus for a missing, unreadable or empty file.
struct CorpusFileSample {
  std::uint64_t size = 0;
  std::string bytes;
};
CorpusFileSample SampleCorpusFile(const std::string& path, std::int64_t max_chars);

// The UserError for a corpus the newline policy leaves empty, as ReadCorpus words it.
UserError NoCharactersLeft(const std::string& path, NewlinePolicy policy);

// The first part start at or after byte `at` (at most 4 bytes on in valid UTF-8; the file's size past its end).
std::uint64_t CorpusPartStart(const std::string& path, std::uint64_t at);

// The characters of bytes [byte_begin, byte_end) (part starts), at most max_chars of them (0 = all).
struct CorpusPartCount {
  std::uint64_t byte_begin = 0, byte_end = 0;
  CorpusNotes notes;  // chars: the part's characters; first_control_index counts from the part's first character
  std::vector<std::pair<char32_t, std::int64_t>> counts;  // every character of the part with its count, by code point
};
// The UserErrors of ReadCorpus, except that a part may be empty.
CorpusPartCount CountCorpusPart(const std::string& path, NewlinePolicy policy, std::uint64_t byte_begin,
                                std::uint64_t byte_end, std::int64_t max_chars);

// Writes the ids in `vocab` of `chars` characters, those after the first skip_chars from part start byte_begin, to
// out[out_at, out_at + chars). Characters min_freq left out are <unk>. UserError when the file holds a character
// outside the vocabulary without <unk>, or ends early: it changed since the vocabulary was counted.
void ReadCorpusPart(const std::string& path, NewlinePolicy policy, std::uint64_t byte_begin, std::int64_t skip_chars,
                    std::int64_t chars, const Vocab& vocab, TokenIds& out, std::size_t out_at);

// Parses a newline policy spelling; `what` names where the text came from (e.g. "--newline") in the UserError.
NewlinePolicy ParseNewlinePolicy(std::string_view text, std::string_view what);

// train = [0, train_end), val = [train_end, val_end), test = [val_end, size).
struct SplitBounds {
  std::int64_t train_end;
  std::int64_t val_end;
  std::int64_t size;
};

// Validation and test are contiguous slices at the tail of the text (not random characters), so every split is a
// readable run of text and the model is judged on lyrics it never saw. Sizes are floor(size * fraction).
// UserError if a fraction is outside [0, 1) or the training part would be empty.
SplitBounds SplitCorpus(std::int64_t size, double val_fraction, double test_fraction);

}  // namespace charlm
