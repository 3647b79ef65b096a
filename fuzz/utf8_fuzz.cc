// libFuzzer target: strict UTF-8 decoding never crashes, and whatever it accepts re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "util/errors.h"
#include "util/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::u32string decoded;
  try {
    decoded = charlm::DecodeUtf8(bytes, "fuzz input");
  } catch (const charlm::UserError&) {
    return 0;  // rejecting malformed input is the decoder's job; anything else escaping is a finding
  }
  // A leading BOM is skipped on decode, so it cannot come back; everything after it must.
  const std::string_view expected = bytes.starts_with("\xEF\xBB\xBF") ? bytes.substr(3) : bytes;
  for (char32_t c : decoded) {
    if (!charlm::IsScalarValue(c)) std::abort();
  }
  if (charlm::EncodeUtf8(decoded) != expected) std::abort();
  // Kept BOMs are ordinary characters: decoding with kKeep must give back every byte.
  if (charlm::EncodeUtf8(charlm::DecodeUtf8(bytes, "fuzz input", charlm::LeadingBom::kKeep)) != bytes) std::abort();
  return 0;
}
