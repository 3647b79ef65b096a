// Nearest-name suggestions for mistyped keys, options and commands, and the message for a value that is not a number.
#include "util/suggest.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "util/utf8.h"

namespace charlm {
namespace {

// "--prefix" and "-p" compare as "prefix" and "p": the dashes are not part of what was mistyped.
std::string_view WithoutDashes(std::string_view option) {
  const std::size_t first = option.find_first_not_of('-');
  return first == std::string_view::npos ? std::string_view() : option.substr(first);
}

}  // namespace

std::optional<std::string> NearestName(std::string_view typed, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& candidate : candidates) {
    const std::size_t distance = EditDistance(typed, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  const std::size_t tolerance = std::max<std::size_t>(2, typed.size() / 3);
  if (best == nullptr || best_distance > tolerance || best_distance >= typed.size()) return std::nullopt;
  return *best;
}

std::optional<std::string> OptionWord(std::string_view word) {
  if (!word.starts_with('-') || word == "-" || word == "--") return std::nullopt;
  return std::string(word.substr(0, word.find('=')));
}

std::string UnknownOptionMessage(std::string_view command, std::string_view typed, const std::vector<std::string>& options) {
  std::vector<std::string> bare;
  for (const std::string& option : options) bare.emplace_back(WithoutDashes(option));
  const std::optional<std::string> nearest = NearestName(WithoutDashes(typed), bare);
  std::string suggestion;
  if (nearest) {
    const auto at = std::find(bare.begin(), bare.end(), *nearest);
    suggestion = ": did you mean " + options[static_cast<std::size_t>(at - bare.begin())] + "?";
  }
  const std::string shown = EscapeControlChars(std::string(typed));
  return std::string(command) + " has no option " + shown + suggestion + " (charlm " + std::string(command) +
         " --help lists its options)";
}

std::string UnknownCommandMessage(std::string_view typed, const std::vector<std::string>& commands) {
  const std::optional<std::string> nearest = NearestName(typed, commands);
  return EscapeControlChars(std::string(typed)) + " is not a command" + (nearest ? ": did you mean " + *nearest + "?" : "") +
         " (charlm --help lists the commands)";
}

std::string BadNumberMessage(std::string_view command, std::string_view option, std::string_view value, NumberKind kind,
                             std::string_view meaning, std::string_view example) {
  const bool integer = kind == NumberKind::kInteger;
  // Digits alone (a sign allowed) are a whole number: refused, it can only be too large for the option.
  std::string_view digits = value;
  if (digits.starts_with('-') || digits.starts_with('+')) digits.remove_prefix(1);
  const bool whole = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
  const std::string shown = EscapeControlChars(value);
  const std::string problem = integer && whole ? " is out of range" : integer ? " is not a whole number" : " is not a number";
  const std::string takes = integer ? "an integer" : "a number";
  const std::string described = meaning.empty() ? "" : " (" + std::string(meaning) + ")";
  const std::string shown_example = !example.empty() ? std::string(example) : integer ? "1" : "0.5";
  return std::string(option) + " " + (shown.empty() ? "\"\"" : shown) + problem + ": " + std::string(command) + " " +
         std::string(option) + " takes " + takes + described + "; e.g. " + std::string(option) + " " + shown_example;
}

}  // namespace charlm
