// Reading input files safely (regular files only, a size limit before allocating, every read error checked), and
// the final check that standard output was written.
#include "util/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include <iostream>

#include "util/errors.h"
#include "util/utf8.h"

namespace charlm {
namespace {

// Closes a descriptor on every path out of a function.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor(Descriptor&& other) noexcept : fd_(other.release()) {}
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

[[noreturn]] void ThrowTooLarge(const std::string& path, const FileRole& role, std::string_view size_text) {
  throw UserError(path + ": " + role.noun + " is " + std::string(size_text) + ", more than the " +
                  FormatBytes(role.max_bytes) + " charlm reads: " + role.too_large_fix);
}

// Appends reads to `bytes` until end of file; refuses more than role.max_bytes in total.
void ReadToEnd(int fd, const std::string& name, const FileRole& role, std::string_view note, std::string& bytes) {
  std::array<char, 1 << 16> buffer;
  while (true) {
    const ssize_t count = ::read(fd, buffer.data(), buffer.size());
    if (count == 0) return;
    if (count < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw UserError(name + ": cannot read " + role.noun + ": " + std::strerror(error) +
                      "; check the disk and the file permissions");
    }
    if (static_cast<std::uint64_t>(count) > role.max_bytes - bytes.size()) {
      ThrowTooLarge(name, role, "over " + FormatBytes(role.max_bytes) + std::string(note));
    }
    bytes.append(buffer.data(), static_cast<std::size_t>(count));
  }
}

}  // namespace

void CheckPathLookup(const std::string& path, const std::error_code& error, std::string_view noun) {
  if (!error || error == std::errc::no_such_file_or_directory || error == std::errc::not_a_directory) return;
  throw UserError(std::string(noun) + " '" + EscapeControlChars(path) + "' cannot be looked up: " + error.message() +
                  (error == std::errc::filename_too_long
                       ? "; shorten the path (at most 4,095 bytes, and 255 bytes a name)"
                       : "; check the path and the permissions of its folders"));
}

std::string DescribeFileType(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISREG(mode)) return "a regular file";
  return "not a file";
}

std::string FormatBytes(std::uint64_t bytes) {
  char text[32];
  if (bytes < 1000) {
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f kB", static_cast<double>(bytes) / 1e3);
  } else if (bytes < 1000ULL * 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f GB", static_cast<double>(bytes) / 1e9);
  }
  return text;
}

std::uint64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::uint64_t AddressSpaceHeadroomBytes() {
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit value {};
    if (::getrlimit(resource, &value) == 0 && value.rlim_cur != RLIM_INFINITY) {
      limit = std::min<std::uint64_t>(limit, value.rlim_cur);
    }
  }
  if (limit == std::numeric_limits<std::uint64_t>::max()) return limit;
  // The first field of /proc/self/statm is the mapped size in pages: what RLIMIT_AS counts (RLIMIT_DATA counts
  // less, so this errs on the safe side).
  std::uint64_t mapped_pages = 0;
  if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
    unsigned long long pages = 0;
    if (std::fscanf(statm, "%llu", &pages) == 1) mapped_pages = pages;
    std::fclose(statm);
  }
  const std::uint64_t mapped = mapped_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGE_SIZE));
  return mapped >= limit ? 0 : limit - mapped;
}

std::uint64_t AvailableMemoryBytes(bool* limited) {
  const std::uint64_t physical = PhysicalMemoryBytes();
  const std::uint64_t headroom = AddressSpaceHeadroomBytes();
  const bool by_limit = headroom != std::numeric_limits<std::uint64_t>::max() && (physical == 0 || headroom < physical);
  if (limited != nullptr) *limited = by_limit;
  return by_limit ? headroom : physical;
}

std::string DescribeAvailableMemory() {
  bool limited = false;
  const std::uint64_t available = AvailableMemoryBytes(&limited);
  if (limited) return "the " + FormatBytes(available) + " this process may still allocate under its memory limit (ulimit -v)";
  return "this machine's " + FormatBytes(available) + " of memory";
}

namespace {

// Devices such as /dev/zero or /dev/urandom never end, and pipes may never deliver: only regular files are read.
void CheckRegularFile(const std::string& path, const struct stat& info, const FileRole& role) {
  if (S_ISREG(info.st_mode)) return;
  std::string fix = "give the path of a regular file";
  if (S_ISDIR(info.st_mode)) {
    for (const std::string& name : role.in_folder) {
      const std::string candidate = (std::filesystem::path(path) / name).string();
      struct stat inside {};
      if (::stat(candidate.c_str(), &inside) == 0 && S_ISREG(inside.st_mode)) {
        fix = "give a file in it, e.g. " + candidate;
        break;
      }
    }
  }
  throw UserError(path + ": not a regular file (" + DescribeFileType(info.st_mode) + "), so not a usable " +
                  role.noun + ": " + fix);
}

// Opens path for reading as `role`: a regular file of at most role.max_bytes (its size goes to `size`), or a
// UserError naming it.
Descriptor OpenRegularFile(const std::string& path, const FileRole& role, std::uint64_t& size) {
  // O_NONBLOCK: opening a FIFO that has no writer would otherwise wait for one for ever. It changes nothing for
  // the regular files that are read afterwards.
  Descriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (file.get() < 0) {
    const int error = errno;
    throw UserError(path + ": cannot open " + role.noun + ": " + std::strerror(error) + "; " + role.fix);
  }
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) {
    const int error = errno;
    throw UserError(path + ": cannot read " + role.noun + ": " + std::strerror(error) +
                    "; check the disk and the file permissions");
  }
  CheckRegularFile(path, info, role);
  size = static_cast<std::uint64_t>(info.st_size);
  if (size > role.max_bytes) ThrowTooLarge(path, role, FormatBytes(size));
  return file;
}

}  // namespace

std::string ReadRegularFile(const std::string& path, const FileRole& role) {
  std::uint64_t size = 0;
  Descriptor file = OpenRegularFile(path, role, size);
  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(size));
  ReadToEnd(file.get(), path, role, " (it grew while being read)", bytes);
  return bytes;
}

RegularFileReader::RegularFileReader(const std::string& path, const FileRole& role) : path_(path), role_(role) {
  Descriptor file = OpenRegularFile(path, role, size_);
  fd_ = file.release();
}

RegularFileReader::~RegularFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t RegularFileReader::Read(char* buffer, std::size_t capacity) {
  std::size_t filled = 0;
  while (filled < capacity) {
    const ssize_t count = ::read(fd_, buffer + filled, capacity - filled);
    if (count == 0) break;
    if (count < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw UserError(path_ + ": cannot read " + role_.noun + ": " + std::strerror(error) +
                      "; check the disk and the file permissions");
    }
    if (static_cast<std::uint64_t>(count) > role_.max_bytes - read_) {
      ThrowTooLarge(path_, role_, "over " + FormatBytes(role_.max_bytes) + " (it grew while being read)");
    }
    read_ += static_cast<std::uint64_t>(count);
    filled += static_cast<std::size_t>(count);
  }
  return filled;
}

void RegularFileReader::Seek(std::uint64_t offset) {
  assert(offset <= size_);
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    const int error = errno;
    throw UserError(path_ + ": cannot read " + role_.noun + " from byte " + std::to_string(offset) + ": " +
                    std::strerror(error) + "; check the disk and the file permissions");
  }
}

std::string ReadStreamLimited(int fd, const std::string& name, const FileRole& role) {
  std::string bytes;
  ReadToEnd(fd, name, role, "", bytes);
  return bytes;
}

long AtomicTempFileOwner(std::string_view name) {
  const std::size_t at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at == 0) return 0;
  const char* first = name.data() + at + 5;
  const char* last = name.data() + name.size();
  long pid = 0;
  const auto [end, error] = std::from_chars(first, last, pid);
  return error == std::errc() && end == last && first != last && pid > 0 ? pid : 0;
}

bool ProcessAlive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

namespace {

// The fix for a failed atomic write of `path`, by the errno of the call that failed.
std::string AtomicWriteFix(const std::string& path, int error) {
  const std::string folder = std::filesystem::path(path).parent_path().string();
  std::error_code ec;
  switch (error) {
    case EISDIR: return "remove the folder at that path or give another path";
    case ENOENT:
      if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
        return "the folder " + folder + " does not exist; create it, or give a path in an existing folder";
      }
      return "give a path in a folder that can hold files";
    case EACCES:
    case EPERM:
    case EROFS: return "give a path in a writable folder";
    case ENAMETOOLONG: return "shorten the path (at most 4,095 bytes, and 255 bytes a name)";
    default: return "check that its folder exists and is writable and that the disk has space";
  }
}

// Removes the temp files of earlier writes of `path` whose process is gone (killed mid-write).
void RemoveDeadWritersTempFiles(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const std::string prefix = path.filename().string() + ".tmp.";
  const fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || name.find('.', prefix.size()) != std::string::npos) continue;
    const long owner = AtomicTempFileOwner(name);
    std::error_code type_error;
    if (owner == 0 || owner == ::getpid() || ProcessAlive(owner) || !it->is_regular_file(type_error)) continue;
    std::error_code remove_error;
    fs::remove(it->path(), remove_error);  // best effort: a file that stays is harmless, as before
  }
}

}  // namespace

void WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what,
                         std::optional<std::size_t> fail_after_bytes) {
  RemoveDeadWritersTempFiles(path);
  const std::string temp_path = path + ".tmp." + std::to_string(::getpid());
  // Each failing call's errno is copied before anything else runs (building a message allocates, which may set it).
  auto fail = [&](std::string_view step, int error) {
    ::unlink(temp_path.c_str());
    throw UserError("cannot write " + std::string(what) + " '" + path + "': " + std::string(step) + " '" +
                    temp_path + "'" + (step == "renaming" ? " over it" : "") + ": " + std::strerror(error) + "; " +
                    AtomicWriteFix(path, error));
  };
  Descriptor file(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644));
  if (file.get() < 0) {
    const int error = errno;
    fail("creating", error);
  }
  const std::size_t limit = fail_after_bytes ? std::min(*fail_after_bytes, bytes.size()) : bytes.size();
  for (std::size_t written = 0; written < limit;) {
    const ssize_t count = ::write(file.get(), bytes.data() + written, limit - written);
    if (count < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      fail("writing", error);
    }
    written += static_cast<std::size_t>(count);
  }
  if (fail_after_bytes) fail("writing", ENOSPC);  // the injected failure, as a full disk reports it
  if (::fsync(file.get()) != 0) {
    const int error = errno;
    fail("syncing", error);
  }
  if (::close(file.release()) != 0) {
    const int error = errno;
    fail("closing", error);
  }
  if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
    const int error = errno;
    fail("renaming", error);
  }
  // The rename is durable only once the folder is synced; some file systems cannot sync one (EINVAL), and then it
  // is as durable as they allow.
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  Descriptor dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    const int error = errno;
    if (error == EINVAL || error == ENOTSUP) return;
    throw UserError("cannot write " + std::string(what) + " '" + path + "': syncing folder '" + folder +
                    "' after the rename: " + std::strerror(error) +
                    "; the new file is in place but may not survive a power loss; check the disk");
  }
}

void CheckStandardOutput() {
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int error = errno;
  if (flushed && !std::ferror(stdout) && !std::cout.fail()) return;
  // A write that failed earlier left the error flag but not its errno (the flush that failed discarded its
  // buffer): one more byte, to an output that is incomplete anyway, asks the device for the reason.
  int reason_errno = error;
  if (reason_errno == 0 && ::write(STDOUT_FILENO, "\n", 1) < 0) reason_errno = errno;
  const std::string reason = reason_errno != 0 ? std::string(" (") + std::strerror(reason_errno) + ")" : "";
  if (reason_errno == EPIPE) {  // `charlm ... | head`: the reader left, no device is full
    throw UserError("standard output could not be written" + reason +
                    ": the program reading it exited early, so the output is incomplete; let it read to the end, "
                    "or redirect the output to a file");
  }
  throw UserError("standard output could not be written" + reason +
                  ": the output is incomplete; free space on its device, or redirect it to a writable file");
}

void CheckOutputWritten(std::ostream& out) {
  if (&out == &std::cout) {
    CheckStandardOutput();
    return;
  }
  out.flush();
  if (!out) {
    throw UserError("the output could not be written: it is incomplete; free space on its device, or write to a "
                    "writable file");
  }
}

}  // namespace charlm
