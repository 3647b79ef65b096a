// The documents a corpus names, as byte streams in a fixed order: files, folders read recursively in sorted path
// order, compressed files and archives read through libarchive in archive order; nothing is unpacked to disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "config/enums.h"

namespace charlm {

// What a corpus is read from: the paths of data.corpus (or eval/score --text) and the keys that shape a corpus of
// several documents.
struct CorpusSource {
  std::vector<std::string> paths;
  std::vector<std::string> include;  // glob patterns a document of a folder or archive must match (empty = all)
  std::vector<std::string> exclude;
  std::string separator = "\n";      // between two documents that each gave characters
  InvalidDocumentPolicy on_invalid = InvalidDocumentPolicy::kSkip;

  static CorpusSource Of(const DataConfig& data);
  // One path, the other keys at their defaults.
  static CorpusSource File(const std::string& path);
  std::string Label() const { return CorpusPaths{paths}.Label(); }
};

// eval/score --text PATH read as the checkpoint's corpus was: a folder or archive with its data.include,
// data.exclude, data.separator and data.on_invalid (a source tree's model scores another tree's *.c and *.h).
CorpusSource TextSourceOf(const std::string& path, const DataConfig& data);

// What the first bytes of a file say it is.
enum class StreamKind { kPlain, kCompressed, kArchive };
StreamKind DetectStreamKind(const char* head, std::size_t size);

// True when the source is one path naming a plain file (or nothing that exists: its reader says what is wrong):
// read as before, seekable and shareable by byte range among processes.
bool IsSinglePlainFile(const CorpusSource& source);

// What a run on this corpus path is called (train's runs/<name>): "notes" for notes.txt and notes.txt.gz,
// "linux-source-6.1" for linux-source-6.1.tar.xz, "lyrics" for the folder lyrics/ (a trailing slash included).
// Empty when the path names nothing ("", "/").
std::string CorpusRunName(const std::string& path);

// One document read: what the corpus's manifest stores, so that a resumed run can tell that its text changed.
struct ManifestEntry {
  std::string name;    // as messages name it (DocumentStream::name)
  std::string member;  // what is compared: the path inside its folder or archive, "" for a named file
  std::uint64_t bytes = 0;  // as read: decompressed, up to where data.max_chars stopped reading
  std::uint64_t hash = 0;   // DocumentHash of those bytes

  bool SameAs(const ManifestEntry& other) const {
    return member == other.member && bytes == other.bytes && hash == other.hash;
  }
};

// A manifest as a checkpoint stores it: [[member, bytes, "hash in hex", name], ...].
nlohmann::json ManifestToJson(const std::vector<ManifestEntry>& manifest);
// UserError naming `source` for a malformed one.
std::vector<ManifestEntry> ManifestFromJson(const nlohmann::json& j, const std::string& source);
// The first difference between the manifest a checkpoint stored and the one read now, in words ("document
// 'sub/a.txt' has 1,200 bytes now, 1,234 then"), or "" when they are the same.
std::string ManifestDifference(const std::vector<ManifestEntry>& then, const std::vector<ManifestEntry>& now);

// A document's hash, fed in pieces of any sizes: FNV-1a 64 over its 8-byte little-endian words (a word at a time,
// 8 times fewer dependent multiplies than over bytes), the last partial word's bytes one at a time, then the length.
class DocumentHash {
 public:
  void Add(const char* bytes, std::size_t size);
  std::uint64_t Finish() const;

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  std::uint64_t length_ = 0;
  unsigned char carry_[8] = {};  // the bytes of a word not yet complete
  std::size_t carried_ = 0;
};

// The documents of a source, one at a time, in the reading thread of DocumentPrefetch (documents.cc).
class DocumentStream;

// The documents of a source, read ahead by a second thread, so that decompressing and reading files overlap the
// decoding of what was read before. At most kPrefetchBlocks blocks of kBlockBytes are held ahead. Errors of the
// reading thread are thrown by Next or Read where reading in one thread would have thrown them.
class DocumentPrefetch {
 public:
  static constexpr std::size_t kBlockBytes = std::size_t{1} << 20;
  static constexpr std::size_t kPrefetchBlocks = 16;

  // Lists the source's files (paths that do not exist and folders that cannot be listed are UserErrors here),
  // then starts reading. Archives that are damaged are UserErrors naming the member, from Next or Read.
  explicit DocumentPrefetch(const CorpusSource& source);
  ~DocumentPrefetch();  // stops the reading thread, also when the reader stopped early (data.max_chars)
  DocumentPrefetch(const DocumentPrefetch&) = delete;
  DocumentPrefetch& operator=(const DocumentPrefetch&) = delete;

  // Opens the next document to read; false after the last. Members that are not regular files, archives inside
  // archives and documents the filters leave out are passed over (the first two counted as skipped).
  bool Next();
  // "folder/sub/a.txt", "songs.tar.gz:album/a.txt": the document as messages name it.
  const std::string& name() const { return name_; }
  // The path inside its folder or archive ("sub/a.txt", "x.tar.gz:album/a.txt"), "" for a named file: what a
  // manifest compares, so that the same text under a path spelt otherwise is the same corpus.
  const std::string& member() const { return member_; }
  // Whether the document came from a folder or an archive (a document that is not text may be skipped), rather
  // than being a named file.
  bool in_container() const { return in_container_; }
  // Fills `buffer` with up to `capacity` bytes of the document; fewer only at its end.
  std::size_t Read(char* buffer, std::size_t capacity);
  // Counts the current document as left out, with the reason; the first 20 are logged by name.
  void Skip(const std::string& why);

  // The sum of the sizes of the plain files named or found in folders, and of compressed files and archives as
  // stored: a lower bound of the bytes to read, known before reading.
  std::uint64_t stored_bytes() const { return stored_bytes_; }
  // The documents opened and skipped: all of them once Next has returned false; before (reading stopped at
  // data.max_chars), those the reader was given.
  std::int64_t documents() const { return finished_ ? documents_ : given_; }
  std::int64_t skipped() const { return finished_ ? skipped_ : skipped_here_; }

 private:
  struct Block;
  class Queue;
  void Produce();
  bool Take();  // the next block into current_, false at the end of the stream

  std::unique_ptr<DocumentStream> stream_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<Block> current_;
  std::size_t current_at_ = 0;
  std::string name_, member_;
  bool in_container_ = false;
  std::uint64_t stored_bytes_ = 0;
  std::int64_t documents_ = 0, skipped_ = 0, skipped_here_ = 0, given_ = 0;
  bool finished_ = false;
  std::thread reader_;
};

// Logs a summary of the skipped documents once reading is done ("3 documents skipped").
void LogSkippedDocuments(std::int64_t skipped);

}  // namespace charlm
