// Parsing JSON from outside (configs, --set values, checkpoint sections) with its nesting depth limited.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace charlm {

// charlm's own JSON is at most 3 levels deep (train.optimizer.lr); this leaves room for anything hand-written.
inline constexpr int kMaxJsonDepth = 64;

// nlohmann::json::parse, refusing arrays and objects nested more than kMaxJsonDepth deep while parsing, before the
// value exists: nlohmann's parser and destructor do not recurse, but dump(), comparison and charlm's readers do,
// and a value 100,000 levels deep would overflow the stack there. Too deep is a UserError naming `source`;
// malformed JSON throws nlohmann's own exceptions, for the caller to word.
nlohmann::json ParseJsonWithDepthLimit(std::string_view text, std::string_view source);

}  // namespace charlm
