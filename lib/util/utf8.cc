// UTF-8 decoding (strict, with byte offsets in the errors) and encoding between bytes and code points.
#include "util/utf8.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "util/errors.h"

namespace charlm {
namespace {

constexpr char32_t kReplacementCharacter = 0xFFFD;

[[noreturn]] void ThrowInvalid(std::string_view source_name, std::size_t offset, const std::string& why) {
  throw UserError(std::string(source_name) + ": invalid UTF-8 at byte offset " + std::to_string(offset) + " (" + why +
                  "): save the file as UTF-8");
}

std::string HexByte(unsigned char byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "0x%02X", byte);
  return buffer;
}

bool IsContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// The length of the sequence a lead byte above 0x7F starts (2 to 4), its payload bits put in `code`; 0 for a byte
// that starts none (a continuation byte, or one that never occurs in UTF-8).
int SequenceLength(unsigned char lead, char32_t& code) {
  if ((lead & 0xE0) == 0xC0) {
    code = lead & 0x1F;
    return 2;
  }
  if ((lead & 0xF0) == 0xE0) {
    code = lead & 0x0F;
    return 3;
  }
  if ((lead & 0xF8) == 0xF0) {
    code = lead & 0x07;
    return 4;
  }
  return 0;
}

// The smallest code point each sequence length may encode: a smaller one is an overlong encoding.
constexpr char32_t kSmallestForLength[5] = {0, 0, 0x80, 0x800, 0x10000};

std::string CodePointName(char32_t c) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "U+%04X", static_cast<unsigned>(c));
  return buffer;
}

}  // namespace

bool IsScalarValue(char32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }

Utf8ChunkResult DecodeUtf8Chunk(std::string_view bytes, std::uint64_t base_offset, bool at_end,
                                std::string_view source_name, char32_t* out) {
  std::size_t pos = 0, written = 0;
  const std::size_t size = bytes.size();
  while (pos < size) {
    // Eight ASCII bytes at a time, the common case of most texts: a word with any high bit set goes byte by byte.
    if (pos + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, bytes.data() + pos, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        for (std::size_t k = 0; k < 8; ++k) out[written + k] = static_cast<unsigned char>(bytes[pos + k]);
        written += 8;
        pos += 8;
        continue;
      }
    }
    const auto lead = static_cast<unsigned char>(bytes[pos]);
    if (lead < 0x80) {
      out[written++] = lead;
      ++pos;
      continue;
    }
    char32_t code = 0;
    const int length = SequenceLength(lead, code);
    if (IsContinuation(lead)) {
      ThrowInvalid(source_name, base_offset + pos, "unexpected continuation byte " + HexByte(lead));
    } else if (length == 0) {
      ThrowInvalid(source_name, base_offset + pos, "byte " + HexByte(lead) + " never occurs in UTF-8");
    }
    // Cut by the end of the piece: the next piece completes it (and decides whether it is valid).
    if (!at_end && pos + static_cast<std::size_t>(length) > size) break;
    for (int i = 1; i < length; ++i) {
      if (pos + i >= size) {
        ThrowInvalid(source_name, base_offset + pos, "truncated sequence at end of input");
      }
      const auto next = static_cast<unsigned char>(bytes[pos + i]);
      if (!IsContinuation(next)) {
        ThrowInvalid(source_name, base_offset + pos,
                     "truncated sequence: byte " + HexByte(next) + " at offset " +
                         std::to_string(base_offset + pos + i) + " is not a continuation byte");
      }
      code = (code << 6) | (next & 0x3F);
    }
    if (code < kSmallestForLength[length]) {
      ThrowInvalid(source_name, base_offset + pos, "overlong encoding of " + CodePointName(code));
    }
    if (code >= 0xD800 && code <= 0xDFFF) {
      ThrowInvalid(source_name, base_offset + pos, "encoded surrogate " + CodePointName(code));
    }
    if (code > 0x10FFFF) ThrowInvalid(source_name, base_offset + pos, CodePointName(code) + " is above U+10FFFF");
    out[written++] = code;
    pos += static_cast<std::size_t>(length);
  }
  return Utf8ChunkResult{pos, written};
}

std::u32string DecodeUtf8(std::string_view bytes, std::string_view source_name, LeadingBom leading_bom) {
  std::size_t skip = 0;
  if (leading_bom == LeadingBom::kSkip && bytes.substr(0, 3) == "\xEF\xBB\xBF") skip = 3;
  std::u32string out(bytes.size() - skip, U'\0');
  const Utf8ChunkResult result = DecodeUtf8Chunk(bytes.substr(skip), skip, true, source_name, out.data());
  out.resize(result.chars);
  return out;
}

std::string EncodeUtf8(char32_t c) {
  assert(IsScalarValue(c));
  if (!IsScalarValue(c)) c = kReplacementCharacter;
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size() * 3);
  for (char32_t c : text) out += EncodeUtf8(c);
  return out;
}

namespace {

// The length of the well-formed UTF-8 sequence at text[pos] (1 to 4), or 0 when the bytes there are not one
// (a stray continuation byte, a cut or overlong sequence, a surrogate, a code point above U+10FFFF).
std::size_t WellFormedSequenceLength(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) return 1;
  char32_t code = 0;
  const auto length = static_cast<std::size_t>(SequenceLength(lead, code));
  if (length == 0 || pos + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    const auto next = static_cast<unsigned char>(text[pos + i]);
    if (!IsContinuation(next)) return 0;
    code = (code << 6) | (next & 0x3F);
  }
  return code >= kSmallestForLength[length] && IsScalarValue(code) ? length : 0;
}

}  // namespace

std::string EscapeControlChars(std::string_view text, std::size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::size_t chars = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    if (chars++ == max_chars) {
      out += "\u2026";
      break;
    }
    const auto byte = static_cast<unsigned char>(text[pos]);
    const std::size_t length = WellFormedSequenceLength(text, pos);
    if (byte == '\n') {
      out += "\\n";
    } else if (byte == '\t') {
      out += "\\t";
    } else if (byte == '\r') {
      out += "\\r";
    } else if (length == 0 || byte < 0x20 || byte == 0x7f) {
      // A control byte, or a byte that is not UTF-8 (binary data): its value, never the raw byte.
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out.append(text.substr(pos, length));
      pos += length;
      continue;
    }
    ++pos;
  }
  return out;
}

std::string DescribeCodePoint(char32_t c) {
  std::string out = CodePointName(c);
  const bool visible = IsScalarValue(c) && c > 0x20 && c != 0x7F && !(c >= 0x80 && c < 0xA0);
  if (visible) out += " '" + EncodeUtf8(c) + "'";
  return out;
}

std::string PrintableCodePoint(char32_t c) {
  switch (c) {
    case U'\n':
      return "\\n";
    case U'\r':
      return "\\r";
    case U'\t':
      return "\\t";
    default:
      break;
  }
  if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || !IsScalarValue(c)) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "\\u{%x}", static_cast<unsigned>(c));
    return buffer;
  }
  return EncodeUtf8(c);
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace charlm
