// Tests for lib/corpus: newline policies, reading (and refusing) corpus files, train/val/test splits.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "corpus.h"
#include "errors.h"
#include "test_util.h"
#include "vocab.h"

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

TEST_CASE("corpus: newline policies keep, replace each of \\n and \\r by a space, or drop them") {
  const std::u32string text = U"a\r\nb\nc";
  CHECK(ApplyNewlinePolicy(text, NewlinePolicy::kKeep) == text);
  CHECK(ApplyNewlinePolicy(text, NewlinePolicy::kSpace) == U"a  b c");
  CHECK(ApplyNewlinePolicy(text, NewlinePolicy::kDrop) == U"abc");
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

  const std::string directory_error = ReadError(dir.path().string());
  CHECK(directory_error.find(dir.path().string()) != std::string::npos);
  CHECK(directory_error.find("directory") != std::string::npos);

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
