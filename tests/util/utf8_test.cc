// Tests for lib/util/utf8: strict decoding with byte offsets, BOM handling, encoding round trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "util/errors.h"
#include "util/utf8.h"

namespace charlm {
namespace {

// The UserError message DecodeUtf8 throws for `bytes`, or "" if it decodes.
std::string DecodeError(const std::string& bytes) {
  try {
    DecodeUtf8(bytes, "song.txt");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// DecodeUtf8Chunk over the whole of `bytes`, or over pieces of 7 bytes (shorter than its 8-byte ASCII blocks, so
// only the byte-by-byte path runs, carrying cut sequences as a streaming reader does): the code points, or the
// UserError message.
std::u32string DecodeWhole(const std::string& bytes, std::string& error) {
  std::u32string out(bytes.size(), U'\0');
  try {
    out.resize(DecodeUtf8Chunk(bytes, 0, true, "song.txt", out.data()).chars);
  } catch (const UserError& e) {
    error = e.what();
  }
  return out;
}
std::u32string DecodeBytewise(const std::string& bytes, std::string& error) {
  std::u32string out;
  char32_t piece[7];
  std::size_t pos = 0;
  try {
    while (pos < bytes.size()) {
      const std::size_t length = std::min<std::size_t>(7, bytes.size() - pos);
      const bool at_end = pos + length == bytes.size();
      const Utf8ChunkResult result =
          DecodeUtf8Chunk(std::string_view(bytes).substr(pos, length), pos, at_end, "song.txt", piece);
      out.append(piece, result.chars);
      pos += result.bytes_used;
      if (at_end) break;
    }
  } catch (const UserError& e) {
    error = e.what();
  }
  return out;
}

TEST_CASE("utf8: one- to four-byte characters decode to their code points and encode back") {
  const std::string bytes = "a\xC3\xA9\xE6\x88\x91\xF0\x9F\x8E\xB5z";  // a é 我 🎵 z
  const std::u32string text = DecodeUtf8(bytes, "song.txt");
  CHECK(text == std::u32string{U'a', 0xE9, 0x6211, 0x1F3B5, U'z'});
  CHECK(EncodeUtf8(text) == bytes);
  CHECK(EncodeUtf8(char32_t{0x6211}) == "\xE6\x88\x91");
}

TEST_CASE("utf8: the boundaries of each sequence length round trip") {
  for (char32_t c : {char32_t{0}, char32_t{0x7F}, char32_t{0x80}, char32_t{0x7FF}, char32_t{0x800}, char32_t{0xD7FF},
                     char32_t{0xE000}, char32_t{0xFFFF}, char32_t{0x10000}, char32_t{0x10FFFF}}) {
    const std::u32string one(1, c);
    CHECK(DecodeUtf8(EncodeUtf8(one), "x") == one);
  }
}

TEST_CASE("utf8: a leading BOM is skipped, a later U+FEFF is kept, and kKeep keeps a leading one") {
  CHECK(DecodeUtf8("\xEF\xBB\xBFhi", "x") == U"hi");
  CHECK(DecodeUtf8("h\xEF\xBB\xBFi", "x") == std::u32string{U'h', 0xFEFF, U'i'});
  CHECK(DecodeUtf8("\xEF\xBB\xBF", "x", LeadingBom::kKeep) == std::u32string(1, 0xFEFF));
}

TEST_CASE("utf8: every class of invalid input names the source, the byte offset and the fix") {
  const std::string stray = DecodeError("ab\x80");
  CHECK(stray.find("song.txt: invalid UTF-8 at byte offset 2 (") == 0);
  CHECK(stray.find("continuation") != std::string::npos);
  CHECK(stray.find("save the file as UTF-8") != std::string::npos);

  const std::string overlong = DecodeError("abc\xC0\xAF");  // '/' in two bytes
  CHECK(overlong.find("byte offset 3 ") != std::string::npos);
  CHECK(overlong.find("overlong") != std::string::npos);
  CHECK(DecodeError("\xE0\x80\xAF").find("overlong") != std::string::npos);
  CHECK(DecodeError("\xF0\x80\x80\xAF").find("overlong") != std::string::npos);

  const std::string surrogate = DecodeError("x\xED\xA0\x80");  // U+D800
  CHECK(surrogate.find("byte offset 1 ") != std::string::npos);
  CHECK(surrogate.find("surrogate") != std::string::npos);

  const std::string too_big = DecodeError("\xF4\x90\x80\x80");  // U+110000
  CHECK(too_big.find("byte offset 0 ") != std::string::npos);
  CHECK(too_big.find("U+10FFFF") != std::string::npos);

  const std::string truncated_at_end = DecodeError("ok\xE6\x88");
  CHECK(truncated_at_end.find("byte offset 2 ") != std::string::npos);
  CHECK(truncated_at_end.find("truncated") != std::string::npos);

  const std::string truncated_inside = DecodeError("\xE6\x88z");
  CHECK(truncated_inside.find("byte offset 0 ") != std::string::npos);
  CHECK(truncated_inside.find("truncated") != std::string::npos);

  CHECK(DecodeError("\xFF").find("byte offset 0 ") != std::string::npos);
}

TEST_CASE("utf8: offsets count the BOM, so they match the file") {
  CHECK(DecodeError(std::string("\xEF\xBB\xBF") + "a\x80").find("byte offset 4 ") != std::string::npos);
}

TEST_CASE("utf8: messages show control characters escaped so they stay on one line") {
  CHECK(DescribeCodePoint(U'\n') == "U+000A");
  CHECK(DescribeCodePoint(0x6211) == "U+6211 '\xE6\x88\x91'");
  CHECK(PrintableCodePoint(U'\n') == "\\n");
  CHECK(PrintableCodePoint(0x01) == "\\u{1}");
  CHECK(PrintableCodePoint(U'a') == "a");
}

TEST_CASE("utf8: control characters are escaped for error messages, everything else is kept") {
  CHECK(EscapeControlChars("分开\n我\t\r\x01\x7f!") == "分开\\n我\\t\\r\\x01\\x7f!");
  CHECK(EscapeControlChars("") == "");
}

TEST_CASE("utf8: bytes that are not UTF-8 are escaped for error messages, never printed raw") {
  // A cut character, a stray continuation byte, bytes that never occur, an overlong '/', an encoded surrogate.
  CHECK(EscapeControlChars("\xe5\x88") == "\\xe5\\x88");
  CHECK(EscapeControlChars("a\x88" "b") == "a\\x88b");
  CHECK(EscapeControlChars("\xff\xfe") == "\\xff\\xfe");
  CHECK(EscapeControlChars("\xc0\xaf") == "\\xc0\\xaf");
  CHECK(EscapeControlChars("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(EscapeControlChars("分\xe5开") == "分\\xe5开");  // the characters around a bad byte stay
  // The limit counts characters, an escaped byte being one.
  CHECK(EscapeControlChars("\xff\xff\xff" "abc", 2) == "\\xff\\xff\u2026");
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("utf8: the 8-byte ASCII path decodes and fails exactly as byte by byte, at every alignment") {
  const std::string multibyte[] = {"\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x8E\xB5"};  // é 中 🎵
  // Well-formed: ASCII runs of every length broken by characters of every length, at every offset of a block.
  for (std::size_t before = 0; before < 17; ++before) {
    for (std::size_t between = 0; between < 17; ++between) {
      for (const std::string& character : multibyte) {
        const std::string bytes = std::string(before, 'a') + character + std::string(between, 'b') + character + "\x7F";
        std::string whole_error, bytewise_error;
        CAPTURE(before);
        CAPTURE(between);
        const std::u32string whole = DecodeWhole(bytes, whole_error);
        CHECK(whole_error.empty());
        CHECK(whole == DecodeBytewise(bytes, bytewise_error));
        CHECK(whole.size() == before + between + 3);
      }
    }
  }
  // Invalid: each kind of bad sequence at every position of two 16-byte blocks of ASCII, and cut by the end.
  const std::string invalid[] = {"\x80", "\xFF", "\xC0\xAF", "\xE4\xB8", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                 "\xE4\x41\x42"};
  for (const std::string& bad : invalid) {
    for (std::size_t at = 0; at < 32; ++at) {
      for (const bool cut_by_end : {false, true}) {
        std::string bytes = std::string(32, 'x');
        bytes.insert(at, bad);
        if (cut_by_end) bytes.resize(at + bad.size());
        std::string whole_error, bytewise_error;
        CAPTURE(at);
        CAPTURE(cut_by_end);
        DecodeWhole(bytes, whole_error);
        DecodeBytewise(bytes, bytewise_error);
        CHECK(whole_error.find("invalid UTF-8 at byte offset " + std::to_string(at) + " (") != std::string::npos);
        CHECK(whole_error == bytewise_error);
      }
    }
  }
}

}  // namespace
}  // namespace charlm
