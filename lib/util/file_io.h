// Reading input files safely: regular files only (never blocking on a FIFO or reading a device for ever), a size
// limit checked before anything is allocated, and every read error reported as a one-line UserError; and the
// check that standard output really received what a command printed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace charlm {

// What a file is for, so that each message names it and says how to fix it.
struct FileRole {
  std::string noun;           // "config file", "checkpoint", "corpus file": what the user was asked to give
  std::string fix;            // the fix for a file that cannot be opened, e.g. "check the path"
  std::uint64_t max_bytes;    // larger files are refused before any byte is read
  std::string too_large_fix;  // e.g. "train on a shorter part of the text"
  // Files to suggest when the path is a folder holding one of them (a run folder given for its checkpoint).
  std::vector<std::string> in_folder = {};
};

// The whole content of the regular file at `path`. The file is opened without blocking (a FIFO without a writer
// returns at once), checked with fstat to be a regular file of at most role.max_bytes, and read to its end with
// every error checked; a file that grows past the limit while being read is refused too. Throws UserError:
//   "<path>: cannot open <noun>: <strerror>; <fix>"
//   "<path>: not a regular file (a FIFO (named pipe)), so not a usable <noun>: give the path of a regular file"
//   "<path>: <noun> is <size>, more than the <limit> charlm reads: <too_large_fix>"
//   "<path>: cannot read <noun>: <strerror>; check the disk and the file permissions"
std::string ReadRegularFile(const std::string& path, const FileRole& role);

// A regular file read in pieces, for inputs too large to hold whole (a corpus of gigabytes): opening runs the
// checks and messages of ReadRegularFile (role.max_bytes against the size fstat gives), so the caller can size
// its buffers from size() before reading anything.
class RegularFileReader {
 public:
  RegularFileReader(const std::string& path, const FileRole& role);
  ~RegularFileReader();
  RegularFileReader(const RegularFileReader&) = delete;
  RegularFileReader& operator=(const RegularFileReader&) = delete;

  std::uint64_t size() const { return size_; }  // at opening
  // Fills up to `capacity` bytes of `buffer`; 0 only at the end of the file. UserError on a read error, or when
  // the file grows past role.max_bytes while it is read.
  std::size_t Read(char* buffer, std::size_t capacity);
  // Moves to byte `offset` (at most size()), where the next Read starts. UserError if the file cannot seek.
  void Seek(std::uint64_t offset);

 private:
  std::string path_;
  FileRole role_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t read_ = 0;
};

// Everything readable from an open descriptor (a pipe, stdin) up to max_bytes, for inputs that are not files;
// `name` and `noun` make the messages, as in ReadRegularFile. Blocks like any read from a pipe.
std::string ReadStreamLimited(int fd, const std::string& name, const FileRole& role);

// Flushes std::cout and C's stdout and throws UserError if any write to standard output failed during the
// command (a full disk, /dev/full, a closed pipe): every command calls it before exiting 0, so that output that
// never arrived is an error exit, not a false success. Both streams are checked because std::cout and spdlog's
// stdout sink share C's stdout, whose error flag is sticky.
//   "standard output could not be written (No space left on device): the output is incomplete; ..."
void CheckStandardOutput();

// The same for any stream a command prints to: CheckStandardOutput for std::cout, else a flush and its state.
void CheckOutputWritten(std::ostream& out);

// Throws UserError "<noun> '<path>' cannot be looked up: <strerror>; check the path" when std::filesystem::status
// failed for a reason other than the path's absence (a name too long, a folder on the way that cannot be searched,
// a loop of links), which "does not exist" would misreport. Called before saying that a path does not exist.
void CheckPathLookup(const std::string& path, const std::error_code& error, std::string_view noun);

// Writes `bytes` to path so that a reader, or a crash at any moment, sees the old file or the new one, never a part:
// through "<path>.tmp.<pid>" beside it (written, fsynced, renamed over path, the folder fsynced). Before writing,
// it removes the "<path>.tmp.<pid>" files that a killed earlier write of the same path left (their process is gone),
// so a kill -9 mid-write leaves nothing behind once the path is written again. Every failure removes this write's
// temp file and throws UserError with the errno of the call that failed:
//   "cannot write <what> '<path>': renaming 'p.tmp.12' over it: Is a directory; remove the folder at that path or
//    give another path"
// fail_after_bytes (tests only): the write stops after that many bytes (all of them at most) and fails as a full
// disk would.
void WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what,
                         std::optional<std::size_t> fail_after_bytes = std::nullopt);

// The process id in "NAME.tmp.PID" (a temp file of WriteFileAtomically), or 0 when the name is not of that form.
long AtomicTempFileOwner(std::string_view name);

// Whether a process with this id runs (one owned by another user counts).
bool ProcessAlive(long pid);

// "a directory", "a FIFO (named pipe)", "a character device", ...: what a non-regular file is, for messages.
std::string DescribeFileType(unsigned mode);

// "3.2 GB", "512 kB", "17 bytes": a byte count for messages (decimal units).
std::string FormatBytes(std::uint64_t bytes);

// The machine's physical memory in bytes, or 0 when unknown.
std::uint64_t PhysicalMemoryBytes();

// Bytes this process may still map under its address-space and data limits (ulimit -v, ulimit -d: RLIMIT_AS and
// RLIMIT_DATA) after what it has mapped already; UINT64_MAX without a limit. Such a limit counts reservations
// that physical memory does not (OpenBLAS's buffers, a vector's reserve), so it can be far tighter.
std::uint64_t AddressSpaceHeadroomBytes();

// What an allocation can count on: the lesser of the machine's physical memory and the headroom above, or 0 when
// neither is known. `limited` (optional) is set when the headroom is the lesser.
std::uint64_t AvailableMemoryBytes(bool* limited = nullptr);

// "this machine's 23.4 GB of memory" or "the 512.0 MB this process may still allocate under its memory limit
// (ulimit -v)": what AvailableMemoryBytes found, for messages.
std::string DescribeAvailableMemory();

}  // namespace charlm
