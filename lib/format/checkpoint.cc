// Checkpoint encoding, validation and atomic saving; the byte layout is specified in docs/checkpoint-format.md.
#include "format/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <utility>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/json_parse.h"
#include "util/utf8.h"

namespace charlm {
namespace {

constexpr std::string_view kMagic = "CHARLMCK";
constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kSectionCountOffset = 12;
constexpr std::size_t kFileHeaderSize = 16;     // magic, version, section count
constexpr std::size_t kSectionHeaderSize = 12;  // tag, u64 payload length
constexpr std::size_t kTrailerSize = 4;         // CRC32

// Tags are four ASCII bytes in file order, so a hex dump shows them as text.
constexpr std::string_view kConfigTag = "CONF";
constexpr std::string_view kVocabTag = "VOCB";
constexpr std::string_view kTrainerStateTag = "TRST";
constexpr std::string_view kParamsTag = "PARM";
constexpr std::string_view kOptimizerStateTag = "OPTM";
constexpr std::string_view kCarriedStateTag = "CARY";
constexpr std::size_t kSectionCount = 6;

std::optional<std::size_t> g_write_failure_after_bytes;

constexpr std::array<std::uint32_t, 256> MakeCrc32Table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1U) ? (crc >> 1) ^ 0xEDB88320U : crc >> 1;
    table[byte] = crc;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrc32Table = MakeCrc32Table();

// The CRC register after `bytes`, from `state` (0xFFFFFFFF at the start), so a file can be checked in pieces.
std::uint32_t Crc32Update(std::uint32_t state, std::string_view bytes) {
  for (char c : bytes) state = kCrc32Table[(state ^ static_cast<unsigned char>(c)) & 0xFFU] ^ (state >> 8);
  return state;
}

// Integers are composed byte by byte (never memcpy'd) so the file is the same on big- and little-endian hosts.
void AppendU32(std::string& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((value >> shift) & 0xFFU));
}

void AppendU64(std::string& out, std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>((value >> shift) & 0xFFU));
}

std::uint32_t ReadU32(std::string_view bytes, std::size_t offset) {
  assert(offset + 4 <= bytes.size());
  std::uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

std::uint64_t ReadU64(std::string_view bytes, std::size_t offset) {
  assert(offset + 8 <= bytes.size());
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

void AppendSectionHeader(std::string& out, std::string_view tag, std::uint64_t payload_size) {
  assert(tag.size() == 4);
  out.append(tag);
  AppendU64(out, payload_size);
}

std::string DumpJsonSection(std::string_view tag, const nlohmann::json& value) {
  try {
    return value.dump();
  } catch (const nlohmann::json::exception& error) {
    throw UserError("cannot write checkpoint section " + std::string(tag) + " as JSON (" + error.what() +
                    "): make its strings valid UTF-8");
  }
}

void AppendFloatSection(std::string& out, std::string_view tag, const std::vector<float>& values) {
  AppendSectionHeader(out, tag, std::uint64_t{values.size()} * 4);
  for (float value : values) AppendU32(out, std::bit_cast<std::uint32_t>(value));
}

// A hex rendering of the first bytes, so a "not a checkpoint" message hints at what the file actually is.
std::string PrintableStart(std::string_view bytes) {
  std::string shown;
  for (char c : bytes.substr(0, kMagic.size())) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && byte != '\\') {
      shown.push_back(c);
    } else {
      constexpr std::string_view kHex = "0123456789abcdef";
      shown += "\\x";
      shown.push_back(kHex[byte >> 4]);
      shown.push_back(kHex[byte & 0xFU]);
    }
  }
  return shown;
}

[[noreturn]] void ThrowTruncated(std::string_view source, const std::string& detail) {
  throw UserError(std::string(source) + ": checkpoint is truncated (" + detail +
                  "): the save or copy was cut short; use an intact copy or an earlier checkpoint");
}

[[noreturn]] void ThrowCorrupted(std::string_view source, const std::string& detail) {
  throw UserError(std::string(source) + ": checkpoint is corrupted (" + detail +
                  "): the file was damaged after saving; use an intact copy or an earlier checkpoint");
}

// Reached only when the CRC matches, i.e. the bytes are as written but the writer did not follow this format.
[[noreturn]] void ThrowMalformed(std::string_view source, const std::string& detail) {
  throw UserError(std::string(source) + ": checkpoint is malformed (" + detail +
                  "): it was not written by a compatible charlm; re-create it with this charlm");
}

struct RawSection {
  std::string_view tag;
  std::string_view payload;  // empty when the reader did not keep it (a float section LoadCheckpointMetadata skips)
  std::uint64_t size = 0;    // the payload's declared length, checked against the bytes present
};

bool IsJsonTag(std::string_view tag) { return tag == kConfigTag || tag == kVocabTag || tag == kTrainerStateTag; }

// A checkpoint's bytes as SplitSections reads them, front to back: all in memory, or a file read in pieces.
class CheckpointBytes {
 public:
  virtual ~CheckpointBytes() = default;
  virtual std::uint64_t size() const = 0;
  // The next `count` bytes, which the caller has checked lie within size(). When !keep the reader may pass them
  // through the CRC only and return an empty view. A returned view stays valid for the reader's life.
  virtual std::string_view Next(std::size_t count, bool keep) = 0;
  // CRC-32 of every byte Next has passed so far.
  virtual std::uint32_t Crc() const = 0;
};

class CheckpointBytesInMemory final : public CheckpointBytes {
 public:
  explicit CheckpointBytesInMemory(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  std::string_view Next(std::size_t count, bool) override {  // keeping costs nothing here
    const std::string_view next = bytes_.substr(position_, count);
    position_ += count;
    return next;
  }
  std::uint32_t Crc() const override { return Crc32(bytes_.substr(0, position_)); }

 private:
  std::string_view bytes_;
  std::size_t position_ = 0;
};

// Splits the container into sections, checking every declared length against the bytes actually present before
// anything is allocated from it, then checks the CRC. Tags and payloads are not interpreted here; float payloads
// are kept only with keep_floats (JSON payloads always are).
std::vector<RawSection> SplitSections(CheckpointBytes& in, std::string_view source, bool keep_floats) {
  const std::uint64_t size = in.size();
  if (size == 0) {
    throw UserError(std::string(source) + ": file is empty, not a charlm checkpoint: give the path of a checkpoint " +
                    "file saved by charlm");
  }
  const std::string_view head = in.Next(static_cast<std::size_t>(std::min<std::uint64_t>(size, kFileHeaderSize)), true);
  const std::size_t magic_bytes_present = std::min(head.size(), kMagic.size());
  if (head.substr(0, magic_bytes_present) != kMagic.substr(0, magic_bytes_present)) {
    if (size > 9 && head[8] == '{') {  // a safetensors file: an 8-byte length, then its JSON header
      throw UserError(std::string(source) + ": this is a safetensors file, not a charlm checkpoint: make a "
                      "checkpoint of it with charlm import --safetensors " + std::string(source) + " --out model.ckpt");
    }
    throw UserError(std::string(source) + ": not a charlm checkpoint (it starts with \"" + PrintableStart(head) +
                    "\", a checkpoint starts with \"CHARLMCK\"): give the path of a checkpoint file saved by charlm");
  }
  if (size < kSectionCountOffset) {
    ThrowTruncated(source, "only " + std::to_string(size) + " bytes, the header alone is " +
                               std::to_string(kFileHeaderSize));
  }
  const std::uint32_t version = ReadU32(head, kVersionOffset);
  if (version != kCheckpointFormatVersion) {
    throw UserError(std::string(source) + ": checkpoint format version " + std::to_string(version) +
                    ", this charlm reads version " + std::to_string(kCheckpointFormatVersion) +
                    ": load it with the charlm that wrote it, or re-train with this one");
  }
  if (size < kFileHeaderSize) {
    ThrowTruncated(source, "only " + std::to_string(size) + " bytes, the header alone is " +
                               std::to_string(kFileHeaderSize));
  }
  const std::uint32_t declared_sections = ReadU32(head, kSectionCountOffset);

  // Never reserve from declared_sections: a corrupted count must not allocate; each real section costs 12 bytes.
  std::vector<RawSection> sections;
  std::uint64_t offset = kFileHeaderSize;
  for (std::uint32_t index = 0; index < declared_sections; ++index) {
    const std::string where = "section " + std::to_string(index + 1) + " of " + std::to_string(declared_sections);
    if (size - offset < kSectionHeaderSize + kTrailerSize) {
      ThrowTruncated(source, where + " at byte " + std::to_string(offset) + ": its header and the CRC need " +
                                 std::to_string(kSectionHeaderSize + kTrailerSize) + " bytes but only " +
                                 std::to_string(size - offset) + " remain");
    }
    const std::string_view header = in.Next(kSectionHeaderSize, true);
    const std::string_view tag = header.substr(0, 4);
    const std::uint64_t payload_size = ReadU64(header, 4);
    offset += kSectionHeaderSize;
    const std::uint64_t available = size - offset - kTrailerSize;
    // Compared as a difference so that a huge declared length cannot overflow an addition.
    if (payload_size > available) {
      ThrowTruncated(source, where + " declares " + std::to_string(payload_size) + " bytes but only " +
                                 std::to_string(available) + " remain before the CRC");
    }
    const std::string_view payload = in.Next(static_cast<std::size_t>(payload_size), keep_floats || IsJsonTag(tag));
    sections.push_back({tag, payload, payload_size});
    offset += payload_size;
  }
  if (size - offset < kTrailerSize) {
    ThrowTruncated(source, "the CRC after the last section is missing");
  }
  if (size - offset > kTrailerSize) {
    ThrowCorrupted(source, std::to_string(size - offset - kTrailerSize) + " unexpected bytes after the last of " +
                               std::to_string(declared_sections) + " sections");
  }
  const std::uint32_t actual_crc = in.Crc();
  const std::uint32_t stored_crc = ReadU32(in.Next(kTrailerSize, true), 0);
  if (stored_crc != actual_crc) {
    char detail[96];
    std::snprintf(detail, sizeof(detail), "CRC32 is 0x%08x but the file stores 0x%08x", actual_crc, stored_crc);
    ThrowCorrupted(source, detail);
  }
  return sections;
}

nlohmann::json ParseJsonSection(const RawSection& section, std::string_view source) {
  try {
    return ParseJsonWithDepthLimit(section.payload, std::string(source) + " (section " + std::string(section.tag) + ")");
  } catch (const nlohmann::json::exception& error) {
    ThrowMalformed(source, "section " + std::string(section.tag) + " is not valid JSON: " + EscapeControlChars(error.what()));
  }
}

// Checked for a skipped float section too, so that LoadCheckpointMetadata refuses what LoadCheckpoint refuses.
void CheckFloatSectionSize(const RawSection& section, std::string_view source) {
  if (section.size % 4 != 0) {
    ThrowMalformed(source, "section " + std::string(section.tag) + " has " + std::to_string(section.size) +
                               " bytes, not a whole number of 4-byte floats");
  }
}

std::vector<float> ParseFloatSection(const RawSection& section, std::string_view source) {
  CheckFloatSectionSize(section, source);
  std::vector<float> values(section.payload.size() / 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::bit_cast<float>(ReadU32(section.payload, 4 * i));
  return values;
}

// A checkpoint larger than half the machine's memory could not be parsed (its floats are copied out) and used.
// LoadCheckpointMetadata refuses it too, so the start-up checks never accept a file the run could not load.
FileRole CheckpointFileRole() {
  const std::uint64_t memory = PhysicalMemoryBytes();
  const std::uint64_t limit = memory > 0 ? memory / 2 : std::numeric_limits<std::uint64_t>::max();
  return FileRole{"checkpoint", "check the path, or train a model to create one", limit,
                  "it cannot be loaded on this machine; load it on one with more memory",
                  {"best.ckpt", "last.ckpt", "model.ckpt"}};
}

std::string ReadCheckpointFile(const std::string& path) { return ReadRegularFile(path, CheckpointFileRole()); }

// A checkpoint file read front to back in pieces: the payloads SplitSections keeps are held (their lengths were
// checked against the file's size first), the others only pass through the CRC, a chunk at a time.
class CheckpointBytesInFile final : public CheckpointBytes {
 public:
  explicit CheckpointBytesInFile(const std::string& path) : path_(path), file_(path, CheckpointFileRole()) {}
  std::uint64_t size() const override { return file_.size(); }
  std::string_view Next(std::size_t count, bool keep) override {
    std::string* kept = keep ? &kept_.emplace_back(count, '\0') : nullptr;
    for (std::size_t done = 0; done < count;) {
      char* into = keep ? kept->data() + done : chunk_.data();
      const std::size_t wanted = keep ? count - done : std::min(count - done, chunk_.size());
      const std::size_t got = file_.Read(into, wanted);
      if (got == 0) {
        ThrowTruncated(path_, "it ended at byte " + std::to_string(position_) + " while being read, though it had " +
                                  std::to_string(file_.size()) + " bytes when opened");
      }
      crc_ = Crc32Update(crc_, std::string_view(into, got));
      done += got;
      position_ += got;
    }
    return keep ? std::string_view(*kept) : std::string_view();
  }
  std::uint32_t Crc() const override { return crc_ ^ 0xFFFFFFFFU; }

 private:
  std::string path_;
  RegularFileReader file_;
  std::deque<std::string> kept_;  // a deque never moves its elements, so the views Next returned stay valid
  std::array<char, 1 << 16> chunk_{};
  std::uint64_t position_ = 0;
  std::uint32_t crc_ = 0xFFFFFFFFU;
};

// Interprets the split sections: each of the six exactly once and no other, the float sections' sizes checked;
// their values are read only with with_floats.
CheckpointData InterpretSections(const std::vector<RawSection>& sections, std::string_view source_name,
                                 bool with_floats) {
  CheckpointData data;
  std::array<bool, kSectionCount> seen{};
  const std::array<std::string_view, kSectionCount> tags = {kConfigTag,  kVocabTag,          kTrainerStateTag,
                                                            kParamsTag, kOptimizerStateTag, kCarriedStateTag};
  const std::array<std::vector<float>*, kSectionCount> floats = {nullptr, nullptr, nullptr, &data.params,
                                                                 &data.optimizer_state, &data.carried_state};
  for (const RawSection& section : sections) {
    std::size_t kind = 0;
    while (kind < tags.size() && tags[kind] != section.tag) ++kind;
    if (kind == tags.size()) {
      ThrowMalformed(source_name, "unknown section tag \"" + PrintableStart(section.tag) + "\"");
    }
    if (seen[kind]) ThrowMalformed(source_name, "section " + std::string(section.tag) + " appears twice");
    seen[kind] = true;
    switch (kind) {
      case 0: data.config = ParseJsonSection(section, source_name); break;
      case 1: data.vocab = ParseJsonSection(section, source_name); break;
      case 2: data.trainer_state = ParseJsonSection(section, source_name); break;
      default:
        if (with_floats) {
          *floats[kind] = ParseFloatSection(section, source_name);
        } else {
          CheckFloatSectionSize(section, source_name);
        }
    }
  }
  for (std::size_t kind = 0; kind < tags.size(); ++kind) {
    if (!seen[kind]) ThrowMalformed(source_name, "section " + std::string(tags[kind]) + " is missing");
  }
  return data;
}

// Owns the temp file until it has been renamed into place; any exit before that closes and deletes it.
}  // namespace

std::uint32_t Crc32(std::string_view bytes) { return Crc32Update(0xFFFFFFFFU, bytes) ^ 0xFFFFFFFFU; }

void SetCheckpointWriteFailureForTesting(std::optional<std::size_t> fail_after_bytes) {
  g_write_failure_after_bytes = fail_after_bytes;
}

std::string SerializeCheckpoint(const CheckpointData& data) {
  const std::string config = DumpJsonSection(kConfigTag, data.config);
  const std::string vocab = DumpJsonSection(kVocabTag, data.vocab);
  const std::string trainer_state = DumpJsonSection(kTrainerStateTag, data.trainer_state);
  const std::size_t float_count = data.params.size() + data.optimizer_state.size() + data.carried_state.size();

  std::string out;
  out.reserve(kFileHeaderSize + kSectionCount * kSectionHeaderSize + config.size() + vocab.size() +
              trainer_state.size() + 4 * float_count + kTrailerSize);
  out.append(kMagic);
  AppendU32(out, kCheckpointFormatVersion);
  AppendU32(out, kSectionCount);
  for (const auto& [tag, json_text] : {std::pair{kConfigTag, &config}, std::pair{kVocabTag, &vocab},
                                       std::pair{kTrainerStateTag, &trainer_state}}) {
    AppendSectionHeader(out, tag, json_text->size());
    out.append(*json_text);
  }
  AppendFloatSection(out, kParamsTag, data.params);
  AppendFloatSection(out, kOptimizerStateTag, data.optimizer_state);
  AppendFloatSection(out, kCarriedStateTag, data.carried_state);
  AppendU32(out, Crc32(out));
  return out;
}

CheckpointData ParseCheckpointBytes(std::string_view bytes, std::string_view source_name) {
  CheckpointBytesInMemory in(bytes);
  return InterpretSections(SplitSections(in, source_name, /*keep_floats=*/true), source_name, /*with_floats=*/true);
}

CheckpointData LoadCheckpoint(const std::string& path) { return ParseCheckpointBytes(ReadCheckpointFile(path), path); }

CheckpointMetadata LoadCheckpointMetadata(const std::string& path) {
  CheckpointBytesInFile in(path);
  CheckpointData data = InterpretSections(SplitSections(in, path, /*keep_floats=*/false), path, /*with_floats=*/false);
  return {std::move(data.config), std::move(data.vocab), std::move(data.trainer_state)};
}

void SaveCheckpoint(const std::string& path, const CheckpointData& data) {
  WriteFileAtomically(path, SerializeCheckpoint(data), "checkpoint", g_write_failure_after_bytes);
}

}  // namespace charlm
