// Parsing JSON from outside (configs, --set values, checkpoint sections) with its nesting depth limited.
#pragma once

#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

namespace charlm {

// charlm's own JSON is at most 3 levels deep (train.optimizer.lr); this leaves room for anything hand-written.
inline constexpr int kMaxJsonDepth = 64;

// nlohmann::json::parse, refusing arrays and objects nested more than kMaxJsonDepth deep while parsing, before the
// value exists: nlohmann's parser and destructor do not recurse, but dump(), comparison and charlm's readers do,
// and a value 100,000 levels deep would overflow the stack there. Too deep is a UserError naming `source`;
// malformed JSON throws nlohmann's own exceptions, for the caller to word.
nlohmann::json ParseJsonWithDepthLimit(std::string_view text, std::string_view source);

// `value` as an Int when it is a JSON integer that Int holds exactly; nullopt for a fraction, a float spelling
// (1e3), another type, or an integer out of Int's range. Read numbers from outside with this, not get<Int>():
// nlohmann casts, so 1.7e308 read as an int is undefined behaviour and 4294967297 silently becomes 1.
template <std::integral Int>
std::optional<Int> ExactInteger(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (std::in_range<Int>(number)) return static_cast<Int>(number);
  } else if (value.is_number_integer()) {
    const auto number = value.get<std::int64_t>();
    if (std::in_range<Int>(number)) return static_cast<Int>(number);
  }
  return std::nullopt;
}

}  // namespace charlm
