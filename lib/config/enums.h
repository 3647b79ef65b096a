// Enumerations shared by the config, the recurrent core and the trainer, with their config spellings.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/suggest.h"

namespace charlm {

enum class CellKind { kRnn, kGru, kLstm };
enum class Activation { kTanh, kRelu };
enum class InitScheme { kKeras, kPytorch, kD2l };
enum class NewlinePolicy { kKeep, kSpace, kDrop };
enum class SamplerKind { kRandom, kConsecutive };
enum class OptimizerKind { kSgd, kAdam, kRmsprop, kAdamw };
enum class LrScheduleKind { kNone, kStep, kExponential, kCosine };
// The matrix products' inputs: fp32, or bf16 with fp32 accumulation (everything else stays fp32 either way).
// fp32: OpenBLAS sgemm, today's bits. bf16: bf16 inputs, fp32 accumulation (oneDNN, avx512_bf16 or AMX).
// fp32_packed: fp32 throughout, the per-step recurrent products on w_h packed once per sequence by oneDNN
// (other bits than fp32's: another summation order).
enum class Precision { kFp32, kBf16, kFp32Packed };
// What runs the recurrent layers in training and evaluation: charlm's own kernels, or oneDNN's fused RNN primitive
// (LSTM, vanilla RNN and the reset_after GRU; docs/cells.md). Generation always runs charlm's.
enum class Engine { kCharlm, kOnednn };

// A document of a folder or an archive that is not UTF-8 text (a NUL byte, invalid UTF-8): left out and counted,
// or an error naming it.
enum class InvalidDocumentPolicy { kSkip, kError };

// The config spelling of every enumerator, in declaration order; the one table for parsing and printing.
template <typename E>
struct EnumNames;
template <>
struct EnumNames<CellKind> {
  static constexpr std::array<std::string_view, 3> kNames{"rnn", "gru", "lstm"};
};
template <>
struct EnumNames<Activation> {
  static constexpr std::array<std::string_view, 2> kNames{"tanh", "relu"};
};
template <>
struct EnumNames<InitScheme> {
  static constexpr std::array<std::string_view, 3> kNames{"keras", "pytorch", "d2l"};
};
template <>
struct EnumNames<NewlinePolicy> {
  static constexpr std::array<std::string_view, 3> kNames{"keep", "space", "drop"};
};
template <>
struct EnumNames<SamplerKind> {
  static constexpr std::array<std::string_view, 2> kNames{"random", "consecutive"};
};
template <>
struct EnumNames<OptimizerKind> {
  static constexpr std::array<std::string_view, 4> kNames{"sgd", "adam", "rmsprop", "adamw"};
};
template <>
struct EnumNames<LrScheduleKind> {
  static constexpr std::array<std::string_view, 4> kNames{"none", "step", "exponential", "cosine"};
};

template <>
struct EnumNames<Precision> {
  static constexpr std::array<std::string_view, 3> kNames{"fp32", "bf16", "fp32_packed"};
};
template <>
struct EnumNames<Engine> {
  static constexpr std::array<std::string_view, 2> kNames{"charlm", "onednn"};
};
template <>
struct EnumNames<InvalidDocumentPolicy> {
  static constexpr std::array<std::string_view, 2> kNames{"skip", "error"};
};

template <typename E>
constexpr std::string_view EnumName(E value) {
  return EnumNames<E>::kNames[static_cast<std::size_t>(value)];
}

template <typename E>
std::optional<E> ParseEnum(std::string_view text) {
  const auto& names = EnumNames<E>::kNames;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == text) return static_cast<E>(i);
  }
  return std::nullopt;
}

// "a" | "b" | "c", for error messages listing the accepted spellings.
template <typename E>
std::string EnumChoices() {
  std::string out;
  for (auto name : EnumNames<E>::kNames) {
    if (!out.empty()) out += " | ";
    out += "\"" + std::string(name) + "\"";
  }
  return out;
}

// ": did you mean \"lstm\"?" when `typed` is a typo of one of E's spellings, else "": one suggestion for a misspelt
// value wherever one is read (config keys, --newline). The spellings are lower case, and "LSTM" is further from
// "lstm" than a typo's edit distance, so the value is compared in lower case.
template <typename E>
std::string EnumSuggestion(std::string_view typed) {
  std::string lowered(typed);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::optional<std::string> nearest =
      NearestName(lowered, std::vector<std::string>(EnumNames<E>::kNames.begin(), EnumNames<E>::kNames.end()));
  return nearest ? ": did you mean \"" + *nearest + "\"?" : "";
}

// Every spelling, for option choices and completion.
template <typename E>
std::vector<std::string> EnumNamesList() {
  return {EnumNames<E>::kNames.begin(), EnumNames<E>::kNames.end()};
}

}  // namespace charlm
