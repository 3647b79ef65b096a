// The character vocabulary: ids for code points, frequency order, optional <unk>, JSON save and load.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/token_ids.h"

namespace charlm {

class Vocab {
 public:
  // An empty vocabulary (size 0), only useful as a placeholder to assign to.
  Vocab() = default;

  // Ids in descending frequency, ties by ascending code point, so the table does not depend on hash order.
  // With min_freq > 1, characters seen fewer times share one "<unk>" entry, appended last, if any were dropped.
  // UserError on empty text, min_freq < 1, or a min_freq that drops every character.
  static Vocab Build(std::u32string_view text, int min_freq = 1);
  // As Build, from the count of each distinct character, in any order: what a reader streaming the text collects.
  static Vocab FromCounts(std::vector<std::pair<char32_t, std::int64_t>> counts, int min_freq = 1);

  int size() const { return static_cast<int>(chars_.size()); }
  std::optional<int> Find(char32_t c) const;  // no <unk> fallback
  int IdOrUnk(char32_t c) const;              // UserError naming the character if absent and there is no <unk>
  char32_t CharAt(int id) const;              // U+FFFD for <unk>; std::out_of_range for a bad id
  std::string TokenText(int id) const;        // UTF-8 of the character, "<unk>" for <unk>
  std::optional<int> unk_id() const { return unk_id_; }

  std::vector<int> Encode(std::u32string_view text) const;
  std::u32string Decode(IdView ids) const;

  // Frequency per id in the text the vocabulary was built from (<unk> holds the sum of the dropped characters).
  const std::vector<std::int64_t>& counts() const { return counts_; }

  // {"tokens": ["的", ..., "<unk>"], "counts": [...]}: characters as UTF-8 strings so the file is readable.
  nlohmann::json ToJson() const;
  // Validates everything (each token exactly one code point or "<unk>", no duplicates, counts match) and throws a
  // one-line UserError on bad input; safe on any JSON value.
  static Vocab FromJson(const nlohmann::json& j);

  void Save(const std::string& path) const;
  static Vocab Load(const std::string& path);

  bool operator==(const Vocab& other) const;

  static constexpr std::string_view kUnkToken = "<unk>";

 private:
  void AddToken(char32_t c, std::int64_t count);
  void AddUnk(std::int64_t count);

  std::vector<char32_t> chars_;  // U+FFFD at unk_id_
  std::vector<std::int64_t> counts_;
  std::optional<int> unk_id_;
  std::unordered_map<char32_t, int> index_;  // real characters only, never <unk>
};

// A prefix `charlm generate` accepts for this vocabulary, for the hint printed after training: the first of
// `preferred` whose characters are all in it, else the most frequent character that is not whitespace or <unk>;
// empty when there is none.
std::string SuggestedPrefix(const Vocab& vocab, const std::vector<std::string>& preferred);

}  // namespace charlm
