// The safetensors container: a validating parser for hostile bytes and a deterministic float32 writer.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object; "__metadata__" maps strings to
// strings, every other key is a tensor {"dtype", "shape", "data_offsets": [begin, end]}), then the data, which the
// tensors cover exactly, each little-endian and row-major. docs/interop.md shows an example byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace charlm {

// The format allows 100,000,000 bytes; charlm reads 16 MiB at most, so a hostile header cannot make the parsed JSON
// take gigabytes. A charlm model's header, config and vocabulary included, is a few kB (a 100,000-character
// vocabulary is about 1.5 MB), and a PyTorch state_dict's header is smaller still.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = std::uint64_t{16} << 20;
// A valid header is 3 levels deep (object > tensor > shape); deeper input is refused before it is built.
inline constexpr int kMaxSafetensorsHeaderDepth = 8;
// Dimensions per tensor accepted; safetensors itself has no limit, charlm's tensors have 1 or 2.
inline constexpr std::size_t kMaxSafetensorsRank = 16;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;                 // "F32", "F16", "BF16", "I64", ...: any dtype of the format
  std::vector<std::uint64_t> shape;  // outermost first
  std::uint64_t begin = 0, end = 0;  // byte range in the data section
};

// A parsed file; `data` borrows the bytes given to ParseSafetensors.
struct SafetensorsView {
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsEntry> tensors;  // sorted by name
  std::string_view data;

  const SafetensorsEntry* Find(std::string_view name) const;  // null when absent
  // The values of an F32 tensor (asserts the dtype), decoded little-endian whatever the host.
  std::vector<float> ReadF32(const SafetensorsEntry& entry) const;
};

// Checks everything before using it: the header length against the file and kMaxSafetensorsHeaderBytes, the JSON
// (valid, depth, duplicate keys, types), each dtype, shape and byte count, every range inside the data, and the
// ranges tiling the data without overlap or hole. Each defect is a one-line UserError starting with source_name.
SafetensorsView ParseSafetensors(std::string_view bytes, std::string_view source_name);

struct SafetensorsTensor {
  std::string name;
  std::vector<std::uint64_t> shape;
  std::vector<float> values;  // row-major, product(shape) values
};

// F32 tensors laid out in the given order, header keys sorted, padded with spaces so the data starts at a multiple of
// 8; identical input gives identical bytes on every host.
std::string SerializeSafetensors(const std::vector<SafetensorsTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata);

// A name or key from a file as a one-line message may show it: JSON-quoted (control characters escaped), cut when long.
std::string QuoteForMessage(std::string_view name);

// "(2, 3)", as PyTorch prints a size.
std::string FormatShape(const std::vector<std::uint64_t>& shape);

// Reads a whole file that is to be parsed as safetensors; a missing or unreadable file is a UserError.
std::string ReadSafetensorsFile(const std::string& path);


}  // namespace charlm
