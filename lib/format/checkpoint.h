// The checkpoint file: a versioned, CRC-checked, endian-independent container, saved atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace charlm {

// Bumped whenever the layout changes; a reader refuses every other version rather than guessing.
inline constexpr std::uint32_t kCheckpointFormatVersion = 1;

// Everything needed to resume training or to sample: the model is rebuilt from config + vocab, then params poured in.
struct CheckpointData {
  nlohmann::json config;               // the resolved config
  nlohmann::json vocab;                // Vocab::ToJson()
  nlohmann::json trainer_state;        // epoch, batch index, best val perplexity, learning rate, ... (opaque here)
  std::vector<float> params;           // flat parameter buffer
  std::vector<float> optimizer_state;  // flat optimizer buffer (may be empty)
  std::vector<float> carried_state;    // hidden state carried between batches (may be empty)
};

// Writes the checkpoint with WriteFileAtomically (util/file_io.h), so a crash or a full disk leaves either the old
// file or the new one, never a mix, and a killed earlier save's temp file is removed. Failures throw UserError.
void SaveCheckpoint(const std::string& path, const CheckpointData& data);

// Reads and validates a checkpoint; every defect (missing, empty, foreign, other version, truncated, corrupted) is a
// one-line UserError naming the path.
CheckpointData LoadCheckpoint(const std::string& path);

// What the start-up checks of a run compare with it: a checkpoint's JSON sections, without the float sections
// (the parameters and optimizer state, nearly all of the file).
struct CheckpointMetadata {
  nlohmann::json config;
  nlohmann::json vocab;
  nlohmann::json trainer_state;
};

// LoadCheckpoint's config, vocab and trainer_state, and its errors, in the memory those sections take: the file is
// read in pieces, every declared length is checked against its size before anything is kept, and every byte
// (the float sections' too, a piece at a time) passes through the CRC before any section is parsed.
CheckpointMetadata LoadCheckpointMetadata(const std::string& path);

// LoadCheckpoint without the file: source_name prefixes the error messages. Safe on arbitrary bytes.
CheckpointData ParseCheckpointBytes(std::string_view bytes, std::string_view source_name);

// The exact bytes SaveCheckpoint writes; identical data gives identical bytes on every host.
std::string SerializeCheckpoint(const CheckpointData& data);

// Standard CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF).
std::uint32_t Crc32(std::string_view bytes);

// Failure injection for tests: while set, SaveCheckpoint writes at most this many bytes of the temp file and then
// fails as if the disk were full (ENOSPC). Not thread-safe; reset with std::nullopt.
void SetCheckpointWriteFailureForTesting(std::optional<std::size_t> fail_after_bytes);

}  // namespace charlm
