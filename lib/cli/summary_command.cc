// The `summary` command: the model's layers and parameter counts.
#include <memory>
#include <ostream>

#include "cli/commands.h"
#include "model/restore.h"
#include "model/summary.h"
#include "text/dataset.h"

namespace charlm {

void RunSummary(const SummaryCommand& command, std::ostream& out) {
  const Config config = LoadConfigFile(command.config, command.overrides);
  const Dataset data = LoadDataset(config.data);
  out << ModelSummary(MakeModelSpec(config.model, data.vocab.size()), config.train.batch_size, config.train.num_steps);
}

void RegisterSummary(CommandRegistry& registry) {
  registry.Add("summary", "Print a Keras-like table of layers and parameter counts", [](CommandBuilder& command) {
    auto options = std::make_shared<SummaryCommand>();
    command.Text("--config", options->config, "JSON config file", {.required = true, .kind = OptionKind::kFile});
    command.ConfigSettings(options->overrides, "override a config key (repeatable)");
    command.Run([options](CommandContext& context) {
      RunSummary(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
