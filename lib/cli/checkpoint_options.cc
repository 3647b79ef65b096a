// What generate, eval and score share: --unknown, --precision, and the note on skipped characters.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>

#include "cli/commands.h"
#include "ops/bf16_gemm.h"
#include "generate/generate.h"
#include "text/corpus.h"
#include "util/errors.h"

namespace charlm {

UnknownPolicy ParseUnknownPolicy(const std::string& text) {
  if (text == "error") return UnknownPolicy::kError;
  if (text == "skip") return UnknownPolicy::kSkip;
  throw UserError("--unknown \"" + text + "\" is not a policy: use --unknown error or --unknown skip");
}

// --precision's value for eval and generate; bf16 is checked against this build and CPU before it is used.
void SetPrecision(const std::string& text, CharModel<float>& model) {
  const std::optional<Precision> precision = ParseEnum<Precision>(text);
  if (!precision) {
    throw UserError("--precision " + text + " is not one of " + EnumChoices<Precision>() + ": leave --precision out for fp32 (the default), or give one of them");
  }
  RequirePrecision(*precision, "--precision", "leave --precision out (fp32 is the default)");
  model.set_precision(*precision);
}

// What --unknown skip left out of a text file (EncodeText says it for a prefix): never silent, as the figures
// cover only the rest.
void WarnSkippedText(const TextIds& text, const std::string& path) {
  const auto kept = static_cast<std::int64_t>(text.ids.size());
  if (kept >= text.chars) return;
  spdlog::warn("--unknown skip: left out {} of the {} characters of {}, which are outside the model's vocabulary "
               "(the figures below cover the other {}): {}", text.chars - kept, text.chars, path, kept,
               ListUnknownChars(text.missing));
}

}  // namespace charlm
