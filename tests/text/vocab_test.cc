// Tests for lib/text/vocab: id order, min_freq and <unk>, encode/decode, JSON round trip and its rejections.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "util/errors.h"
#include "test_util.h"
#include "text/vocab.h"

namespace charlm {
namespace {

// The UserError message of Vocab::FromJson(j), or "" if it accepts j.
std::string FromJsonError(const nlohmann::json& j) {
  try {
    Vocab::FromJson(j);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("vocab: ids follow descending frequency, ties by ascending code point") {
  const Vocab vocab = Vocab::Build(U"cbabcxcb");  // c:3 b:3 a:1 x:1
  REQUIRE(vocab.size() == 4);
  CHECK(vocab.CharAt(0) == U'b');
  CHECK(vocab.CharAt(1) == U'c');
  CHECK(vocab.CharAt(2) == U'a');
  CHECK(vocab.CharAt(3) == U'x');
  CHECK(vocab.counts() == std::vector<std::int64_t>{3, 3, 1, 1});
  CHECK(vocab.Find(U'a') == 2);
  CHECK_FALSE(vocab.Find(U'z').has_value());
  CHECK_FALSE(vocab.unk_id().has_value());
  CHECK(vocab.TokenText(1) == "c");
}

TEST_CASE("vocab: encode and decode are inverse on the building text") {
  const std::u32string text = U"\u6211\u7684\u6211 a\n";
  const Vocab vocab = Vocab::Build(text);
  const std::vector<int> ids = vocab.Encode(text);
  CHECK(ids.size() == text.size());
  CHECK(ids[0] == ids[2]);
  CHECK(vocab.Decode(ids) == text);
  CHECK(vocab.TokenText(*vocab.Find(0x6211)) == "\xE6\x88\x91");
}

TEST_CASE("vocab: an unknown character without <unk> is a UserError naming it") {
  const Vocab vocab = Vocab::Build(U"abc");
  try {
    vocab.IdOrUnk(0x4F60);
    FAIL("unknown character accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("U+4F60") != std::string::npos);
  }
  CHECK_THROWS_AS(vocab.Encode(U"ax"), UserError);
  CHECK_THROWS_AS(vocab.CharAt(3), std::out_of_range);
  CHECK_THROWS_AS(vocab.CharAt(-1), std::out_of_range);
}

TEST_CASE("vocab: min_freq maps rare characters to a trailing <unk>") {
  const Vocab vocab = Vocab::Build(U"aaabbcd", 2);  // a:3 b:2 kept; c, d dropped
  REQUIRE(vocab.size() == 3);
  REQUIRE(vocab.unk_id() == 2);
  CHECK(vocab.TokenText(2) == "<unk>");
  CHECK(vocab.CharAt(2) == 0xFFFD);
  CHECK(vocab.counts()[2] == 2);
  CHECK_FALSE(vocab.Find(U'c').has_value());
  CHECK(vocab.IdOrUnk(U'c') == 2);
  CHECK(vocab.Encode(U"abzd") == std::vector<int>{0, 1, 2, 2});

  CHECK_FALSE(Vocab::Build(U"aabb", 2).unk_id().has_value());  // nothing dropped, no <unk>
  CHECK_THROWS_AS(Vocab::Build(U"abc", 2), UserError);         // everything dropped
  CHECK_THROWS_AS(Vocab::Build(U"abc", 0), UserError);
  CHECK_THROWS_AS(Vocab::Build(U""), UserError);
}

TEST_CASE("vocab: a real U+FFFD stays distinct from <unk>") {
  const std::u32string text = U"aa\uFFFD\uFFFDb";
  const Vocab vocab = Vocab::Build(text, 2);
  REQUIRE(vocab.unk_id() == 2);
  CHECK(vocab.Find(0xFFFD) == 1);
  CHECK(vocab.IdOrUnk(U'b') == 2);
}

TEST_CASE("vocab: JSON and file round trips give an equal vocabulary") {
  const Vocab plain = Vocab::Build(U"\u6211\u6211 \n\uFEFFab\U0001F3B5");
  CHECK(Vocab::FromJson(plain.ToJson()) == plain);
  CHECK(Vocab::FromJson(nlohmann::json::parse(plain.ToJson().dump())) == plain);
  const Vocab with_unk = Vocab::Build(U"aaabbcd", 2);
  CHECK(Vocab::FromJson(with_unk.ToJson()) == with_unk);
  CHECK_FALSE(with_unk == plain);

  testing::TempDir dir;
  const auto path = (dir / "vocab.json").string();
  with_unk.Save(path);
  const Vocab loaded = Vocab::Load(path);
  CHECK(loaded == with_unk);
  CHECK(loaded.IdOrUnk(U'q') == 2);
}

TEST_CASE("vocab: FromJson rejects malformed input with a UserError") {
  const auto make = [](nlohmann::json tokens, nlohmann::json counts) {
    return nlohmann::json{{"tokens", std::move(tokens)}, {"counts", std::move(counts)}};
  };
  CHECK(FromJsonError(make({"a", "b"}, {1, 1})).empty());
  CHECK_FALSE(FromJsonError(nlohmann::json::array()).empty());
  CHECK_FALSE(FromJsonError(nlohmann::json{{"tokens", {"a"}}}).empty());
  CHECK_FALSE(FromJsonError(make("a", {1})).empty());
  CHECK_FALSE(FromJsonError(make(nlohmann::json::array(), nlohmann::json::array())).empty());
  CHECK(FromJsonError(make({"a", "b"}, {1})).find("2 tokens but 1 counts") != std::string::npos);
  CHECK(FromJsonError(make({"ab"}, {1})).find("token 0 holds 2 characters") != std::string::npos);
  CHECK(FromJsonError(make({""}, {1})).find("token 0 holds 0 characters") != std::string::npos);
  CHECK(FromJsonError(make({"a", "a"}, {1, 1})).find("token 1 repeats character U+0061") != std::string::npos);
  CHECK(FromJsonError(make({"<unk>", "<unk>"}, {1, 1})).find("second") != std::string::npos);
  CHECK(FromJsonError(make({7}, {1})).find("not a string") != std::string::npos);
  CHECK(FromJsonError(make({"a"}, {-1})).find("count -1") != std::string::npos);
  CHECK(FromJsonError(make({"a"}, {1.5})).find("count 1.5") != std::string::npos);
  CHECK(FromJsonError(make({"a"}, {"x\xFF"})).find("count") != std::string::npos);
  CHECK(FromJsonError(make({"\xED\xA0\x80"}, {1})).find("invalid UTF-8") != std::string::npos);
}

TEST_CASE("vocab: Load names the path for missing or non-JSON files") {
  testing::TempDir dir;
  const auto missing = (dir / "none.json").string();
  try {
    Vocab::Load(missing);
    FAIL("missing file accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
  }
  const auto garbage = (dir / "garbage.json").string();
  testing::WriteFile(garbage, "{\"tokens\": [");
  try {
    Vocab::Load(garbage);
    FAIL("truncated JSON accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find(garbage) != std::string::npos);
  }
  const auto wrong = (dir / "wrong.json").string();
  testing::WriteFile(wrong, R"({"tokens": ["ab"], "counts": [1]})");
  try {
    Vocab::Load(wrong);
    FAIL("bad token accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find(wrong) != std::string::npos);
    CHECK(std::string(e.what()).find("holds 2 characters") != std::string::npos);
  }
}

TEST_CASE("vocab: SuggestedPrefix takes the first preferred prefix the vocabulary can encode, else its top character") {
  const Vocab lyrics = Vocab::Build(U"分开 不分开 分开了 我", 1);
  CHECK(SuggestedPrefix(lyrics, {"分开", "不分开"}) == "分开");
  CHECK(SuggestedPrefix(lyrics, {"龙", "不分开"}) == "不分开");  // 龙 is not in it
  // None fits: the most frequent character that is not whitespace (' ' is the most frequent here).
  const Vocab english = Vocab::Build(U"a cat  sat   on a mat", 1);
  REQUIRE(english.CharAt(0) == U' ');
  CHECK(SuggestedPrefix(english, {"分开", ""}) == "a");
  // <unk> is never suggested: with min_freq 3 only ' ', 'a', 't' and <unk> remain.
  const Vocab rare = Vocab::Build(U"a cat  sat   on a mat", 3);
  CHECK(SuggestedPrefix(rare, {}) == "a");
  CHECK(SuggestedPrefix(Vocab::Build(U"  \n ", 1), {"x"}).empty());
}

}  // namespace
}  // namespace charlm
