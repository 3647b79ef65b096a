// Parsing JSON from outside with its nesting depth limited, so that nothing downstream recurses without bound.
#include "util/json_parse.h"

#include <string>

#include "util/errors.h"

namespace charlm {
namespace {

// Thrown from the parser callback to stop at the first level too deep; never escapes this file.
struct TooDeep {};

}  // namespace

nlohmann::json ParseJsonWithDepthLimit(std::string_view text, std::string_view source) {
  using nlohmann::json;
  // depth counts the arrays and objects already open around the one starting.
  const json::parser_callback_t limit = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit);
  } catch (const TooDeep&) {
    throw UserError(std::string(source) + ": JSON nested more than " + std::to_string(kMaxJsonDepth) +
                    " levels deep (arrays or objects inside each other): charlm's files need at most 3; check that "
                    "this is the right file and remove the extra brackets");
  }
}

}  // namespace charlm
