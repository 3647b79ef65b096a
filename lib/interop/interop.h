// `charlm export` and `charlm import`: a checkpoint as a PyTorch-named safetensors file, and back (docs/interop.md).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "format/checkpoint.h"
#include "config/config.h"
#include "model/model.h"
#include "text/vocab.h"

namespace charlm {

// The __metadata__ keys charlm writes: "format" is "pt" (safetensors' tag for PyTorch tensors); "config" and "vocab"
// hold ConfigToJson and Vocab::ToJson as JSON text.
inline constexpr std::string_view kMetadataFormatKey = "format";
inline constexpr std::string_view kMetadataConfigKey = "config";
inline constexpr std::string_view kMetadataVocabKey = "vocab";

// The safetensors bytes of a model with its config and vocabulary (UserError for a GRU with reset_after false).
std::string ExportSafetensors(const Config& config, const Vocab& vocab, const CharModel<float>& model);

// A checkpoint from safetensors bytes. The config and the vocabulary come from the arguments when given, else from
// the file's metadata (a UserError names the missing one and the option that supplies it). The trainer state is that
// of a run before its first step, marked as imported from `source` (ImportedTrainerState), with zero optimizer
// moments, so `train --resume` fine-tunes from epoch 1 with the config's optimizer and corpus.
CheckpointData ImportSafetensors(std::string_view bytes, std::string_view source, const std::optional<Config>& config,
                                 const std::optional<Vocab>& vocab);

struct ExportCommand {
  std::string checkpoint;
  std::string out;
  bool force = false;  // replace an existing file that is not safetensors (never the input or a run's file)
};
void RunExport(const ExportCommand& command, std::ostream& out);

struct ImportCommand {
  std::string safetensors;
  std::string out;
  std::string vocab;   // optional: a vocabulary JSON file ({"tokens": [...], "counts": [...]})
  std::string config;  // optional: a charlm config file
  bool force = false;  // replace an existing file that is not a checkpoint (never an input or a run's file)
};
void RunImport(const ImportCommand& command, std::ostream& out);

}  // namespace charlm
