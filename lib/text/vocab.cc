// The character vocabulary: ids for code points, frequency order, optional <unk>, JSON save and load.
#include "text/vocab.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/json_parse.h"
#include "util/utf8.h"

namespace charlm {
namespace {

constexpr char32_t kReplacementCharacter = 0xFFFD;
// Every Unicode code point with a 19-digit count, written with indentation, stays well below this.
constexpr std::uint64_t kMaxVocabFileBytes = 100'000'000;

}  // namespace

void Vocab::AddToken(char32_t c, std::int64_t count) {
  index_.emplace(c, size());
  chars_.push_back(c);
  counts_.push_back(count);
}

void Vocab::AddUnk(std::int64_t count) {
  unk_id_ = size();
  chars_.push_back(kReplacementCharacter);
  counts_.push_back(count);
}

Vocab Vocab::Build(std::u32string_view text, int min_freq) {
  if (min_freq < 1) {
    throw UserError("min_freq " + std::to_string(min_freq) + " is below 1: use 1 to keep every character");
  }
  if (text.empty()) throw UserError("cannot build a vocabulary from empty text: give a corpus with some characters");
  std::unordered_map<char32_t, std::int64_t> frequency;
  for (char32_t c : text) ++frequency[c];
  return FromCounts({frequency.begin(), frequency.end()}, min_freq);
}

Vocab Vocab::FromCounts(std::vector<std::pair<char32_t, std::int64_t>> by_frequency, int min_freq) {
  if (min_freq < 1) {
    throw UserError("min_freq " + std::to_string(min_freq) + " is below 1: use 1 to keep every character");
  }
  if (by_frequency.empty()) {
    throw UserError("cannot build a vocabulary from empty text: give a corpus with some characters");
  }
  std::sort(by_frequency.begin(), by_frequency.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  Vocab vocab;
  std::int64_t dropped_count = 0;
  for (const auto& [c, count] : by_frequency) {
    if (count >= min_freq) {
      vocab.AddToken(c, count);
    } else {
      dropped_count += count;
    }
  }
  if (vocab.size() == 0) {
    throw UserError("min_freq " + std::to_string(min_freq) + " drops every character (the most frequent occurs " +
                    std::to_string(by_frequency.front().second) + " times): lower min_freq");
  }
  if (dropped_count > 0) vocab.AddUnk(dropped_count);
  return vocab;
}

std::optional<int> Vocab::Find(char32_t c) const {
  const auto it = index_.find(c);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

int Vocab::IdOrUnk(char32_t c) const {
  if (auto id = Find(c)) return *id;
  if (unk_id_) return *unk_id_;
  throw UserError("character " + DescribeCodePoint(c) + " is not in the vocabulary of " + std::to_string(size()) +
                  " characters, which has no <unk>: rebuild the vocabulary from this text or with min_freq > 1");
}

char32_t Vocab::CharAt(int id) const { return chars_.at(static_cast<std::size_t>(id)); }

std::string Vocab::TokenText(int id) const {
  const char32_t c = CharAt(id);
  if (unk_id_ && id == *unk_id_) return std::string(kUnkToken);
  return EncodeUtf8(c);
}

std::vector<int> Vocab::Encode(std::u32string_view text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  for (char32_t c : text) ids.push_back(IdOrUnk(c));
  return ids;
}

std::u32string Vocab::Decode(IdView ids) const {
  std::u32string text;
  text.reserve(ids.size());
  for (int id : ids) text.push_back(CharAt(id));
  return text;
}

nlohmann::json Vocab::ToJson() const {
  nlohmann::json tokens = nlohmann::json::array();
  for (int id = 0; id < size(); ++id) tokens.push_back(TokenText(id));
  return nlohmann::json{{"tokens", std::move(tokens)}, {"counts", counts_}};
}

Vocab Vocab::FromJson(const nlohmann::json& j) {
  const std::string fix = ": rebuild the vocabulary with charlm";
  if (!j.is_object()) throw UserError("vocabulary JSON is not an object with \"tokens\" and \"counts\"" + fix);
  const auto tokens = j.find("tokens");
  const auto counts = j.find("counts");
  if (tokens == j.end() || !tokens->is_array()) throw UserError("vocabulary JSON has no \"tokens\" array" + fix);
  if (counts == j.end() || !counts->is_array()) throw UserError("vocabulary JSON has no \"counts\" array" + fix);
  if (tokens->empty()) throw UserError("vocabulary JSON has an empty \"tokens\" array" + fix);
  if (counts->size() != tokens->size()) {
    throw UserError("vocabulary JSON has " + std::to_string(tokens->size()) + " tokens but " +
                    std::to_string(counts->size()) + " counts" + fix);
  }
  if (tokens->size() > static_cast<std::size_t>(0x110000)) {
    throw UserError("vocabulary JSON has more tokens than there are Unicode code points" + fix);
  }

  Vocab vocab;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const auto& token = (*tokens)[i];
    const auto& count = (*counts)[i];
    const std::string where = "vocabulary JSON token " + std::to_string(i);
    if (!token.is_string()) throw UserError(where + " is not a string" + fix);
    if (!count.is_number_integer() || count.get<std::int64_t>() < 0) {
      throw UserError(where + " has count " + count.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                      ", expected a non-negative integer" + fix);
    }
    const std::int64_t frequency = count.get<std::int64_t>();
    const auto& text = token.get_ref<const std::string&>();
    if (text == kUnkToken) {
      if (vocab.unk_id_) throw UserError(where + " is a second \"<unk>\"" + fix);
      vocab.AddUnk(frequency);
      continue;
    }
    const std::u32string decoded = DecodeUtf8(text, where, LeadingBom::kKeep);
    if (decoded.size() != 1) {
      throw UserError(where + " holds " + std::to_string(decoded.size()) +
                      " characters, expected exactly one or \"<unk>\"" + fix);
    }
    if (vocab.Find(decoded[0])) {
      throw UserError(where + " repeats character " + DescribeCodePoint(decoded[0]) + fix);
    }
    vocab.AddToken(decoded[0], frequency);
  }
  return vocab;
}

void Vocab::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw UserError("cannot write vocabulary file '" + path + "': check that its folder exists and is writable");
  out << ToJson().dump(1, ' ', false) << '\n';
  out.flush();
  if (!out) throw UserError("error while writing vocabulary file '" + path + "': check the free disk space");
}

Vocab Vocab::Load(const std::string& path) {
  const std::string bytes =
      ReadRegularFile(path, FileRole{"vocabulary file", "check the path", kMaxVocabFileBytes,
                                     "a vocabulary file lists at most 1,114,112 characters; rebuild it with charlm"});
  nlohmann::json j;
  try {
    j = ParseJsonWithDepthLimit(bytes, path);
  } catch (const nlohmann::json::exception&) {
    throw UserError("vocabulary file '" + path + "' is not valid JSON: rebuild it with charlm");
  }
  try {
    return FromJson(j);
  } catch (const UserError& e) {
    throw UserError("'" + path + "': " + e.what());
  }
}

bool Vocab::operator==(const Vocab& other) const {
  return chars_ == other.chars_ && counts_ == other.counts_ && unk_id_ == other.unk_id_;
}

std::string SuggestedPrefix(const Vocab& vocab, const std::vector<std::string>& preferred) {
  for (const std::string& prefix : preferred) {
    const std::u32string chars = DecodeUtf8(prefix, "generate.prefixes");
    const auto known = [&](char32_t c) { return vocab.Find(c).has_value(); };
    if (!chars.empty() && std::all_of(chars.begin(), chars.end(), known)) return prefix;
  }
  // Ids run from the most frequent character down.
  for (int id = 0; id < vocab.size(); ++id) {
    if (vocab.unk_id() == id) continue;
    const char32_t c = vocab.CharAt(id);
    if (c != U' ' && c != U'\n' && c != U'\r' && c != U'\t' && c != U'\u3000') return EncodeUtf8(c);
  }
  return {};  // nothing but whitespace and <unk>
}

}  // namespace charlm
