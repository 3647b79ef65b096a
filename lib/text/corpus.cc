// The training text: reading a UTF-8 corpus file, applying the newline policy, and cutting train/val/test splits.
#include "text/corpus.h"

#include <algorithm>
#include <array>
#include <tuple>
#include <cassert>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace charlm {
namespace {

// ReadCorpus holds the text: the code points (4 bytes each) and then the ids the caller makes of them.
constexpr std::uint64_t kTextMemoryPerByte = 10;
// ReadCorpusIds holds 2-byte ids, at most one per byte of the file, in at most half of the memory.
constexpr std::uint64_t kIdBytesPerChar = 2;
constexpr std::uint64_t kIdMemoryShare = 2;
constexpr std::size_t kPieceBytes = std::size_t{1} << 18;  // small enough that a piece's code points stay in cache
constexpr std::size_t kCodePoints = 0x110000;

bool IsOtherControl(char32_t c) { return (c < 0x20 && c != U'\n' && c != U'\t') || (c >= 0x7F && c <= 0x9F); }

std::string WithThousands(std::uint64_t n) {
  std::string digits = std::to_string(n);
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}

// What the file is to the user, for the messages: a training corpus (data.max_chars can take its first part) or a
// text to score (eval/score --text, read whole).
enum class IdsFileUse { kCorpus, kText };

// "corpus file" or "text file": every message names the file as what the user gave it for.
std::string FileNoun(IdsFileUse use) { return use == IdsFileUse::kText ? "text file" : "corpus file"; }

void CheckPath(const std::string& path, std::int64_t max_chars, IdsFileUse use) {
  if (max_chars < 0) {
    throw UserError("max_chars " + std::to_string(max_chars) +
                    " is negative: use 0 for the whole corpus or a positive count");
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  CheckPathLookup(path, ec, FileNoun(use));
  if (!std::filesystem::exists(status)) {
    // Where a relative path was looked for is the likely mistake; an absolute path has only the path to check.
    if (!std::filesystem::path(path).is_relative()) {
      throw UserError(FileNoun(use) + " '" + path + "' does not exist: check the path");
    }
    std::string where;
    std::error_code cwd_error;
    const std::filesystem::path cwd = std::filesystem::current_path(cwd_error);
    if (!cwd_error) where = " (relative paths are read from the current folder, " + cwd.string() + ")";
    throw UserError(FileNoun(use) + " '" + path + "' does not exist" + where +
                    ": check the path, or run from the folder it is relative to");
  }
  if (std::filesystem::is_directory(status)) {
    throw UserError(FileNoun(use) + " '" + path + "' is a directory: pass the path of a UTF-8 text file inside it");
  }
}

// The file the ids are read from, opened with the checks and messages of a regular file.
RegularFileReader OpenIdsFile(const std::string& path, IdsFileUse use) {
  return RegularFileReader(path, FileRole{FileNoun(use), "check that it is a readable file",
                                          std::numeric_limits<std::uint64_t>::max(), ""});
}

UserError EmptyFile(const std::string& path, IdsFileUse use) {
  return UserError(FileNoun(use) + " '" + path + "' is empty: give a UTF-8 text file with some text");
}

UserError NothingLeft(const std::string& path, IdsFileUse use, NewlinePolicy policy) {
  return UserError(FileNoun(use) + " '" + path + "' has no characters left after newline policy \"" +
                   std::string(EnumName(policy)) + "\": use newline \"keep\" or a file with more than line breaks");
}

// (code points): each character's id in `vocab`, -1 for characters outside it (and for <unk>'s slot).
std::vector<std::int32_t> IdOfCodePoint(const Vocab& vocab) {
  std::vector<std::int32_t> id_of(kCodePoints, -1);
  for (int id = 0; id < vocab.size(); ++id) {
    if (vocab.unk_id() != id) id_of[vocab.CharAt(id)] = id;
  }
  return id_of;
}

// Each note once per process: `train --minutes` under mpirun plans on the whole text and then each process reads
// its share (one process hands the plan's read to the run instead), and the notes of both reads are the same.
bool FirstTimeSaid(const std::string& note) {
  static std::mutex mutex;
  static std::set<std::string> said;
  const std::lock_guard<std::mutex> lock(mutex);
  return said.insert(note).second;
}

void LogNotes(const std::string& path, const CorpusNotes& notes) {
  const std::string key = path + '\0' + std::to_string(notes.crlf_line_breaks) + '\0' +
                          std::to_string(notes.control_chars) + '\0' + std::to_string(notes.first_control_index);
  if (!FirstTimeSaid(key)) return;
  if (notes.crlf_line_breaks > 0) {
    spdlog::info("{}: {} Windows line breaks (\\r\\n) read as \\n", path,
                 WithThousands(static_cast<std::uint64_t>(notes.crlf_line_breaks)));
  }
  if (notes.control_chars > 0) {
    spdlog::warn("{}: {} control characters other than \\n and \\t (the first, {}, is character {}) are kept, each "
                 "as a character of the vocabulary: remove them from the file if they are noise",
                 path, WithThousands(static_cast<std::uint64_t>(notes.control_chars)),
                 DescribeCodePoint(notes.first_control), WithThousands(static_cast<std::uint64_t>(notes.first_control_index)));
  }
}

// Bytes [begin, end) of a corpus file; a part other than the whole file begins at a part start (CorpusPartStart).
struct ByteRange {
  std::uint64_t begin = 0;
  std::uint64_t end = std::numeric_limits<std::uint64_t>::max();
  bool whole() const { return begin == 0 && end == std::numeric_limits<std::uint64_t>::max(); }
};

// A document of a folder or an archive that is not UTF-8 text: what DecodeBytes found, for the reader of
// documents to skip it or to stop with the message.
struct NotText {
  std::string message;
};

// The buffers of DecodeBytes, made once for all the documents of a corpus (a source tree has tens of thousands).
struct DecodeBuffers {
  std::unique_ptr<char[]> bytes{new char[kPieceBytes + 4]};  // a piece, after up to 3 bytes of a sequence cut
  std::unique_ptr<char32_t[]> decoded{new char32_t[kPieceBytes + 4]};  // its code points
  std::unique_ptr<char32_t[]> kept{new char32_t[kPieceBytes + 5]};  // as training sees them (+1: a held \r)
  static constexpr std::size_t kKept = kPieceBytes + 5;
};

// Decodes a stream of bytes through sink(const char32_t* chars, std::size_t count), piece by piece, as the
// characters training sees: decoded strictly (a leading BOM skipped when bom_possible), "\r\n" read as "\n", the
// newline policy applied, and nothing after `room` characters (room counts down; reading stops at 0).
// read(char* buffer, std::size_t capacity) fills the buffer, fewer bytes only at the stream's end; `unread` caps the
// bytes read. `offset` is that of the first byte in what messages name `name`. With nul_is_invalid, a NUL byte
// or invalid UTF-8 throws NotText instead of the UserError a named file gets. Fills `notes`.

template <class Read, class Sink>
void DecodeBytes(Read&& read, std::uint64_t offset, std::uint64_t unread, bool bom_possible, const std::string& name,
                 NewlinePolicy policy, bool nul_is_invalid, std::int64_t& room, CorpusNotes& notes, Sink&& sink,
                 DecodeBuffers& buffers) {
  char* const bytes = buffers.bytes.get();
  char32_t* const decoded = buffers.decoded.get();
  char32_t* const kept = buffers.kept.get();
  std::size_t held = 0;
  bool first_piece = bom_possible, pending_cr = false;
  std::size_t count = 0;                // characters kept from this piece
  const std::int64_t chars_before = notes.chars;
  // The slow path, for line breaks and control characters: the policy, and the count of odd controls.
  const auto keep = [&](char32_t c) {
    if (c == U'\n' || c == U'\r') {
      if (policy == NewlinePolicy::kDrop) return;
      if (policy == NewlinePolicy::kSpace) c = U' ';
    }
    if (IsOtherControl(c)) {
      if (c == 0 && nul_is_invalid) {
        throw NotText{"a NUL byte at character " +
                      std::to_string(notes.chars - chars_before + static_cast<std::int64_t>(count)) + ": a binary file"};
      }
      if (notes.control_chars++ == 0) {
        notes.first_control = c;
        notes.first_control_index = notes.chars + static_cast<std::int64_t>(count);
      }
    }
    kept[count++] = c;
  };
  while (room > 0) {
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(kPieceBytes, unread));
    const std::size_t got = read(bytes + held, wanted);
    unread -= got;
    const bool at_end = got < wanted || unread == 0;
    const std::size_t length = held + got;
    std::size_t start = 0;
    if (first_piece && length >= 3 && std::string_view(bytes, 3) == "\xEF\xBB\xBF") start = 3;
    first_piece = false;
    Utf8ChunkResult piece{};
    try {
      piece = DecodeUtf8Chunk(std::string_view(bytes + start, length - start), offset + start, at_end, name,
                              decoded);
    } catch (const UserError& e) {
      if (!nul_is_invalid) throw;
      // "NAME: invalid UTF-8 at ...: save the file as UTF-8" without the name and the fix, which the skip names.
      std::string_view message = e.what();
      if (message.starts_with(name + ": ")) message.remove_prefix(name.size() + 2);
      message = message.substr(0, message.rfind(": save"));
      throw NotText{std::string(message)};
    }
    count = 0;
    const auto cap = static_cast<std::size_t>(std::min<std::int64_t>(room, static_cast<std::int64_t>(DecodeBuffers::kKept)));
    for (std::size_t k = 0; k < piece.chars && count < cap; ++k) {
      const char32_t c = decoded[k];
      if (!pending_cr && c >= 0x20 && (c < 0x7F || c > 0x9F)) [[likely]] {  // kept as they are
        kept[count++] = c;
        continue;
      }
      if (pending_cr) {
        pending_cr = false;
        if (c == U'\n') {
          ++notes.crlf_line_breaks;
          keep(U'\n');
          continue;
        }
        keep(U'\r');
        if (count == cap) break;
      }
      if (c == U'\r') {
        pending_cr = true;
      } else {
        keep(c);
      }
    }
    if (at_end && pending_cr && count < cap) keep(U'\r');
    notes.chars += static_cast<std::int64_t>(count);
    room -= static_cast<std::int64_t>(count);
    if (count > 0) sink(kept, count);
    if (at_end) break;
    const std::size_t used = start + piece.bytes_used;
    held = length - used;
    assert(held <= 3);
    std::memmove(bytes, bytes + used, held);
    offset += used;
  }
}

// Streams an open corpus file (or bytes [range.begin, range.end) of it, each a part start (CorpusPartStart) or the
// file's end, so that no "\r\n" or UTF-8 sequence straddles it) through sink as DecodeBytes does, stopping after
// the first max_chars characters (0 = all). A part may be empty or have no characters left after the policy; the
// whole file may not. Fills `notes`, and the manifest's one entry when the whole file is read.
template <class Sink>
void StreamCorpus(RegularFileReader& file, const std::string& path, NewlinePolicy policy, std::int64_t max_chars,
                  IdsFileUse use, CorpusNotes& notes, Sink&& sink, ByteRange range = {}) {
  if (file.size() == 0) throw EmptyFile(path, use);
  notes.file_bytes = file.size();
  const bool whole_file = range.whole();
  range.end = std::min<std::uint64_t>(range.end, file.size());
  if (range.begin >= range.end) return;
  file.Seek(range.begin);
  std::int64_t room = max_chars > 0 ? max_chars : std::numeric_limits<std::int64_t>::max();
  ManifestEntry entry{path, "", 0, 0};
  DocumentHash hash;
  const auto read = [&](char* buffer, std::size_t capacity) {
    const std::size_t got = file.Read(buffer, capacity);
    if (whole_file) {
      entry.bytes += got;
      hash.Add(buffer, got);
    }
    return got;
  };
  DecodeBuffers buffers;
  DecodeBytes(read, range.begin, range.end - range.begin, range.begin == 0, path, policy, false, room, notes, sink,
              buffers);
  if (notes.chars == 0 && whole_file) throw NothingLeft(path, use, policy);
  if (whole_file) {
    notes.documents = 1;
    entry.hash = hash.Finish();
    notes.manifest.push_back(std::move(entry));
  }
}

// The most characters of several documents whose ids fit in half of the memory (0: the memory is unknown).
std::uint64_t IdsBudgetChars() { return AvailableMemoryBytes() / kIdMemoryShare / kIdBytesPerChar; }

// The UserError for a corpus of several documents, or a compressed one, that holds more characters than fit.
UserError TooManyChars(const CorpusSource& source, IdsFileUse use, std::uint64_t budget) {
  const std::string what = std::string(use == IdsFileUse::kText ? "text '" : "corpus '") + source.Label() +
                           "' holds more than " + WithThousands(budget) + " characters, whose ids (" +
                           std::to_string(kIdBytesPerChar) + " bytes a character) would need more than half of " +
                           DescribeAvailableMemory();
  if (use == IdsFileUse::kText) return UserError(what + ": score it in parts (split the text)");
  return UserError(what + ": train on its first part with --set data.max_chars=" + std::to_string(budget) +
                   ", or leave documents out with data.include/data.exclude");
}

// Reads the documents of a source (folders, several paths, compressed files, archives) as one text through
// `sink`, which also offers Mark() and Rollback() so that a document found not to be text halfway is taken back:
// documents in order, source.separator between two that gave characters, each decoded as DecodeBytes does (a
// BOM at each start skipped), nothing after max_chars characters (0 = all). Documents of folders and archives
// that are not text are skipped and counted (source.on_invalid "skip") or an error naming them; a named file's
// are always an error. Fills `notes`: counts, and the manifest of the documents read.
template <class Sink>
void StreamDocuments(const CorpusSource& source, DocumentPrefetch& stream, NewlinePolicy policy,
                     std::int64_t max_chars, IdsFileUse use, CorpusNotes& notes, Sink& sink) {
  const std::uint64_t budget = IdsBudgetChars();
  const bool capped = max_chars > 0;
  const std::int64_t limit = capped ? max_chars
                             : budget > 0 ? static_cast<std::int64_t>(std::min<std::uint64_t>(budget, INT64_MAX - 1)) + 1
                                          : std::numeric_limits<std::int64_t>::max();
  std::int64_t room = limit;
  const std::u32string separator = DecodeText(source.separator, policy, "data.separator");
  bool any_chars = false;
  DecodeBuffers buffers;
  // The manifest is kept aside while reading, so that the notes a document taken back restores are a few counts.
  std::vector<ManifestEntry> manifest;
  while (room > 0 && stream.Next()) {
    const CorpusNotes before = notes;
    const std::int64_t room_before = room;
    sink.Mark();
    if (any_chars && !separator.empty()) {
      const auto count = static_cast<std::size_t>(std::min<std::int64_t>(room, static_cast<std::int64_t>(separator.size())));
      sink(separator.data(), count);
      notes.chars += static_cast<std::int64_t>(count);
      room -= static_cast<std::int64_t>(count);
    }
    const std::int64_t chars_before_document = notes.chars;
    ManifestEntry entry{stream.name(), stream.member(), 0, 0};
    DocumentHash hash;
    const auto read = [&](char* buffer, std::size_t capacity) {
      const std::size_t got = stream.Read(buffer, capacity);
      entry.bytes += got;
      hash.Add(buffer, got);
      return got;
    };
    try {
      DecodeBytes(read, 0, std::numeric_limits<std::uint64_t>::max(), true, stream.name(), policy,
                  stream.in_container(), room, notes, sink, buffers);
    } catch (const NotText& not_text) {
      if (source.on_invalid == InvalidDocumentPolicy::kError) {
        throw UserError("corpus document '" + stream.name() + "' is not UTF-8 text (" + not_text.message +
                        "): leave it out with data.exclude, or skip such documents with --set data.on_invalid=skip");
      }
      sink.Rollback();
      notes = before;
      room = room_before;
      stream.Skip("not UTF-8 text (" + not_text.message + "; data.on_invalid is skip)");
      continue;
    }
    if (notes.chars == chars_before_document) {  // nothing to separate from the next one
      sink.Rollback();
      notes = before;
      room = room_before;
    } else {
      any_chars = true;
    }
    notes.file_bytes += entry.bytes;
    entry.hash = hash.Finish();
    manifest.push_back(std::move(entry));
  }
  notes.manifest = std::move(manifest);
  if (!capped && room == 0) throw TooManyChars(source, use, budget);
  LogSkippedDocuments(stream.skipped());
  notes.documents = stream.documents();
  notes.skipped = stream.skipped();
  if (notes.chars == 0) {
    throw UserError(std::string(use == IdsFileUse::kText ? "text '" : "corpus '") + source.Label() + "' has no text" +
                    (notes.documents == 0 ? std::string(": no documents were found")
                                          : ": " + std::to_string(notes.documents) + " documents read, " +
                                                std::to_string(notes.skipped) + " skipped") +
                    (use == IdsFileUse::kText ? "; check the path"
                                              : "; check the paths, data.include/data.exclude and data.newline"));
  }
}

// A sink for a text held whole.
struct TextSink {
  std::u32string& text;
  std::size_t mark = 0;
  void operator()(const char32_t* chars, std::size_t count) { text.append(chars, count); }
  void Mark() { mark = text.size(); }
  void Rollback() { text.resize(mark); }
};

// The most characters the file (or max_chars) can give, after checking that their ids fit in memory.
std::uint64_t CheckIdsFit(const RegularFileReader& file, const std::string& path, std::int64_t max_chars,
                          IdsFileUse use) {
  // A character takes at least one byte, so the file's size (or max_chars) bounds the ids.
  const std::uint64_t most_chars =
      max_chars > 0 ? std::min<std::uint64_t>(file.size(), static_cast<std::uint64_t>(max_chars)) : file.size();
  const std::uint64_t memory = AvailableMemoryBytes();
  const std::uint64_t budget = memory / kIdMemoryShare;
  if (memory > 0 && most_chars > budget / kIdBytesPerChar) {
    const std::uint64_t fits = budget / kIdBytesPerChar;
    const std::string need = FormatBytes(most_chars * kIdBytesPerChar) + " (" + std::to_string(kIdBytesPerChar) +
                             " bytes a character), more than half of " + DescribeAvailableMemory();
    if (use == IdsFileUse::kText) {
      throw UserError("text file '" + path + "' is " + FormatBytes(file.size()) + ", whose ids need up to " + need +
                      ": score it in parts of at most " + WithThousands(fits) +
                      " characters (split the file), or use a machine with more memory");
    }
    // The values to type are plain digits: a config or --set value takes no thousands separators.
    if (max_chars > 0 && static_cast<std::uint64_t>(max_chars) < file.size()) {
      throw UserError("data.max_chars " + std::to_string(max_chars) + " of corpus file '" + path + "' needs up to " +
                      need + ": lower data.max_chars to at most " + std::to_string(fits));
    }
    throw UserError("corpus file '" + path + "' is " + FormatBytes(file.size()) + ", whose ids need up to " + need +
                    ": train on its first part with --set data.max_chars=" + std::to_string(fits) +
                    ", or on a machine with more memory");
  }
  return most_chars;
}

// Ids by first appearance while the text streams by, with counts; renumbered to the vocabulary's order at the end.
class FirstAppearanceIds {
 public:
  // `likely_chars`: reserved instead when `most_chars` cannot be (an address-space limit).
  explicit FirstAppearanceIds(std::size_t most_chars, std::size_t likely_chars = 0)
      : most_chars_(most_chars), slot_(kCodePoints, 0) {
    try {
      narrow_.reserve(most_chars);  // untouched pages of the reservation cost no memory
    } catch (const std::bad_alloc&) {
      most_chars_ = likely_chars;
      narrow_.reserve(likely_chars);
    }
  }

  void Add(const char32_t* chars, std::size_t count) {
    std::size_t k = 0;
    if (wide_.empty()) {
      const std::size_t base = narrow_.size();
      narrow_.resize(base + count);
      std::uint16_t* out = narrow_.data() + base;
      std::int64_t* counts = counts_.data();
      for (; k < count; ++k) {
        std::uint32_t slot = slot_[chars[k]];
        if (slot == 0) [[unlikely]] {
          slot = NewSlot(chars[k]);
          counts = counts_.data();
        }
        if (slot > 0x10000) [[unlikely]] {  // the 65,537th symbol: from here on the ids are 4 bytes
          narrow_.resize(base + k);
          Widen();
          break;
        }
        ++counts[slot - 1];
        out[k] = static_cast<std::uint16_t>(slot - 1);
      }
      if (k == count) return;
    }
    for (; k < count; ++k) {
      std::uint32_t slot = slot_[chars[k]];
      if (slot == 0) slot = NewSlot(chars[k]);
      ++counts_[slot - 1];
      wide_.push_back(static_cast<std::int32_t>(slot - 1));
    }
  }

  void operator()(const char32_t* chars, std::size_t count) { Add(chars, count); }

  // Where a document starts, and taking it back (StreamDocuments): its ids are removed and their counts undone.
  void Mark() { mark_ = size(); }
  void Rollback() {
    if (wide_.empty()) {
      for (std::size_t k = mark_; k < narrow_.size(); ++k) --counts_[narrow_[k]];
      narrow_.resize(std::min(narrow_.size(), mark_));
    } else {
      for (std::size_t k = mark_; k < wide_.size(); ++k) --counts_[static_cast<std::size_t>(wide_[k])];
      wide_.resize(std::min(wide_.size(), mark_));
    }
  }

  // The vocabulary of the counts, and the ids renumbered to it in the narrowest width that holds it. Characters
  // whose only occurrences were taken back have no id.
  std::pair<Vocab, TokenIds> Finish(int min_freq) {
    std::vector<std::pair<char32_t, std::int64_t>> counts;
    for (std::size_t id = 0; id < chars_.size(); ++id) {
      if (counts_[id] > 0) counts.emplace_back(chars_[id], counts_[id]);
    }
    Vocab vocab = Vocab::FromCounts(std::move(counts), min_freq);
    std::vector<std::int32_t> renumber(chars_.size(), 0);
    for (std::size_t id = 0; id < chars_.size(); ++id) {
      if (counts_[id] == 0) continue;
      const std::optional<int> found = vocab.Find(chars_[id]);
      assert(found || vocab.unk_id());
      renumber[id] = found ? *found : *vocab.unk_id();
    }
    if (wide_.empty()) {
      for (std::uint16_t& id : narrow_) id = static_cast<std::uint16_t>(renumber[id]);
      return {std::move(vocab), TokenIds(std::move(narrow_))};
    }
    if (TokenIds::WidthFor(vocab.size()) == 2) {  // min_freq folded enough symbols into <unk>
      std::vector<std::uint16_t> narrow(wide_.size());
      for (std::size_t k = 0; k < wide_.size(); ++k)
        narrow[k] = static_cast<std::uint16_t>(renumber[static_cast<std::size_t>(wide_[k])]);
      return {std::move(vocab), TokenIds(std::move(narrow))};
    }
    for (std::int32_t& id : wide_) id = renumber[static_cast<std::size_t>(id)];
    return {std::move(vocab), TokenIds(std::move(wide_))};
  }

  std::size_t size() const { return wide_.empty() ? narrow_.size() : wide_.size(); }

 private:
  // A first-appearance id for a character not seen before, as its slot (id + 1).
  std::uint32_t NewSlot(char32_t c) {
    chars_.push_back(c);
    counts_.push_back(0);
    slot_[c] = static_cast<std::uint32_t>(chars_.size());
    return slot_[c];
  }

  void Widen() {
    wide_.reserve(most_chars_);
    wide_.assign(narrow_.begin(), narrow_.end());
    narrow_ = {};
  }

  std::size_t most_chars_;
  std::vector<std::uint32_t> slot_;  // (code points): 1 + the character's first-appearance id, 0 = not seen yet
  std::vector<char32_t> chars_;      // by first-appearance id
  std::vector<std::int64_t> counts_;
  std::vector<std::uint16_t> narrow_;  // the ids while there are at most 65,536 symbols
  std::vector<std::int32_t> wide_;     // the ids after that
  std::size_t mark_ = 0;
};

}  // namespace

std::u32string DecodeText(std::string_view utf8, NewlinePolicy policy, const std::string& what) {
  std::u32string text;
  if (utf8.empty()) return text;
  TextSink sink{text};
  CorpusNotes notes;
  std::int64_t room = std::numeric_limits<std::int64_t>::max();
  std::size_t at = 0;
  const auto read = [&](char* buffer, std::size_t capacity) {
    const std::size_t got = std::min(capacity, utf8.size() - at);
    std::memcpy(buffer, utf8.data() + at, got);
    at += got;
    return got;
  };
  DecodeBuffers buffers;
  DecodeBytes(read, 0, utf8.size(), true, what, policy, false, room, notes, sink, buffers);
  return text;
}

std::u32string ReadCorpus(const CorpusSource& source, NewlinePolicy policy, std::int64_t max_chars) {
  std::u32string text;
  TextSink sink{text};
  CorpusNotes notes;
  if (!IsSinglePlainFile(source)) {
    if (max_chars < 0) CheckPath(source.paths.front(), max_chars, IdsFileUse::kCorpus);
    DocumentPrefetch stream(source);
    StreamDocuments(source, stream, policy, max_chars, IdsFileUse::kCorpus, notes, sink);
    LogNotes(source.Label(), notes);
    return text;
  }
  const std::string& path = source.paths.front();
  CheckPath(path, max_chars, IdsFileUse::kCorpus);
  const std::uint64_t memory = PhysicalMemoryBytes();
  const std::uint64_t limit = memory > 0 ? memory / kTextMemoryPerByte : std::numeric_limits<std::uint64_t>::max();
  RegularFileReader file(
      path, FileRole{"corpus file", "check that it is a readable file", max_chars > 0 ? std::numeric_limits<std::uint64_t>::max() : limit,
                     "charlm holds this text in memory, about " + std::to_string(kTextMemoryPerByte) +
                         " bytes per byte of text, and this machine has " + FormatBytes(memory) +
                         "; use a shorter part of the text"});
  StreamCorpus(file, path, policy, max_chars, IdsFileUse::kCorpus, notes, sink);
  LogNotes(path, notes);
  return text;
}

std::u32string ReadCorpus(const std::string& path, NewlinePolicy policy, std::int64_t max_chars) {
  return ReadCorpus(CorpusSource::File(path), policy, max_chars);
}

CorpusIds ReadCorpusIds(const CorpusSource& source, NewlinePolicy policy, std::int64_t max_chars, int min_freq) {
  if (source.paths.empty()) throw UserError("data.corpus names no path: give the path of a text file or folder");
  if (max_chars < 0) CheckPath(source.paths.front(), max_chars, IdsFileUse::kCorpus);
  if (min_freq < 1) {  // before a gigabyte is read for nothing
    throw UserError("min_freq " + std::to_string(min_freq) + " is below 1: use 1 to keep every character");
  }
  CorpusIds corpus;
  if (IsSinglePlainFile(source)) {
    const std::string& path = source.paths.front();
    CheckPath(path, max_chars, IdsFileUse::kCorpus);
    RegularFileReader file = OpenIdsFile(path, IdsFileUse::kCorpus);
    const std::uint64_t most_chars = CheckIdsFit(file, path, max_chars, IdsFileUse::kCorpus);
    FirstAppearanceIds ids(static_cast<std::size_t>(most_chars));
    StreamCorpus(file, path, policy, max_chars, IdsFileUse::kCorpus, corpus.notes, ids);
    LogNotes(path, corpus.notes);
    std::tie(corpus.vocab, corpus.ids) = ids.Finish(min_freq);
    return corpus;
  }
  // The characters are not known before a compressed stream is read: the ids reserve (address space, not memory)
  // 16 characters a stored byte (xz packs source code about 10 to 1), at most what max_chars or the memory allows,
  // so that they do not grow by copying, which would need 1.5 times their size. Under an address-space limit they
  // reserve the bytes stored and grow from there.
  DocumentPrefetch stream(source);
  constexpr std::uint64_t kCharsPerStoredByte = 16, kLeastReserved = std::uint64_t{1} << 26;
  std::uint64_t most = std::max(kLeastReserved, kCharsPerStoredByte * stream.stored_bytes());
  if (IdsBudgetChars() > 0) most = std::min(most, IdsBudgetChars());
  if (max_chars > 0) most = std::min<std::uint64_t>(most, static_cast<std::uint64_t>(max_chars));
  FirstAppearanceIds ids(static_cast<std::size_t>(most),
                         static_cast<std::size_t>(std::min<std::uint64_t>(most, stream.stored_bytes())));
  try {
    StreamDocuments(source, stream, policy, max_chars, IdsFileUse::kCorpus, corpus.notes, ids);
  } catch (const std::bad_alloc&) {
    // The ids outgrew the room the budget was taken from (under ulimit -v the reading threads' own memory comes
    // out of it too): the same refusal as the budget's, at the characters read, not a generic out-of-memory line.
    throw TooManyChars(source, IdsFileUse::kCorpus, ids.size());
  }
  LogNotes(source.Label(), corpus.notes);
  std::tie(corpus.vocab, corpus.ids) = ids.Finish(min_freq);
  return corpus;
}

CorpusIds ReadCorpusIds(const std::string& path, NewlinePolicy policy, std::int64_t max_chars, int min_freq) {
  return ReadCorpusIds(CorpusSource::File(path), policy, max_chars, min_freq);
}

namespace {

// The ids of a text in a given vocabulary, for ReadTextIds.
class VocabIds {
 public:
  VocabIds(const Vocab& vocab, std::uint64_t most_chars, TextIds& text)
      : id_of_(IdOfCodePoint(vocab)), unknown_(vocab.unk_id() ? *vocab.unk_id() : -1),
        width_(TokenIds::WidthFor(vocab.size())), text_(text) {
    if (width_ == 2) {
      narrow_.reserve(static_cast<std::size_t>(most_chars));  // untouched pages of the reservation cost no memory
    } else {
      wide_.reserve(static_cast<std::size_t>(most_chars));
    }
  }

  void operator()(const char32_t* chars, std::size_t count) {
    for (std::size_t k = 0; k < count; ++k) {
      std::int32_t id = id_of_[chars[k]];
      if (id < 0) {
        id = unknown_;
        if (id < 0) {
          if (text_.missing.find(chars[k]) == std::u32string::npos) text_.missing.push_back(chars[k]);
          continue;
        }
      }
      if (width_ == 2) {
        narrow_.push_back(static_cast<std::uint16_t>(id));
      } else {
        wide_.push_back(id);
      }
    }
  }
  void Mark() { mark_ = {narrow_.size(), wide_.size(), text_.missing.size()}; }
  void Rollback() {
    narrow_.resize(mark_[0]);
    wide_.resize(mark_[1]);
    text_.missing.resize(mark_[2]);
  }

  TokenIds Finish() { return width_ == 2 ? TokenIds(std::move(narrow_)) : TokenIds(std::move(wide_)); }

 private:
  std::vector<std::int32_t> id_of_;
  std::int32_t unknown_;
  int width_;
  TextIds& text_;
  std::vector<std::uint16_t> narrow_;
  std::vector<std::int32_t> wide_;
  std::array<std::size_t, 3> mark_{};
};

}  // namespace

TextIds ReadTextIds(const CorpusSource& source, NewlinePolicy policy, const Vocab& vocab) {
  if (source.paths.empty()) throw UserError("no text to read: give the path of a text file or folder");
  TextIds text;
  if (IsSinglePlainFile(source)) {
    const std::string& path = source.paths.front();
    CheckPath(path, 0, IdsFileUse::kText);
    RegularFileReader file = OpenIdsFile(path, IdsFileUse::kText);
    VocabIds ids(vocab, CheckIdsFit(file, path, 0, IdsFileUse::kText), text);
    StreamCorpus(file, path, policy, 0, IdsFileUse::kText, text.notes, ids);
    LogNotes(path, text.notes);
    text.ids = ids.Finish();
  } else {
    DocumentPrefetch stream(source);
    std::uint64_t expected = stream.stored_bytes();
    if (const std::uint64_t budget = IdsBudgetChars(); budget > 0) expected = std::min(expected, budget);
    VocabIds ids(vocab, expected, text);
    StreamDocuments(source, stream, policy, 0, IdsFileUse::kText, text.notes, ids);
    LogNotes(source.Label(), text.notes);
    text.ids = ids.Finish();
  }
  text.chars = text.notes.chars;
  return text;
}

TextIds ReadTextIds(const std::string& path, NewlinePolicy policy, const Vocab& vocab) {
  return ReadTextIds(CorpusSource::File(path), policy, vocab);
}

void LogCorpusNotes(const std::string& path, const CorpusNotes& notes) { LogNotes(path, notes); }

UserError NoCharactersLeft(const std::string& path, NewlinePolicy policy) {
  return NothingLeft(path, IdsFileUse::kCorpus, policy);
}

CorpusFileSample SampleCorpusFile(const std::string& path, std::int64_t max_chars) {
  CheckPath(path, max_chars, IdsFileUse::kCorpus);
  RegularFileReader file = OpenIdsFile(path, IdsFileUse::kCorpus);
  if (file.size() == 0) throw EmptyFile(path, IdsFileUse::kCorpus);
  CorpusFileSample sample;
  sample.size = file.size();
  constexpr std::uint64_t kBlocks = 16, kBlockBytes = 4096;
  std::vector<char> block(kBlockBytes);
  for (std::uint64_t k = 0; k < kBlocks; ++k) {
    file.Seek(sample.size * k / kBlocks);
    sample.bytes.append(block.data(), file.Read(block.data(), block.size()));
  }
  return sample;
}

std::uint64_t CorpusPartStart(const std::string& path, std::uint64_t at) {
  if (at == 0) return 0;
  RegularFileReader file = OpenIdsFile(path, IdsFileUse::kCorpus);
  if (at >= file.size()) return file.size();
  // From the byte before `at`: whether it is a '\r' decides whether a '\n' at `at` may start a part.
  std::uint64_t position = at - 1;
  file.Seek(position);
  std::vector<char> bytes(4096);
  char before = 0;
  bool first = true;
  while (position < file.size()) {
    const std::size_t got = file.Read(bytes.data(), bytes.size());
    if (got == 0) break;
    for (std::size_t k = 0; k < got; ++k, ++position) {
      const char c = bytes[k];
      if (!first) {
        const bool continuation = (static_cast<unsigned char>(c) & 0xC0) == 0x80;
        if (!continuation && !(before == '\r' && c == '\n')) return position;
      }
      first = false;
      before = c;
    }
  }
  return file.size();
}

CorpusPartCount CountCorpusPart(const std::string& path, NewlinePolicy policy, std::uint64_t byte_begin,
                                std::uint64_t byte_end, std::int64_t max_chars) {
  CheckPath(path, max_chars, IdsFileUse::kCorpus);
  RegularFileReader file = OpenIdsFile(path, IdsFileUse::kCorpus);
  CorpusPartCount part;
  part.byte_begin = byte_begin;
  part.byte_end = std::min<std::uint64_t>(byte_end, file.size());
  std::vector<std::int64_t> count_of(kCodePoints, 0);  // (code points)
  StreamCorpus(file, path, policy, max_chars, IdsFileUse::kCorpus, part.notes,
               [&](const char32_t* chars, std::size_t count) {
                 for (std::size_t k = 0; k < count; ++k) ++count_of[chars[k]];
               },
               ByteRange{byte_begin, byte_end});
  for (std::size_t c = 0; c < kCodePoints; ++c) {
    if (count_of[c] > 0) part.counts.emplace_back(static_cast<char32_t>(c), count_of[c]);
  }
  return part;
}

void ReadCorpusPart(const std::string& path, NewlinePolicy policy, std::uint64_t byte_begin, std::int64_t skip_chars,
                    std::int64_t chars, const Vocab& vocab, TokenIds& out, std::size_t out_at) {
  assert(skip_chars >= 0 && chars >= 0 && out_at + static_cast<std::size_t>(chars) <= out.size());
  if (chars == 0) return;
  RegularFileReader file = OpenIdsFile(path, IdsFileUse::kCorpus);
  const std::vector<std::int32_t> id_of = IdOfCodePoint(vocab);
  const std::int32_t unknown = vocab.unk_id() ? *vocab.unk_id() : -1;
  std::int64_t seen = 0;
  std::size_t at = out_at;
  CorpusNotes notes;
  StreamCorpus(file, path, policy, skip_chars + chars, IdsFileUse::kCorpus, notes,
               [&](const char32_t* piece, std::size_t count) {
                 const auto skipped = static_cast<std::size_t>(std::clamp<std::int64_t>(skip_chars - seen, 0, static_cast<std::int64_t>(count)));
                 seen += static_cast<std::int64_t>(count);
                 for (std::size_t k = skipped; k < count; ++k) {
                   const std::int32_t id = id_of[piece[k]] >= 0 ? id_of[piece[k]] : unknown;
                   if (id < 0) {
                     throw UserError(FileNoun(IdsFileUse::kCorpus) + " '" + path + "' holds " + DescribeCodePoint(piece[k]) +
                                     ", which its vocabulary, counted moments before, does not: the file changed "
                                     "while it was read; train again once it is no longer being written");
                   }
                   out.Set(at++, id);
                 }
               },
               ByteRange{byte_begin, std::numeric_limits<std::uint64_t>::max()});
  if (seen < skip_chars + chars) {
    throw UserError(FileNoun(IdsFileUse::kCorpus) + " '" + path + "' ended after " + std::to_string(seen) +
                    " of the " + std::to_string(skip_chars + chars) + " characters read from byte " +
                    std::to_string(byte_begin) + ": the file changed while it was read; train again once it is no "
                    "longer being written");
  }
}

NewlinePolicy ParseNewlinePolicy(std::string_view text, std::string_view what) {
  if (auto policy = ParseEnum<NewlinePolicy>(text)) return *policy;
  throw UserError(std::string(what) + " \"" + std::string(text) + "\" is not a newline policy: use one of " +
                  EnumChoices<NewlinePolicy>() + EnumSuggestion<NewlinePolicy>(text));
}

SplitBounds SplitCorpus(std::int64_t size, double val_fraction, double test_fraction) {
  assert(size >= 0);
  const auto check_fraction = [](const char* name, double fraction) {
    if (!(fraction >= 0.0 && fraction < 1.0)) {
      std::ostringstream message;
      message << name << " " << fraction << " is outside [0, 1): use a fraction such as 0.1";
      throw UserError(message.str());
    }
  };
  check_fraction("val_fraction", val_fraction);
  check_fraction("test_fraction", test_fraction);
  const auto val_size = static_cast<std::int64_t>(std::floor(static_cast<double>(size) * val_fraction));
  const auto test_size = static_cast<std::int64_t>(std::floor(static_cast<double>(size) * test_fraction));
  const std::int64_t train_size = size - val_size - test_size;
  if (train_size <= 0) {
    std::ostringstream message;
    message << "val_fraction " << val_fraction << " + test_fraction " << test_fraction
            << " leave no training text out of " << size
            << " characters: lower the fractions so their sum is well below 1";
    throw UserError(message.str());
  }
  return SplitBounds{train_size, train_size + val_size, size};
}

}  // namespace charlm
