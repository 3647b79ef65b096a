// The `summary` command: the model's layers and parameter counts.
#include "cli/commands.h"
#include "cli/command_line.h"
#include "cli/registry.h"
#include "model/restore.h"
#include "util/shell_quote.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ops/bf16_gemm.h"
#include "ops/blas.h"
#include "ops/column_threads.h"
#include "format/checkpoint.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "eval/evaluate.h"
#include "util/file_io.h"
#include "generate/generate_session.h"
#include "model/ngram.h"
#include "util/rng.h"
#include "eval/score.h"
#include "model/summary.h"
#include "util/utf8.h"

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
