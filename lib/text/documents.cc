// The documents a corpus names, as byte streams in a fixed order: files, folders, compressed files and archives.
#include "text/documents.h"

#include <archive.h>
#include <archive_entry.h>
#include <fnmatch.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include <spdlog/spdlog.h>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// Folders nest deeper than this only by accident (or by a link farm): refused before the walk goes on.
constexpr int kMaxFolderDepth = 64;
constexpr std::size_t kSkippedNamesLogged = 20;
// What is read of a file or member before deciding what it is: enough for tar's "ustar" at byte 257.
constexpr std::size_t kHeadBytes = 512;
constexpr std::size_t kArchiveBlockBytes = std::size_t{1} << 16;

bool StartsWith(std::string_view bytes, std::string_view magic) { return bytes.substr(0, magic.size()) == magic; }

// Whether any pattern matches the document's path; '*' matches '/' too, so "*.c" matches "kernel/sched.c".
bool MatchesAny(const std::vector<std::string>& patterns, const std::string& path) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& pattern) { return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0; });
}

bool PassesFilters(const CorpusSource& source, const std::string& path) {
  if (!source.include.empty() && !MatchesAny(source.include, path)) return false;
  return !MatchesAny(source.exclude, path);
}

// The extensions of compressed files and archives, whose members the filters judge, so that `--include '*.c'`
// reads the C files inside a folder's archives.
constexpr std::string_view kPackedExtensions[] = {".gz", ".tgz", ".xz", ".txz", ".zst", ".tzst", ".bz2", ".tbz",
                                                  ".tbz2", ".lz4", ".tar", ".zip", ".7z"};
constexpr std::string_view kCompressionExtensions[] = {".gz", ".xz", ".zst", ".bz2", ".lz4"};

bool LooksPacked(const std::string& path) {
  return std::any_of(std::begin(kPackedExtensions), std::end(kPackedExtensions),
                     [&](std::string_view extension) { return path.ends_with(extension); });
}

// "notes.txt" of "notes.txt.gz": the name the filters judge for a compressed file's one document.
std::string WithoutCompressionExtension(const std::string& path) {
  for (std::string_view extension : kCompressionExtensions) {
    if (path.ends_with(extension)) return path.substr(0, path.size() - extension.size());
  }
  return path;
}

}  // namespace

std::string CorpusRunName(const std::string& path) {
  std::string name = path;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = std::filesystem::path(name).filename().string();
  std::error_code error;
  if (name.empty() || std::filesystem::is_directory(path, error)) return name;  // "/" has no file name
  // A compression extension, then an archive's, come off whole ("x.tar.xz" is x); a plain or compressed file's
  // own extension goes as a stem's would ("notes.txt.gz" is notes).
  name = WithoutCompressionExtension(name);
  for (std::string_view packed : kPackedExtensions) {
    if (name.ends_with(packed) && name.size() > packed.size()) return name.substr(0, name.size() - packed.size());
  }
  const std::string stem = std::filesystem::path(name).stem().string();
  return stem.empty() ? name : stem;
}

namespace {

FileRole CorpusFileRole() {
  return FileRole{"corpus file", "check that it is a readable file", std::numeric_limits<std::uint64_t>::max(), ""};
}

// Logs the skip of a document by name while fewer than kSkippedNamesLogged were logged (`skipped` counts them).
void LogSkipped(std::int64_t& skipped, const std::string& name, const std::string& why) {
  if (static_cast<std::size_t>(skipped++) < kSkippedNamesLogged) {
    spdlog::warn("skipped {}: {}", EscapeControlChars(name), why);
  }
}

}  // namespace

// The documents of a source, one at a time, as DocumentPrefetch (documents.h) describes them; it reads them in its
// second thread.
class DocumentStream {
 public:
  explicit DocumentStream(const CorpusSource& source);
  ~DocumentStream();
  DocumentStream(const DocumentStream&) = delete;
  DocumentStream& operator=(const DocumentStream&) = delete;

  bool Next();
  const std::string& name() const { return name_; }
  const std::string& member() const { return member_; }
  bool in_container() const { return in_container_; }
  std::size_t Read(char* buffer, std::size_t capacity);  // UserError on a read error
  void Skip(const std::string& why);

  std::int64_t documents() const { return documents_; }  // opened by Next, skipped ones included
  std::int64_t skipped() const { return skipped_; }
  std::uint64_t stored_bytes() const { return stored_bytes_; }

 private:
  struct Pending;
  class Archive;
  bool OpenFile(const Pending& file);
  bool NextMember();
  void CloseFile();

  CorpusSource source_;
  std::vector<Pending> files_;  // in reading order
  std::size_t next_file_ = 0;
  std::unique_ptr<Archive> archive_;           // the open compressed file or archive
  std::unique_ptr<RegularFileReader> plain_;   // the open plain file
  std::string container_name_;                 // the file open, as messages name it
  std::string head_;                  // bytes read ahead to tell what a member is, served first
  std::size_t head_at_ = 0;
  std::string name_, member_;
  std::string container_member_;  // member() of the file open
  bool in_container_ = false;
  bool raw_filtered_ = false;  // the open compressed file's document is judged by the filters (found in a folder)
  std::int64_t documents_ = 0, skipped_ = 0;
  std::uint64_t stored_bytes_ = 0;
};

// A file to open: named, or found in a folder.
struct DocumentStream::Pending {
  std::string path;       // to open
  std::string name;       // for messages and the manifest: the folder as given, then the path inside it
  std::string member;     // the path inside the folder, "" for a named file
  bool in_folder = false;
  bool filtered = false;  // the filters judge what it holds: a file of a folder, whose own path may not pass
                          // data.include when it is an archive or a compressed file (their members do)
};

// A compressed file or an archive open for reading through libarchive.
class DocumentStream::Archive {
 public:
  explicit Archive(const std::string& path) : path_(path), owner_(archive_read_new(), &archive_read_free) {
    handle_ = owner_.get();  // freed by owner_ also when this constructor throws
    if (handle_ == nullptr) throw std::bad_alloc();
    archive_read_support_filter_all(handle_);
    archive_read_support_format_all(handle_);
    archive_read_support_format_raw(handle_);  // a compressed file that is not an archive: one document
    if (archive_read_open_filename(handle_, path.c_str(), kArchiveBlockBytes) != ARCHIVE_OK) {
      throw UserError("corpus file '" + path + "' cannot be opened as a compressed file or archive: " + Error() +
                      "; check that it is complete, or leave it out with data.exclude");
    }
  }
  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;

  // The next entry, or nullptr after the last. UserError on a damaged archive.
  archive_entry* NextEntry() {
    archive_entry* entry = nullptr;
    const int result = archive_read_next_header(handle_, &entry);
    if (result == ARCHIVE_EOF) return nullptr;
    if (result < ARCHIVE_WARN) {
      throw UserError("corpus file '" + path_ + "' is damaged after " + std::to_string(entries_) +
                      (entries_ == 1 ? " member: " : " members: ") + Error() +
                      "; check that it is complete (download it again), or leave it out");
    }
    ++entries_;
    return entry;
  }

  bool raw() const { return archive_format(handle_) == ARCHIVE_FORMAT_RAW; }

  std::size_t Read(char* buffer, std::size_t capacity, const std::string& name) {
    std::size_t filled = 0;
    while (filled < capacity) {
      const la_ssize_t count = archive_read_data(handle_, buffer + filled, capacity - filled);
      if (count == 0) break;
      if (count < 0) {
        throw UserError("'" + name + "' cannot be read: " + Error() +
                        "; the file is damaged or truncated: check that it is complete, or leave it out");
      }
      filled += static_cast<std::size_t>(count);
    }
    return filled;
  }

 private:
  std::string Error() const {
    const char* text = archive_error_string(handle_);
    return EscapeControlChars(text != nullptr ? text : "unknown error");
  }

  std::string path_;
  std::unique_ptr<archive, decltype(&archive_read_free)> owner_;
  archive* handle_ = nullptr;
  std::int64_t entries_ = 0;
};

StreamKind DetectStreamKind(const char* head, std::size_t size) {
  const std::string_view bytes(head, size);
  if (StartsWith(bytes, "\x1F\x8B") || StartsWith(bytes, std::string_view("\xFD" "7zXZ\0", 6)) ||
      StartsWith(bytes, "\x28\xB5\x2F\xFD") || StartsWith(bytes, "\x04\x22\x4D\x18") ||
      (size >= 10 && StartsWith(bytes, "BZh") && bytes[3] >= '1' && bytes[3] <= '9' &&
       (bytes.substr(4, 6) == "1AY&SY" || bytes.substr(4, 6) == "\x17\x72\x45\x38\x50\x90"))) {
    return StreamKind::kCompressed;
  }
  if (StartsWith(bytes, "PK\x03\x04") || StartsWith(bytes, "PK\x05\x06") ||
      StartsWith(bytes, "7z\xBC\xAF\x27\x1C") || (size >= 262 && bytes.substr(257, 5) == "ustar")) {
    return StreamKind::kArchive;
  }
  return StreamKind::kPlain;
}

CorpusSource CorpusSource::Of(const DataConfig& data) {
  CorpusSource source;
  source.paths = data.corpus.paths;
  source.include = data.include;
  source.exclude = data.exclude;
  source.separator = data.separator;
  source.on_invalid = data.on_invalid;
  return source;
}

CorpusSource CorpusSource::File(const std::string& path) {
  CorpusSource source;
  source.paths = {path};
  return source;
}

CorpusSource TextSourceOf(const std::string& path, const DataConfig& data) {
  CorpusSource source = CorpusSource::Of(data);
  source.paths = {path};
  return source;
}

bool IsSinglePlainFile(const CorpusSource& source) {
  if (source.paths.size() != 1) return false;
  std::error_code error;
  const fs::file_status status = fs::status(source.paths[0], error);
  if (!fs::is_regular_file(status)) return !fs::is_directory(status);
  try {
    RegularFileReader file(source.paths[0], CorpusFileRole());
    char head[kHeadBytes];
    const std::size_t got = file.Read(head, sizeof head);
    return DetectStreamKind(head, got) == StreamKind::kPlain;
  } catch (const UserError&) {
    return true;  // the plain reader says what is wrong with it
  }
}

namespace {
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;
std::uint64_t WordAt(const unsigned char* bytes) {
  std::uint64_t word = 0;
  for (int k = 7; k >= 0; --k) word = (word << 8) | bytes[k];  // little-endian on every machine
  return word;
}
}  // namespace

void DocumentHash::Add(const char* bytes, std::size_t size) {
  const auto* in = reinterpret_cast<const unsigned char*>(bytes);
  length_ += size;
  while (carried_ > 0 && carried_ < 8 && size > 0) {
    carry_[carried_++] = *in++;
    --size;
  }
  if (carried_ == 8) {
    hash_ = (hash_ ^ WordAt(carry_)) * kFnvPrime;
    carried_ = 0;
  }
  for (; size >= 8; in += 8, size -= 8) hash_ = (hash_ ^ WordAt(in)) * kFnvPrime;
  for (; size > 0; --size) carry_[carried_++] = *in++;
}

std::uint64_t DocumentHash::Finish() const {
  std::uint64_t hash = hash_;
  for (std::size_t k = 0; k < carried_; ++k) hash = (hash ^ carry_[k]) * kFnvPrime;
  return (hash ^ length_) * kFnvPrime;
}

DocumentStream::DocumentStream(const CorpusSource& source) : source_(source) {
  for (const std::string& path : source.paths) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    CheckPathLookup(path, error, "corpus path");
    if (!fs::exists(status)) {
      throw UserError("corpus path '" + path + "' does not exist: check the path" +
                      (fs::path(path).is_relative() ? " (relative paths are read from the current folder)" : ""));
    }
    if (!fs::is_directory(status)) {
      stored_bytes_ += fs::file_size(path, error);
      files_.push_back({path, path, "", false, false});  // the reader's checks say what is wrong with a missing path
      continue;
    }
    // A folder: its regular files, recursively, in sorted path order; folder links are not followed.
    std::vector<Pending> found;
    try {
      for (fs::recursive_directory_iterator it(path), end; it != end; ++it) {
        if (it.depth() > kMaxFolderDepth) {
          throw UserError("folder '" + path + "' nests deeper than " + std::to_string(kMaxFolderDepth) + " levels at '" +
                          EscapeControlChars(it->path().string()) + "': give a folder nearer the text");
        }
        const fs::path relative = it->path().lexically_relative(path);
        const std::string inside = relative.generic_string();
        if (it->is_directory()) {
          if (it->is_symlink()) {
            ++documents_;
            Skip("a link to a folder (not followed)");
          }
          continue;
        }
        if (MatchesAny(source.exclude, inside)) continue;
        const bool included = source.include.empty() || MatchesAny(source.include, inside);
        if (!included && !LooksPacked(inside)) continue;
        name_ = (fs::path(path) / relative).generic_string();
        if (!it->is_regular_file()) {
          ++documents_;
          Skip("not a regular file");
          continue;
        }
        stored_bytes_ += it->file_size();
        found.push_back({it->path().string(), name_, inside, true, !included});
      }
    } catch (const fs::filesystem_error& e) {
      throw UserError("folder '" + path + "' cannot be read: " + EscapeControlChars(e.code().message()) + " at '" +
                      EscapeControlChars(e.path1().string()) + "'; check its permissions, or leave it out");
    }
    std::sort(found.begin(), found.end(), [](const Pending& a, const Pending& b) { return a.name < b.name; });
    files_.insert(files_.end(), std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
  }
  name_.clear();
}

DocumentStream::~DocumentStream() = default;

void DocumentStream::CloseFile() {
  archive_.reset();
  plain_.reset();
  head_.clear();
  head_at_ = 0;
}

bool DocumentStream::OpenFile(const Pending& file) {
  CloseFile();
  plain_ = std::make_unique<RegularFileReader>(file.path, CorpusFileRole());
  head_.resize(kHeadBytes);
  head_.resize(plain_->Read(head_.data(), head_.size()));
  name_ = file.name;
  member_ = file.member;
  in_container_ = file.in_folder;
  container_name_ = file.name;
  container_member_ = file.member;
  if (DetectStreamKind(head_.data(), head_.size()) == StreamKind::kPlain) {
    if (file.filtered) return false;  // a plain file named like an archive, which data.include leaves out
    ++documents_;
    return true;
  }
  plain_.reset();
  head_.clear();
  raw_filtered_ = file.in_folder;
  archive_ = std::make_unique<Archive>(file.path);
  return NextMember();
}

bool DocumentStream::NextMember() {
  while (archive_entry* entry = archive_->NextEntry()) {
    if (archive_->raw()) {  // a compressed file: its one stream is the document
      if (raw_filtered_ && !PassesFilters(source_, WithoutCompressionExtension(container_member_))) return false;
      name_ = container_name_;
      member_ = container_member_;
      ++documents_;
      return true;
    }
    const char* pathname = archive_entry_pathname(entry);
    const std::string inside = pathname != nullptr ? pathname : "";
    const unsigned type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) continue;
    if (!PassesFilters(source_, inside)) continue;
    name_ = container_name_ + ":" + EscapeControlChars(inside);
    member_ = container_member_ + ":" + inside;
    in_container_ = true;
    ++documents_;
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
      Skip(type == AE_IFLNK ? "a symbolic link" : archive_entry_hardlink(entry) != nullptr ? "a hard link"
                                                                                           : "not a regular file");
      continue;
    }
    head_.resize(kHeadBytes);
    head_.resize(archive_->Read(head_.data(), head_.size(), name_));
    head_at_ = 0;
    if (DetectStreamKind(head_.data(), head_.size()) != StreamKind::kPlain) {
      Skip("a compressed file or archive inside an archive (not opened)");
      continue;
    }
    return true;
  }
  return false;
}

bool DocumentStream::Next() {
  if (archive_ && NextMember()) return true;
  while (next_file_ < files_.size()) {
    if (OpenFile(files_[next_file_++])) return true;
  }
  CloseFile();
  return false;
}

std::size_t DocumentStream::Read(char* buffer, std::size_t capacity) {
  std::size_t filled = std::min(capacity, head_.size() - head_at_);
  std::memcpy(buffer, head_.data() + head_at_, filled);
  head_at_ += filled;
  if (filled == capacity) return filled;
  if (plain_) return filled + plain_->Read(buffer + filled, capacity - filled);
  if (archive_) return filled + archive_->Read(buffer + filled, capacity - filled, name_);
  return filled;
}

void DocumentStream::Skip(const std::string& why) { LogSkipped(skipped_, name_, why); }

nlohmann::json ManifestToJson(const std::vector<ManifestEntry>& manifest) {
  nlohmann::json rows = nlohmann::json::array();
  for (const ManifestEntry& entry : manifest) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(entry.hash));
    rows.push_back({entry.member, entry.bytes, hash, entry.name});
  }
  return rows;
}

std::vector<ManifestEntry> ManifestFromJson(const nlohmann::json& j, const std::string& source) {
  const auto malformed = [&] {
    return UserError(source + ": the corpus manifest in its trainer state is malformed: the file is damaged; "
                     "resume from another checkpoint");
  };
  if (!j.is_array()) throw malformed();
  std::vector<ManifestEntry> manifest;
  for (const nlohmann::json& row : j) {
    if (!row.is_array() || row.size() != 4 || !row[0].is_string() || !row[1].is_number_unsigned() ||
        !row[2].is_string() || !row[3].is_string() || row[2].get<std::string>().size() != 16) {
      throw malformed();
    }
    ManifestEntry entry;
    entry.member = row[0].get<std::string>();
    entry.bytes = row[1].get<std::uint64_t>();
    const std::string hash = row[2].get<std::string>();
    char* end = nullptr;
    entry.hash = std::strtoull(hash.c_str(), &end, 16);
    if (end != hash.c_str() + hash.size()) throw malformed();
    entry.name = row[3].get<std::string>();
    manifest.push_back(std::move(entry));
  }
  return manifest;
}

std::string ManifestDifference(const std::vector<ManifestEntry>& then, const std::vector<ManifestEntry>& now) {
  const auto named = [](const ManifestEntry& entry) {
    return (entry.member.empty() ? "file '" + entry.name : "document '" + EscapeControlChars(entry.member)) + "'";
  };
  const std::size_t common = std::min(then.size(), now.size());
  for (std::size_t k = 0; k < common; ++k) {
    const ManifestEntry& a = then[k];
    const ManifestEntry& b = now[k];
    if (a.SameAs(b)) continue;
    if (a.member != b.member) {
      return "document " + std::to_string(k + 1) + " is " + named(b) + " now, " + named(a) + " then";
    }
    if (a.bytes != b.bytes) {
      return named(b) + " has " + std::to_string(b.bytes) + " bytes now, " + std::to_string(a.bytes) + " then";
    }
    return named(b) + " has other contents of the same size";
  }
  if (now.size() > then.size()) return named(now[common]) + " is new";
  if (then.size() > now.size()) return named(then[common]) + " is gone";
  return "";
}

void LogSkippedDocuments(std::int64_t skipped) {
  if (skipped > static_cast<std::int64_t>(kSkippedNamesLogged)) {
    spdlog::warn("{} documents skipped in all (the first {} named above)", skipped, kSkippedNamesLogged);
  }
}

// What the reading thread hands over: bytes of a document (the first block of one carries its names, the last says
// so; a small document is one block), or the end of the stream (the counts, or the error that ended it).
struct DocumentPrefetch::Block {
  bool finish = false;
  bool starts = false, ends = false;
  std::unique_ptr<char[]> data{new char[kBlockBytes]};
  std::size_t size = 0;
  std::string name, member;
  bool in_container = false;
  std::int64_t documents = 0, skipped = 0;
  std::exception_ptr error;
};

// A bounded queue of blocks between the reading thread and the reader.
class DocumentPrefetch::Queue {
 public:
  // False when the reader has gone (stop): the reading thread then ends.
  bool Push(std::unique_ptr<Block> block) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return stopped_ || blocks_.size() < kPrefetchBlocks; });
    if (stopped_) return false;
    blocks_.push_back(std::move(block));
    ready_.notify_one();
    return true;
  }
  std::unique_ptr<Block> Pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !blocks_.empty(); });
    std::unique_ptr<Block> block = std::move(blocks_.front());
    blocks_.pop_front();
    room_.notify_one();
    return block;
  }
  // Blocks are used again rather than freed: a megabyte allocated afresh is mapped and faulted in afresh.
  void Recycle(std::unique_ptr<Block> block) {
    if (!block) return;
    std::lock_guard lock(mutex_);
    if (spare_.size() < kPrefetchBlocks + 2) spare_.push_back(std::move(block));
  }
  std::unique_ptr<Block> Fresh() {
    std::unique_ptr<Block> block;
    {
      std::lock_guard lock(mutex_);
      if (!spare_.empty()) {
        block = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (!block) block = std::make_unique<Block>();
    block->finish = block->starts = block->ends = false;
    block->size = 0;
    block->error = nullptr;
    return block;
  }
  void Stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    room_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::unique_ptr<Block>> blocks_;
  std::vector<std::unique_ptr<Block>> spare_;
  bool stopped_ = false;
};

DocumentPrefetch::DocumentPrefetch(const CorpusSource& source)
    : stream_(std::make_unique<DocumentStream>(source)), queue_(std::make_unique<Queue>()) {
  stored_bytes_ = stream_->stored_bytes();
  reader_ = std::thread([this] { Produce(); });
}

DocumentPrefetch::~DocumentPrefetch() {
  queue_->Stop();
  reader_.join();
}

void DocumentPrefetch::Produce() {
  auto finish = std::make_unique<Block>();
  finish->finish = true;
  try {
    while (stream_->Next()) {
      bool first = true;
      for (bool last = false; !last;) {
        auto block = queue_->Fresh();
        block->starts = first;
        if (first) {
          block->name = stream_->name();
          block->member = stream_->member();
          block->in_container = stream_->in_container();
          first = false;
        }
        block->size = stream_->Read(block->data.get(), kBlockBytes);
        last = block->ends = block->size < kBlockBytes;
        if (!queue_->Push(std::move(block))) return;
      }
    }
    finish->documents = stream_->documents();
    finish->skipped = stream_->skipped();
  } catch (...) {
    finish->error = std::current_exception();
  }
  queue_->Push(std::move(finish));
}

bool DocumentPrefetch::Take() {
  queue_->Recycle(std::move(current_));
  current_ = queue_->Pop();
  current_at_ = 0;
  if (current_->finish) {
    if (current_->error) std::rethrow_exception(current_->error);
    documents_ = current_->documents;
    skipped_ = current_->skipped + skipped_here_;
    finished_ = true;
    return false;
  }
  return true;
}

bool DocumentPrefetch::Next() {
  if (finished_) return false;
  // The rest of the current document, if the reader stopped before its end.
  while (current_ && !current_->ends) {
    if (!Take()) return false;
  }
  if (!Take()) return false;
  if (!current_->starts) throw std::logic_error("a document's blocks began without its start");
  name_ = current_->name;
  member_ = current_->member;
  in_container_ = current_->in_container;
  ++given_;
  return true;
}

std::size_t DocumentPrefetch::Read(char* buffer, std::size_t capacity) {
  std::size_t filled = 0;
  while (filled < capacity && current_ && !current_->finish) {
    if (current_at_ == current_->size) {
      if (current_->ends || !Take()) break;
      continue;
    }
    const std::size_t count = std::min(capacity - filled, current_->size - current_at_);
    std::memcpy(buffer + filled, current_->data.get() + current_at_, count);
    current_at_ += count;
    filled += count;
  }
  return filled;
}

void DocumentPrefetch::Skip(const std::string& why) { LogSkipped(skipped_here_, name_, why); }

}  // namespace charlm
