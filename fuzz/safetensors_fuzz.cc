// libFuzzer target: the safetensors parser and the import on top of it are safe on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "util/errors.h"
#include "interop/interop.h"
#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    charlm::ImportSafetensors(bytes, "fuzz.safetensors", std::nullopt, std::nullopt);
  } catch (const charlm::UserError&) {
  }
  return 0;
}
