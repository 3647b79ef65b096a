// libFuzzer target: the checkpoint parser, and what reads its sections (config, vocabulary, trainer state, the
// model's sizes), are safe on arbitrary bytes; what the parser accepts re-serializes identically. Most mutations
// recompute the CRC, so they reach everything behind the CRC check instead of stopping at it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "format/checkpoint.h"
#include "model/restore.h"
#include "config/config.h"
#include "util/errors.h"
#include "model/model.h"
#include "run/run_state.h"
#include "text/dataset.h"
#include "text/vocab.h"

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// The file ends with the CRC-32 of everything before it (docs/checkpoint-format.md): mutate the rest, then write
// the CRC the mutated bytes need. One mutation in eight leaves the CRC alone, so the check itself stays fuzzed.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  if (size < 4 || max_size < 8 || seed % 8 == 0) return LLVMFuzzerMutate(data, size, max_size);
  const std::size_t body = LLVMFuzzerMutate(data, size - 4, max_size - 4);
  const std::uint32_t crc = charlm::Crc32(std::string_view(reinterpret_cast<const char*>(data), body));
  for (int i = 0; i < 4; ++i) data[body + i] = static_cast<std::uint8_t>((crc >> (8 * i)) & 0xFFU);
  return body + 4;
}

namespace {

// What `generate`, `eval` and `train --resume` do with a parsed checkpoint before trusting it (lib/text/dataset.cc
// RestoreModel, lib/model/restore.cc): each step either accepts or throws UserError, never crashes.
void ReadSections(const charlm::CheckpointData& parsed) {
  try {
    charlm::Config config = charlm::ConfigFromJson(parsed.config);
    charlm::ValidateConfig(config);
    const charlm::Vocab vocab = charlm::Vocab::FromJson(parsed.vocab);
    const charlm::ModelSpec spec = charlm::MakeModelSpec(config.model, vocab.size());
    if (static_cast<double>(parsed.params.size()) == charlm::ParameterCount(spec)) {
      charlm::CharModel<float> model(spec);  // bounded by the parameters actually in the file
      model.params() = parsed.params;
    }
  } catch (const charlm::UserError&) {
  }
  try {
    (void)charlm::Progress::FromJson(parsed.trainer_state, "fuzz.ckpt");
  } catch (const charlm::UserError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  charlm::CheckpointData parsed;
  try {
    parsed = charlm::ParseCheckpointBytes(bytes, "fuzz.ckpt");
  } catch (const charlm::UserError&) {
    return 0;
  }
  ReadSections(parsed);
  // Sections may come in any order in an accepted file and JSON may be spelled differently, so compare after one
  // normalizing pass: serializing the parsed data and parsing it again must be a fixed point.
  const std::string written = charlm::SerializeCheckpoint(parsed);
  const charlm::CheckpointData reparsed = charlm::ParseCheckpointBytes(written, "fuzz.ckpt (re-serialized)");
  if (charlm::SerializeCheckpoint(reparsed) != written) std::abort();
  return 0;
}
