// UTF-8 decoding (strict, with byte offsets in the errors) and encoding between bytes and code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace charlm {

// Whether a leading U+FEFF is a byte order mark to skip (files) or a character to keep (single tokens).
enum class LeadingBom { kSkip, kKeep };

// Decodes strictly: overlong forms, surrogates, code points above U+10FFFF, truncated sequences and stray
// continuation bytes throw UserError "<source_name>: invalid UTF-8 at byte offset N (...): save the file as UTF-8".
// Offsets count from the first byte of `bytes`, BOM included, so they match what a hex editor shows.
// A leading BOM is skipped because editors on Windows add it to files that are otherwise plain UTF-8.
std::u32string DecodeUtf8(std::string_view bytes, std::string_view source_name,
                          LeadingBom leading_bom = LeadingBom::kSkip);

// The streaming form of DecodeUtf8, for text read in pieces: decodes the sequences at the front of `bytes` into
// `out` (room for bytes.size() code points) and says how many bytes it used and code points it wrote. Unless
// at_end, a sequence cut by the end of the piece is left unused for the next call, given it again with the bytes
// that follow. Error offsets are base_offset + the position in `bytes`. No BOM handling: the caller skips it.
struct Utf8ChunkResult {
  std::size_t bytes_used;
  std::size_t chars;
};
Utf8ChunkResult DecodeUtf8Chunk(std::string_view bytes, std::uint64_t base_offset, bool at_end,
                                std::string_view source_name, char32_t* out);

// Expects Unicode scalar values (no surrogates, nothing above U+10FFFF); anything else is a bug (asserted) and
// is written as U+FFFD in release builds.
std::string EncodeUtf8(std::u32string_view text);
std::string EncodeUtf8(char32_t c);

// True for code points that UTF-8 may carry: [0, U+10FFFF] minus the surrogates.
bool IsScalarValue(char32_t c);

// "U+6211 '我'" or, for control characters and spaces that would vanish or break a line, "U+000A": for messages.
std::string DescribeCodePoint(char32_t c);

// The text with control characters and bytes that are not well-formed UTF-8 (binary data) written as escapes
// (\n, \t, \r, \xNN), for quoting user text or file content inside a one-line error message, which must never
// carry raw bytes; cut after max_chars characters (at a character boundary) with "…", so a 1 MB prefix
// does not make a 1 MB "one-line" error.
inline constexpr std::size_t kMaxQuotedChars = 200;
std::string EscapeControlChars(std::string_view text, std::size_t max_chars = kMaxQuotedChars);

// The character as one visible token for reports: control characters become \n, \r, \t or \u{7f}; others are UTF-8.
std::string PrintableCodePoint(char32_t c);

// Levenshtein distance between two byte strings, for "did you mean" suggestions (config keys, :set options).
std::size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace charlm
