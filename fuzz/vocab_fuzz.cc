// libFuzzer target: Vocab::FromJson is safe on any JSON value, and an accepted vocabulary survives ToJson/FromJson.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "util/errors.h"
#include "text/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The loader's contract starts at parsed JSON; text that is not JSON is not its concern.
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  charlm::Vocab vocab;
  try {
    vocab = charlm::Vocab::FromJson(j);
  } catch (const charlm::UserError&) {
    return 0;
  }
  const nlohmann::json written = vocab.ToJson();
  const charlm::Vocab reread = charlm::Vocab::FromJson(written);
  if (!(reread == vocab) || reread.ToJson() != written) std::abort();
  for (int id = 0; id < vocab.size(); ++id) {
    if (id == vocab.unk_id()) continue;
    if (vocab.Find(vocab.CharAt(id)) != id) std::abort();  // ids and characters must map both ways
  }
  return 0;
}
