// Tests for lib/text/corpus: newline policies, reading (and refusing) corpus files, train/val/test splits.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "text/corpus.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "test_util.h"
#include "util/utf8.h"
#include "text/vocab.h"

namespace charlm {
namespace {

using testing::TempDir;
using testing::WriteFile;

// The UserError message of ReadCorpus, or "" if it succeeds.
std::string ReadError(const std::string& path, NewlinePolicy policy = NewlinePolicy::kKeep) {
  try {
    ReadCorpus(path, policy, 0);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

std::string SplitError(std::int64_t size, double val_fraction, double test_fraction) {
  try {
    SplitCorpus(size, val_fraction, test_fraction);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

bool IsOneLine(const std::string& message) { return !message.empty() && message.find('\n') == std::string::npos; }

// The newline policy on text whose "\r\n" pairs were already read as "\n": each '\n' and each lone '\r' kept,
// made a space or dropped. The reference the streaming reader is checked against.
std::u32string ApplyNewlinePolicy(std::u32string text, NewlinePolicy policy) {
  const auto is_newline = [](char32_t c) { return c == U'\n' || c == U'\r'; };
  if (policy == NewlinePolicy::kSpace) std::replace_if(text.begin(), text.end(), is_newline, U' ');
  if (policy == NewlinePolicy::kDrop) text.erase(std::remove_if(text.begin(), text.end(), is_newline), text.end());
  return text;
}

TEST_CASE("corpus: newline policies keep, replace each line break and lone \\r by a space, or drop them") {
  const std::string text = "a\r\nb\nc\rd";
  CHECK(DecodeText(text, NewlinePolicy::kKeep, "text") == U"a\nb\nc\rd");
  CHECK(DecodeText(text, NewlinePolicy::kSpace, "text") == U"a b c d");
  CHECK(DecodeText(text, NewlinePolicy::kDrop, "text") == U"abcd");
}

TEST_CASE("corpus: ReadCorpus applies the policy before truncating to max_chars") {
  TempDir dir;
  const auto path = (dir / "lyrics.txt").string();
  WriteFile(path, "\xEF\xBB\xBF\xE6\x88\x91\n\xE4\xBD\xA0\nxyz");  // BOM 我 \n 你 \n xyz
  CHECK(ReadCorpus(path, NewlinePolicy::kKeep, 0) == U"\u6211\n\u4F60\nxyz");
  CHECK(ReadCorpus(path, NewlinePolicy::kDrop, 3) == U"\u6211\u4F60x");
  CHECK(ReadCorpus(path, NewlinePolicy::kSpace, 4) == U"\u6211 \u4F60 ");
  CHECK(ReadCorpus(path, NewlinePolicy::kKeep, 100).size() == 7);
}

TEST_CASE("corpus: each bad input is a one-line UserError naming the path") {
  TempDir dir;
  const auto missing = (dir / "missing.txt").string();
  const std::string missing_error = ReadError(missing);
  CHECK(IsOneLine(missing_error));
  CHECK(missing_error.find(missing) != std::string::npos);
  CHECK(missing_error.find("does not exist") != std::string::npos);

  // A folder is read as its documents; one without any says so.
  const auto folder = std::filesystem::path(dir.path()) / "folder";
  std::filesystem::create_directories(folder / "sub");
  const std::string directory_error = ReadError(folder.string());
  CHECK(IsOneLine(directory_error));
  CHECK(directory_error.find(folder.string()) != std::string::npos);
  CHECK(directory_error.find("no documents were found") != std::string::npos);

  const auto empty = (dir / "empty.txt").string();
  WriteFile(empty, "");
  const std::string empty_error = ReadError(empty);
  CHECK(empty_error.find(empty) != std::string::npos);
  CHECK(empty_error.find("empty") != std::string::npos);

  const auto only_newlines = (dir / "newlines.txt").string();
  WriteFile(only_newlines, "\n\r\n");
  CHECK(ReadError(only_newlines).empty());
  const std::string dropped_error = ReadError(only_newlines, NewlinePolicy::kDrop);
  CHECK(IsOneLine(dropped_error));
  CHECK(dropped_error.find(only_newlines) != std::string::npos);
  CHECK(dropped_error.find("drop") != std::string::npos);

  const auto latin1 = (dir / "latin1.txt").string();
  WriteFile(latin1, "caf\xE9!");
  const std::string utf8_error = ReadError(latin1);
  CHECK(utf8_error.find(latin1 + ": invalid UTF-8 at byte offset 3") == 0);

  const auto fine = (dir / "fine.txt").string();
  WriteFile(fine, "abc");
  try {
    ReadCorpus(fine, NewlinePolicy::kKeep, -5);
    FAIL("negative max_chars accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("-5") != std::string::npos);
  }
}

TEST_CASE("corpus: ParseNewlinePolicy accepts the config spellings and lists them on error") {
  CHECK(ParseNewlinePolicy("space", "--newline") == NewlinePolicy::kSpace);
  try {
    ParseNewlinePolicy("spaces", "--newline");
    FAIL("bad policy accepted");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.find("--newline \"spaces\"") == 0);
    CHECK(message.find("\"keep\" | \"space\" | \"drop\"") != std::string::npos);
  }
  // A typo gets the config reader's did-you-mean (issue 35: vocab --newline spaec had none).
  try {
    ParseNewlinePolicy("spaec", "--newline");
    FAIL("bad policy accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) ==
          "--newline \"spaec\" is not a newline policy: use one of \"keep\" | \"space\" | \"drop\": did you mean \"space\"?");
  }
}

TEST_CASE("corpus: splits are contiguous tail slices of floor(size * fraction)") {
  const SplitBounds bounds = SplitCorpus(1000, 0.1, 0.05);
  CHECK(bounds.train_end == 850);
  CHECK(bounds.val_end == 950);
  CHECK(bounds.size == 1000);

  const SplitBounds no_holdout = SplitCorpus(7, 0.0, 0.0);
  CHECK(no_holdout.train_end == 7);
  CHECK(no_holdout.val_end == 7);

  const SplitBounds floors = SplitCorpus(19, 0.1, 0.1);  // 1.9 -> 1 each
  CHECK(floors.train_end == 17);
  CHECK(floors.val_end == 18);
}

TEST_CASE("corpus: fractions out of range or leaving no training text name the values") {
  CHECK(SplitError(100, 1.0, 0.0).find("val_fraction 1 ") == 0);
  CHECK(SplitError(100, -0.1, 0.0).find("val_fraction -0.1") == 0);
  CHECK(SplitError(100, 0.1, 1.5).find("test_fraction 1.5") == 0);
  const std::string no_train = SplitError(100, 0.6, 0.4);
  CHECK(IsOneLine(no_train));
  CHECK(no_train.find("0.6") != std::string::npos);
  CHECK(no_train.find("0.4") != std::string::npos);
  CHECK(no_train.find("no training text") != std::string::npos);
  CHECK(SplitError(100, 0.5, 0.49).empty());
}

// The text as the whole-file reader would see it: decoded at once, each "\r\n" one "\n", then the policy and cut.
std::u32string WholeFileText(const std::string& bytes, NewlinePolicy policy, std::int64_t max_chars) {
  std::u32string decoded = DecodeUtf8(bytes, "whole");
  std::u32string lf;
  for (std::size_t k = 0; k < decoded.size(); ++k) {
    if (decoded[k] == U'\r' && k + 1 < decoded.size() && decoded[k + 1] == U'\n') continue;
    lf.push_back(decoded[k]);
  }
  std::u32string text = ApplyNewlinePolicy(lf, policy);
  if (max_chars > 0 && static_cast<std::size_t>(max_chars) < text.size()) text.resize(static_cast<std::size_t>(max_chars));
  return text;
}

// About 1.3 MB, so it streams in several pieces whose ends fall inside 2-, 3- and 4-byte sequences and between
// the \r and \n of a Windows line break; with a lone \r, a form feed and rare characters for min_freq to drop.
std::string MixedText() {
  std::mt19937 rng(5);
  const std::vector<std::string> words = {"the ", "caf\xC3\xA9 ", "\xE6\x88\x91\xE4\xBD\xA0", "\xF0\x9F\x8E\xB5",
                                          "\r\n", "\n", "\t", "ab\rc", "\x0C", "\xD0\xB6", "x"};
  std::string text = "\xEF\xBB\xBF";
  while (text.size() < 1'300'000) text += words[rng() % words.size()];
  text += "\xE2\x82\xAC\r";  // a rare character, and a \r at the very end
  return text;
}

TEST_CASE("corpus: ReadCorpusIds in pieces equals the whole file decoded, built into a vocabulary and encoded") {
  TempDir dir;
  const auto path = (dir / "mixed.txt").string();
  const std::string bytes = MixedText();
  WriteFile(path, bytes);
  for (const NewlinePolicy policy : {NewlinePolicy::kKeep, NewlinePolicy::kSpace, NewlinePolicy::kDrop}) {
    for (const std::int64_t max_chars : {std::int64_t{0}, std::int64_t{700'001}, std::int64_t{50}}) {
      for (const int min_freq : {1, 3}) {
        CAPTURE(EnumName(policy));
        CAPTURE(max_chars);
        CAPTURE(min_freq);
        const std::u32string expected_text = WholeFileText(bytes, policy, max_chars);
        CHECK(ReadCorpus(path, policy, max_chars) == expected_text);
        const CorpusIds corpus = ReadCorpusIds(path, policy, max_chars, min_freq);
        const Vocab expected_vocab = Vocab::Build(expected_text, min_freq);
        CHECK(corpus.vocab == expected_vocab);
        CHECK(corpus.ids.width() == 2);
        CHECK(corpus.ids.view().ToVector() == expected_vocab.Encode(expected_text));
        CHECK(corpus.notes.chars == static_cast<std::int64_t>(expected_text.size()));
      }
    }
  }
}

TEST_CASE("corpus: a \\r\\n or a character cut by the end of a 256 KiB read piece reads as in one piece") {
  TempDir dir;
  const auto path = (dir / "cut.txt").string();
  constexpr std::size_t kPiece = std::size_t{1} << 18;  // StreamCorpus's read size
  for (std::size_t shift = 0; shift < 5; ++shift) {
    for (const std::string& tail : {std::string("\r\nab\r\n"), std::string("\r\rx\n"), std::string("\xF0\x9F\x8E\xB5\r\n")}) {
      const std::string bytes = std::string(kPiece - 1 - shift, 'a') + tail + "\xE4\xB8\xAD\r";
      WriteFile(path, bytes);
      CAPTURE(shift);
      for (const NewlinePolicy policy : {NewlinePolicy::kKeep, NewlinePolicy::kSpace}) {
        const CorpusIds corpus = ReadCorpusIds(path, policy, 0, 1);
        CHECK(corpus.vocab.Decode(corpus.ids.view()) == WholeFileText(bytes, policy, 0));
      }
    }
  }
}

TEST_CASE("corpus: Windows line breaks are read as \\n and other control characters are counted") {
  TempDir dir;
  const auto path = (dir / "windows.txt").string();
  WriteFile(path, "one\r\ntwo\r\n\x0Cthree\rfour\x7F\r");
  const CorpusIds corpus = ReadCorpusIds(path, NewlinePolicy::kKeep, 0, 1);
  CHECK(corpus.vocab.Decode(corpus.ids.view()) == U"one\ntwo\n\fthree\rfour\x7F\r");
  CHECK(corpus.notes.crlf_line_breaks == 2);
  CHECK(corpus.notes.control_chars == 4);  // form feed, the lone \r, DEL, the final \r
  CHECK(corpus.notes.first_control == U'\f');
  CHECK(corpus.notes.first_control_index == 8);
  const CorpusIds dropped = ReadCorpusIds(path, NewlinePolicy::kDrop, 0, 1);
  CHECK(dropped.vocab.Decode(dropped.ids.view()) == U"onetwo\fthreefour\x7F");
  CHECK(dropped.notes.control_chars == 2);  // the \r are gone with the policy
}

TEST_CASE("corpus: ids widen to 4 bytes past 65,536 symbols, and stay 2 when min_freq folds the rare ones") {
  TempDir dir;
  const auto path = (dir / "many.txt").string();
  std::u32string text;
  for (char32_t c = 0x20000; c < 0x20000 + 70'000; ++c) text += c;  // 70,000 distinct, once each
  for (int repeat = 0; repeat < 3; ++repeat) text += U"abc";
  WriteFile(path, EncodeUtf8(text));
  const CorpusIds all = ReadCorpusIds(path, NewlinePolicy::kKeep, 0, 1);
  CHECK(all.vocab.size() == 70'003);
  CHECK(all.ids.width() == 4);
  CHECK(all.ids.view().ToVector() == all.vocab.Encode(text));
  const CorpusIds folded = ReadCorpusIds(path, NewlinePolicy::kKeep, 0, 2);
  CHECK(folded.vocab.size() == 4);  // a, b, c, <unk>
  CHECK(folded.ids.width() == 2);
  CHECK(folded.vocab == Vocab::Build(text, 2));
  const std::vector<int> ids = folded.ids.view().ToVector();
  CHECK(std::count(ids.begin(), ids.end(), *folded.vocab.unk_id()) == 70'000);
}

TEST_CASE("corpus: invalid UTF-8 deep in the file is reported at its offset in the file") {
  TempDir dir;
  const auto path = (dir / "late.txt").string();
  std::string bytes(600'000, 'a');
  bytes += "\xE6\x88";  // a 3-byte sequence cut by a space
  bytes += " tail";
  WriteFile(path, bytes);
  const std::string error = ReadError(path);
  CHECK(error.find(path + ": invalid UTF-8 at byte offset 600000 (truncated sequence: byte 0x20 at offset 600002") == 0);
  WriteFile(path, std::string(262'143, 'a') + "\xE6\x88");  // cut at the end of the file, across a piece boundary
  CHECK(ReadError(path).find("byte offset 262143 (truncated sequence at end of input)") != std::string::npos);
}

TEST_CASE("corpus: a corpus whose ids would not fit in half the memory is refused before anything is read") {
  const std::uint64_t memory = PhysicalMemoryBytes();
  if (memory == 0) {
    MESSAGE("SKIPPED: the machine's memory size is unknown");
    return;
  }
  TempDir dir;
  const auto path = (dir / "huge.txt").string();
  WriteFile(path, "");
  std::filesystem::resize_file(path, memory / 2);  // sparse: no disk used, and never read
  try {
    ReadCorpusIds(path, NewlinePolicy::kKeep, 0, 1);
    FAIL("a corpus larger than the memory allows was read");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(IsOneLine(message));
    CHECK(message.find("corpus file '" + path + "' is ") == 0);
    // The value to type is plain digits (a --set value takes no thousands separators), and it fits.
    const std::string key = "--set data.max_chars=";
    const std::size_t at = message.find(key);
    REQUIRE(at != std::string::npos);
    const std::string digits = message.substr(at + key.size(), message.find(", or ", at) - at - key.size());
    REQUIRE(!digits.empty());
    CHECK(digits.find_first_not_of("0123456789") == std::string::npos);
    CHECK(std::stoull(digits) <= memory / 4);
  }
  const auto too_many = static_cast<std::int64_t>(memory / 4 + 1);
  try {
    ReadCorpusIds(path, NewlinePolicy::kKeep, too_many, 1);
    FAIL("a max_chars larger than the memory allows was accepted");
  } catch (const UserError& e) {
    const std::string message = e.what();
    const std::string key = "lower data.max_chars to at most ";
    const std::size_t at = message.find(key);
    REQUIRE(at != std::string::npos);
    const std::string digits = message.substr(at + key.size());
    CHECK(digits.find_first_not_of("0123456789") == std::string::npos);
    CHECK(std::stoull(digits) <= memory / 4);
    CHECK(message.find("data.max_chars " + std::to_string(too_many) + " ") == 0);
  }
  // A text to score (eval/score --text) is read whole: no data.max_chars to lower, so the fix is to split it.
  try {
    ReadTextIds(path, NewlinePolicy::kKeep, Vocab::Build(U"ab", 1));
    FAIL("a text larger than the memory allows was read");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(IsOneLine(message));
    CHECK(message.find("text file '" + path + "' is ") == 0);
    CHECK(message.find("max_chars") == std::string::npos);
    CHECK(message.find("split the file") != std::string::npos);
  }
  std::filesystem::resize_file(path, 0);
  WriteFile(path, "just this");
  CHECK(ReadCorpusIds(path, NewlinePolicy::kKeep, too_many, 1).ids.size() == 9);  // max_chars beyond the file is fine
}

TEST_CASE("corpus: the lyrics have the book's sizes") {
  const auto path = testing::LyricsPath();
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " is absent (scripts/setup.sh copies it)");
    return;
  }
  const std::u32string keep = ReadCorpus(path.string(), NewlinePolicy::kKeep, 0);
  CHECK(keep.size() == 63281);
  CHECK(Vocab::Build(keep).size() == 2583);
  const std::u32string book = ReadCorpus(path.string(), NewlinePolicy::kSpace, 10000);
  CHECK(book.size() == 10000);
  CHECK(Vocab::Build(book).size() == 1027);
  CHECK(book.substr(0, 7) == U"\u60F3\u8981\u6709\u76F4\u5347\u673A ");  // 想要有直升机 + the replaced newline
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("corpus: a text in memory is read by the corpus file's rules, \\r\\n as one line break") {
  // Issue 35: generate --prefix-file read "\r\n" as two characters while the corpus read one.
  testing::TempDir dir;
  const std::string bytes = "\xEF\xBB\xBFthe cat\r\nsat\ron\r\n\r\n";
  testing::WriteFile(dir / "crlf.txt", bytes);
  for (const NewlinePolicy policy : {NewlinePolicy::kKeep, NewlinePolicy::kSpace, NewlinePolicy::kDrop}) {
    CHECK(DecodeText(bytes, policy, "prefix") == ReadCorpus((dir / "crlf.txt").string(), policy, 0));
  }
  CHECK(DecodeText("a\r\nb", NewlinePolicy::kSpace, "prefix") == U"a b");
  CHECK(DecodeText("", NewlinePolicy::kKeep, "prefix").empty());
  CHECK_THROWS_WITH_AS(DecodeText("a\xFF", NewlinePolicy::kKeep, "prefix"), doctest::Contains("prefix: invalid UTF-8"),
                       UserError);
}

TEST_CASE("corpus: a path too long is reported as too long, not as missing") {
  const std::string path = std::string(5000, 'a') + ".txt";
  CHECK_THROWS_WITH_AS(ReadCorpus(path, NewlinePolicy::kKeep, 0),
                       doctest::Contains("cannot be looked up: File name too long; shorten the path"), UserError);
  CorpusSource two;
  two.paths = {path, path};
  CHECK_THROWS_WITH_AS(ReadCorpus(two, NewlinePolicy::kKeep, 0),
                       doctest::Contains("corpus path '"), UserError);
  CHECK_THROWS_WITH_AS(ReadCorpus(two, NewlinePolicy::kKeep, 0),
                       doctest::Contains("cannot be looked up: File name too long"), UserError);
}

}  // namespace
}  // namespace charlm
