// The `export` and `import` commands: a checkpoint's weights as safetensors under PyTorch's names, and back.
#include <memory>

#include "cli/commands.h"
#include "interop/interop.h"

namespace charlm {

void RegisterExport(CommandRegistry& registry) {
  registry.Add("export", "Write a checkpoint's weights as safetensors under PyTorch's state_dict names",
               [](CommandBuilder& command) {
    auto options = std::make_shared<ExportCommand>();
    command.Text("--checkpoint", options->checkpoint, "checkpoint file", {.required = true, .kind = OptionKind::kFile});
    command.Text("--out", options->out, "safetensors file to write, e.g. model.safetensors",
                 {.required = true, .kind = OptionKind::kFile});
    command.Flag("--force", options->force,
                 "replace an existing --out file that is not safetensors (never the input or a run's files)");
    command.Run([options](CommandContext& context) {
      RunExport(*options, *context.out);
      return 0;
    });
  });
}

void RegisterImport(CommandRegistry& registry) {
  registry.Add("import", "Build a checkpoint from a safetensors file with PyTorch's state_dict names",
               [](CommandBuilder& command) {
    auto options = std::make_shared<ImportCommand>();
    command.Text("--safetensors", options->safetensors, "safetensors file to read",
                 {.required = true, .kind = OptionKind::kFile});
    command.Text("--out", options->out, "checkpoint file to write, e.g. model.ckpt",
                 {.required = true, .kind = OptionKind::kFile});
    command.Text("--vocab", options->vocab, "vocabulary JSON, for a file whose metadata has none", {.kind = OptionKind::kFile});
    command.Text("--config", options->config, "charlm config, for a file whose metadata has none", {.kind = OptionKind::kFile});
    command.Flag("--force", options->force,
                 "replace an existing --out file that is not a checkpoint (never an input or a run's files)");
    command.Run([options](CommandContext& context) {
      RunImport(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
