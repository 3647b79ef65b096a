// Export of a checkpoint to safetensors under PyTorch's names, and import of such a file as a fresh checkpoint.
#include "interop/interop.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "util/shell_quote.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "format/safetensors.h"
#include "format/output_guard.h"
#include "interop/torch_layout.h"
#include "model/optimizer.h"
#include "run/run_state.h"
#include "model/restore.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// The JSON text of a metadata entry, or nullopt when the file has no such entry.
std::optional<nlohmann::json> MetadataJson(const SafetensorsView& file, std::string_view key, std::string_view source) {
  const auto it = file.metadata.find(std::string(key));
  if (it == file.metadata.end()) return std::nullopt;
  nlohmann::json parsed = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    throw UserError(std::string(source) + ": __metadata__ \"" + std::string(key) +
                    "\" is not valid JSON: pass --" + std::string(key) + " FILE to give it instead");
  }
  return parsed;
}

Config ConfigFromMetadata(const SafetensorsView& file, std::string_view source) {
  const std::optional<nlohmann::json> j = MetadataJson(file, kMetadataConfigKey, source);
  if (!j) {
    throw UserError(std::string(source) + ": __metadata__ has no \"config\" (a file saved by PyTorch has none): pass "
                    "--config model.json, a charlm config whose model section describes the saved model");
  }
  try {
    Config config = ConfigFromJson(*j);
    ValidateConfig(config);
    return config;
  } catch (const UserError& e) {
    throw UserError(std::string(source) + ": the config in __metadata__ is invalid (" + e.what() +
                    "): pass --config model.json to give a valid one");
  }
}

Vocab VocabFromMetadata(const SafetensorsView& file, std::string_view source) {
  const std::optional<nlohmann::json> j = MetadataJson(file, kMetadataVocabKey, source);
  if (!j) {
    throw UserError(std::string(source) + ": __metadata__ has no \"vocab\" (a file saved by PyTorch has none): pass "
                    "--vocab vocab.json, the vocabulary the model was trained with ({\"tokens\": [...], \"counts\": [...]})");
  }
  try {
    return Vocab::FromJson(*j);
  } catch (const UserError& e) {
    throw UserError(std::string(source) + ": the vocabulary in __metadata__ is invalid (" + e.what() +
                    "): pass --vocab vocab.json to give a valid one");
  }
}

}  // namespace

std::string ExportSafetensors(const Config& config, const Vocab& vocab, const CharModel<float>& model) {
  CheckTorchCompatible(model.spec());
  const std::map<std::string, std::string> metadata = {
      {std::string(kMetadataFormatKey), "pt"},
      {std::string(kMetadataConfigKey), ConfigToJson(config).dump()},
      {std::string(kMetadataVocabKey), vocab.ToJson().dump()},
  };
  return SerializeSafetensors(ToTorchStateDict(model), metadata);
}

CheckpointData ImportSafetensors(std::string_view bytes, std::string_view source, const std::optional<Config>& config,
                                 const std::optional<Vocab>& vocab) {
  const SafetensorsView file = ParseSafetensors(bytes, source);
  const Config resolved = config ? *config : ConfigFromMetadata(file, source);
  const Vocab resolved_vocab = vocab ? *vocab : VocabFromMetadata(file, source);
  const ModelSpec spec = MakeModelSpec(resolved.model, resolved_vocab.size());
  CheckTorchStateDict(file, source, spec);  // before the model is allocated: its size is then bounded by the file's
  CharModel<float> model(spec);
  FromTorchStateDict(file, source, model);

  CheckpointData checkpoint;
  checkpoint.config = ConfigToJson(resolved);
  checkpoint.vocab = resolved_vocab.ToJson();
  checkpoint.trainer_state = ImportedTrainerState(source);
  checkpoint.params = model.params();
  checkpoint.optimizer_state = Optimizer(resolved.train.optimizer, model.params().size()).state();
  return checkpoint;
}

void RunExport(const ExportCommand& command, std::ostream& out) {
  // A run's checkpoint brings its run's corpus along as a file not to replace.
  std::vector<CommandInput> inputs{{command.checkpoint, "--checkpoint input"}};
  for (const std::string& corpus : RunCorpusPaths(std::filesystem::path(command.checkpoint).parent_path().empty()
                                                      ? std::filesystem::path(".")
                                                      : std::filesystem::path(command.checkpoint).parent_path())) {
    inputs.push_back({corpus, "input (the corpus of " + command.checkpoint + "'s run)"});
  }
  CheckOutputPath(command.out, "--out", inputs, OutputKind::kSafetensors, command.force);
  const RestoredModel restored = RestoreModel(command.checkpoint);
  const std::string bytes = ExportSafetensors(restored.config, restored.vocab, restored.model);
  WriteFileAtomically(command.out, bytes, "safetensors file");
  out << "wrote " << command.out << ": " << TorchStateDictSpec(restored.model.spec()).size() << " tensors, "
      << restored.model.params().size() << " parameters (" << DescribeModel(restored.model.spec())
      << ") under PyTorch's state_dict names; docs/interop.md shows how to load it\n";
}

void RunImport(const ImportCommand& command, std::ostream& out) {
  CheckOutputPath(command.out, "--out",
                  {{command.safetensors, "--safetensors input"}, {command.vocab, "--vocab input"},
                   {command.config, "--config input"}},
                  OutputKind::kCheckpoint, command.force);
  std::optional<Config> config;
  if (!command.config.empty()) config = LoadConfigFile(command.config);
  std::optional<Vocab> vocab;
  if (!command.vocab.empty()) vocab = Vocab::Load(command.vocab);
  const std::string bytes = ReadSafetensorsFile(command.safetensors);
  const CheckpointData checkpoint = ImportSafetensors(bytes, command.safetensors, config, vocab);
  SaveCheckpoint(command.out, checkpoint);
  const Config saved = ConfigFromJson(checkpoint.config);
  // Fine-tuning writes beside the checkpoint (ResolveTrainConfig), which is the current folder for a bare name.
  std::error_code ec;
  const fs::path folder = fs::weakly_canonical(fs::absolute(fs::path(command.out)).parent_path(), ec);
  out << "wrote " << command.out << ": " << checkpoint.params.size() << " parameters ("
      << DescribeModel(MakeModelSpec(saved.model, Vocab::FromJson(checkpoint.vocab).size()))
      << ") from " << command.safetensors << ", with no training state (epoch 0, zero optimizer moments); "
      << "use it with generate and eval, or fine-tune it on " << saved.data.corpus.Label()
      << " (a new run from these weights) with: charlm train --resume " << ShellQuote(command.out)
      << " --set train.epochs=N --set train.out_dir=DIR (without train.out_dir the run writes into " << folder.string()
      << ", the checkpoint's folder)\n";
}

}  // namespace charlm
