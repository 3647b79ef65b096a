// Safetensors parsing (every number checked before it is used) and writing; the format is described in safetensors.h.
#include "format/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace charlm {
namespace {

constexpr std::size_t kLengthFieldBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::string_view kDamagedFix =
    "the file is damaged or is not a safetensors file; write it again (charlm export, or safetensors' save_file)";

// Every dtype of the format with a whole number of bytes per element.
constexpr std::array<std::pair<std::string_view, std::uint64_t>, 15> kDtypeBytes{{
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
    {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
}};

std::uint64_t DtypeBytes(std::string_view dtype) {
  for (const auto& [name, bytes] : kDtypeBytes) {
    if (name == dtype) return bytes;
  }
  return 0;
}

}  // namespace

std::string QuoteForMessage(std::string_view name) {
  constexpr std::size_t kMaxShown = 80;
  const bool cut = name.size() > kMaxShown;
  std::string shown(name.substr(0, kMaxShown));
  std::string quoted = nlohmann::json(shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (cut) quoted.insert(quoted.size() - 1, "...");
  return quoted;
}

namespace {

std::string JsonText(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

[[noreturn]] void Fail(std::string_view source, const std::string& message, std::string_view fix = kDamagedFix) {
  throw UserError(std::string(source) + ": " + message + ": " + std::string(fix));
}

// Parses the header text, refusing (before it is built) nesting deeper than kMaxSafetensorsHeaderDepth, arrays longer
// than kMaxSafetensorsRank (a valid header's longest array is a shape) and keys repeated within one object, which
// a plain parse would silently resolve to the last one.
nlohmann::json ParseHeaderJson(std::string_view text, std::string_view source) {
  std::vector<std::set<std::string>> keys_of_open_objects;
  std::vector<std::size_t> elements_of_open_arrays;
  std::vector<bool> open_is_array;
  auto count_element = [&] {
    if (open_is_array.empty() || !open_is_array.back()) return;
    if (++elements_of_open_arrays.back() > kMaxSafetensorsRank) {
      Fail(source, "the header has an array of more than " + std::to_string(kMaxSafetensorsRank) +
                       " elements, longer than any shape charlm reads");
    }
  };
  const nlohmann::json::parser_callback_t callback = [&](int depth, nlohmann::json::parse_event_t event,
                                                         nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        count_element();
        if (depth >= kMaxSafetensorsHeaderDepth) {
          Fail(source, "the header nests JSON deeper than " + std::to_string(kMaxSafetensorsHeaderDepth) +
                           " levels (a valid header is 3 deep)");
        }
        open_is_array.push_back(event == Event::array_start);
        if (event == Event::object_start) {
          keys_of_open_objects.emplace_back();
        } else {
          elements_of_open_arrays.push_back(0);
        }
        break;
      case Event::object_end:
        keys_of_open_objects.pop_back();
        open_is_array.pop_back();
        break;
      case Event::array_end:
        elements_of_open_arrays.pop_back();
        open_is_array.pop_back();
        break;
      case Event::key:
        if (!keys_of_open_objects.back().insert(parsed.get<std::string>()).second) {
          Fail(source, "the header repeats the key " + QuoteForMessage(parsed.get<std::string>()) + " within one object");
        }
        break;
      case Event::value:
        count_element();
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& error) {
    Fail(source, "the header is not valid JSON (" + EscapeControlChars(error.what()) + ")");
  }
}

std::uint64_t ReadLittleEndianU64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  return value;
}

// One tensor's header entry, checked for form and against the data size; ranges are checked together later.
SafetensorsEntry ParseEntry(const std::string& name, const nlohmann::json& value, std::uint64_t data_size,
                            std::string_view source) {
  const std::string where = "tensor " + QuoteForMessage(name);
  if (!value.is_object()) Fail(source, where + " is " + JsonText(value) + ", not an object with dtype, shape, data_offsets");
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      Fail(source, where + " has the key " + QuoteForMessage(key) + "; a tensor has only dtype, shape and data_offsets");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) Fail(source, where + " has no \"" + key + "\"");
  }
  SafetensorsEntry entry;
  entry.name = name;
  const nlohmann::json& dtype = value["dtype"];
  if (!dtype.is_string() || DtypeBytes(dtype.get<std::string>()) == 0) {
    Fail(source, where + " has dtype " + JsonText(dtype) + ", which is not a safetensors dtype (F32, F16, BF16, I64, ...)");
  }
  entry.dtype = dtype.get<std::string>();
  const nlohmann::json& shape = value["shape"];
  if (!shape.is_array()) Fail(source, where + " has shape " + JsonText(shape) + ", not an array of sizes");
  std::uint64_t elements = 1;
  bool overflow = false;
  for (const nlohmann::json& size : shape) {
    if (!size.is_number_unsigned()) {
      Fail(source, where + " has shape " + JsonText(shape) + ", whose sizes are not all whole numbers >= 0");
    }
    const std::uint64_t dim = size.get<std::uint64_t>();
    entry.shape.push_back(dim);
    if (dim != 0 && elements > UINT64_MAX / dim) overflow = true;
    elements *= dim;
  }
  const std::uint64_t element_bytes = DtypeBytes(entry.dtype);
  if (overflow || (elements != 0 && element_bytes > UINT64_MAX / elements)) elements = UINT64_MAX;
  const std::uint64_t needed = elements == UINT64_MAX ? UINT64_MAX : elements * element_bytes;
  const nlohmann::json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    Fail(source, where + " has data_offsets " + JsonText(offsets) + ", not [begin, end] as two whole numbers >= 0");
  }
  entry.begin = offsets[0].get<std::uint64_t>();
  entry.end = offsets[1].get<std::uint64_t>();
  if (entry.begin > entry.end) {
    Fail(source, where + " has data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                     "], which end before they begin");
  }
  if (entry.end - entry.begin != needed) {
    Fail(source, where + " of dtype " + entry.dtype + " and shape " + FormatShape(entry.shape) + " needs " +
                     (needed == UINT64_MAX ? std::string("more than 2^64") : std::to_string(needed)) +
                     " bytes, but its data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                     "] span " + std::to_string(entry.end - entry.begin));
  }
  if (entry.end > data_size) {
    Fail(source, where + " has data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                     "], past the " + std::to_string(data_size) + " bytes of data after the header",
         "the file is shorter than its header says (truncated by a copy or a full disk); copy or write it again");
  }
  return entry;
}

}  // namespace

std::string FormatShape(const std::vector<std::uint64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

const SafetensorsEntry* SafetensorsView::Find(std::string_view name) const {
  for (const SafetensorsEntry& entry : tensors) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::vector<float> SafetensorsView::ReadF32(const SafetensorsEntry& entry) const {
  assert(entry.dtype == "F32" && entry.end <= data.size() && (entry.end - entry.begin) % 4 == 0);
  std::vector<float> values((entry.end - entry.begin) / 4);
  const char* bytes = data.data() + entry.begin;
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t bits = 0;
    for (int b = 3; b >= 0; --b) bits = (bits << 8) | static_cast<unsigned char>(bytes[4 * i + static_cast<std::size_t>(b)]);
    values[i] = std::bit_cast<float>(bits);
  }
  return values;
}

SafetensorsView ParseSafetensors(std::string_view bytes, std::string_view source) {
  if (bytes.size() < kLengthFieldBytes) {
    Fail(source, "the file has " + std::to_string(bytes.size()) +
                     " bytes, fewer than the 8-byte header length a safetensors file starts with");
  }
  if (bytes.starts_with("CHARLMCK")) {  // the checkpoint magic (lib/format/checkpoint.cc): a likely mix-up of the two
    Fail(source, "this is a charlm checkpoint, not a safetensors file",
         "give it where a checkpoint goes (--checkpoint, --resume), or make a safetensors file of it with charlm export");
  }
  const std::uint64_t header_size = ReadLittleEndianU64(bytes);
  if (header_size > kMaxSafetensorsHeaderBytes) {
    Fail(source, "the header length is " + std::to_string(header_size) + " bytes, more than the " +
                     std::to_string(kMaxSafetensorsHeaderBytes) + " bytes charlm reads (a charlm model's header is a few kB)");
  }
  const std::uint64_t after_length = bytes.size() - kLengthFieldBytes;
  if (header_size > after_length) {
    Fail(source, "the header length is " + std::to_string(header_size) + " bytes but only " +
                     std::to_string(after_length) + " bytes follow it",
         "the file is shorter than its header says (truncated by a copy or a full disk); copy or write it again");
  }
  const std::string_view header_text = bytes.substr(kLengthFieldBytes, static_cast<std::size_t>(header_size));
  if (header_text.empty() || header_text.front() != '{') {
    Fail(source, "the header does not start with '{' (a safetensors header is a JSON object)");
  }
  const nlohmann::json header = ParseHeaderJson(header_text, source);
  if (!header.is_object()) Fail(source, "the header is not a JSON object");

  SafetensorsView view;
  view.data = bytes.substr(kLengthFieldBytes + static_cast<std::size_t>(header_size));
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) Fail(source, "__metadata__ is " + JsonText(value) + ", not an object of strings");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          Fail(source, "__metadata__ entry " + QuoteForMessage(meta_key) + " is " + JsonText(meta_value) +
                           ", not a string (safetensors metadata maps strings to strings)");
        }
        view.metadata.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    view.tensors.push_back(ParseEntry(key, value, view.data.size(), source));
  }

  // The ranges must tile the data: no byte in two tensors, none in no tensor.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const SafetensorsEntry& entry : view.tensors) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* entry : by_offset) {
    const std::string range = "[" + std::to_string(entry->begin) + ", " + std::to_string(entry->end) + "]";
    if (entry->begin < covered) {
      Fail(source, "tensor " + QuoteForMessage(entry->name) + " at data_offsets " + range + " overlaps tensor " +
                       QuoteForMessage(previous->name) + " at [" + std::to_string(previous->begin) + ", " +
                       std::to_string(previous->end) + "]");
    }
    if (entry->begin > covered) {
      Fail(source, "bytes " + std::to_string(covered) + " to " + std::to_string(entry->begin) +
                       " of the data belong to no tensor (tensor " + QuoteForMessage(entry->name) + " starts at " +
                       std::to_string(entry->begin) + ")");
    }
    covered = entry->end;
    previous = entry;
  }
  if (covered != view.data.size()) {
    Fail(source, "the data has " + std::to_string(view.data.size()) + " bytes but the tensors cover only " +
                     std::to_string(covered));
  }
  return view;
}

std::string SerializeSafetensors(const std::vector<SafetensorsTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::uint64_t offset = 0;
  for (const SafetensorsTensor& tensor : tensors) {
    std::uint64_t elements = 1;
    for (std::uint64_t dim : tensor.shape) elements *= dim;
    assert(elements == tensor.values.size() && !header.contains(tensor.name) && tensor.name != kMetadataKey);
    header[tensor.name] = {{"dtype", "F32"}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + 4 * elements}}};
    offset += 4 * elements;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned
  std::string out;
  out.reserve(kLengthFieldBytes + header_text.size() + offset);
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>((header_text.size() >> shift) & 0xFFU));
  out += header_text;
  for (const SafetensorsTensor& tensor : tensors) {
    for (float value : tensor.values) {
      const auto bits = std::bit_cast<std::uint32_t>(value);
      for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((bits >> shift) & 0xFFU));
    }
  }
  return out;
}

std::string ReadSafetensorsFile(const std::string& path) {
  // As a checkpoint: refused before reading when it is not a regular file (a FIFO would block) or above half the
  // machine's memory (its floats are copied out once more).
  const std::uint64_t memory = PhysicalMemoryBytes();
  const std::uint64_t limit = memory > 0 ? memory / 2 : std::numeric_limits<std::uint64_t>::max();
  return ReadRegularFile(path, FileRole{"safetensors file",
                                        "check the path, or write one with charlm export --checkpoint CKPT --out " + path,
                                        limit, "it cannot be imported on this machine; import it on one with more memory"});
}

}  // namespace charlm
