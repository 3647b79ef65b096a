// libFuzzer target: the checkpoint parser is safe on arbitrary bytes, and what it accepts re-serializes identically.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "checkpoint.h"
#include "errors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  charlm::CheckpointData parsed;
  try {
    parsed = charlm::ParseCheckpointBytes(bytes, "fuzz.ckpt");
  } catch (const charlm::UserError&) {
    return 0;
  }
  // Sections may come in any order in an accepted file and JSON may be spelled differently, so compare after one
  // normalizing pass: serializing the parsed data and parsing it again must be a fixed point.
  const std::string written = charlm::SerializeCheckpoint(parsed);
  const charlm::CheckpointData reparsed = charlm::ParseCheckpointBytes(written, "fuzz.ckpt (re-serialized)");
  if (charlm::SerializeCheckpoint(reparsed) != written) std::abort();
  return 0;
}
