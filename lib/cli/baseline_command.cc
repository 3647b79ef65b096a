// The `baseline` command: the Kneser-Ney n-gram yardstick on a corpus's split.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/commands.h"
#include "model/ngram.h"
#include "text/dataset.h"
#include "util/errors.h"

namespace charlm {

void RunBaseline(const BaselineCommand& command, std::ostream& out) {
  nlohmann::json j = nlohmann::json::object();
  if (!command.config.empty()) j = ConfigToJson(LoadConfigFile(command.config, command.overrides));
  if (command.config.empty()) {
    for (const std::string& assignment : command.overrides) ApplyOverride(j, assignment);
  }
  if (!command.corpus.empty()) j["data"]["corpus"] = command.corpus;
  if (!command.include.empty()) j["data"]["include"] = command.include;
  if (!command.exclude.empty()) j["data"]["exclude"] = command.exclude;
  if (!j.contains("data") || !j["data"].contains("corpus")) {
    throw UserError("baseline needs --corpus FILE (or --config FILE naming data.corpus): e.g. charlm baseline --corpus "
                    "notes.txt");
  }
  Config config = ConfigFromJson(j, command.config.empty() ? command.overrides : std::vector<std::string>());
  ValidateConfig(config);
  const Dataset data = LoadDataset(config.data);
  if (data.Validation().size() < 2) {
    throw UserError("the validation split of " + config.data.corpus.Label() + " has " + std::to_string(data.Validation().size()) +
                    " characters (data.val_fraction is " + nlohmann::json(config.data.val_fraction).dump() +
                    "): nothing to score; set --set data.val_fraction=0.1 or use more text");
  }
  const AllocationScope scope("the Kneser-Ney model of --order " + std::to_string(command.order) + " on " +
                                  std::to_string(std::min<std::int64_t>(static_cast<std::int64_t>(data.Train().size()), kMaxNgramFitChars)) +
                                  " training characters of " + std::to_string(data.vocab.size()) + " distinct",
                              "lower --order, or split the text and give a part with --corpus",
                              NgramModelBytes(static_cast<std::int64_t>(data.Train().size()), data.vocab.size(), command.order));
  const Baseline baseline = FitBaseline(data.Train(), data.Validation(), data.vocab.size(), command.order);
  if (command.json) {
    out << BaselineJson(baseline).dump() << '\n';
  } else {
    out << config.data.corpus.Label() << ": " << FormatBaseline(baseline) << '\n';
  }
}

void RegisterBaseline(CommandRegistry& registry) {
  registry.Add("baseline", "Validation perplexity of a Kneser-Ney character n-gram fitted on the training split",
               [](CommandBuilder& command) {
    auto options = std::make_shared<BaselineCommand>();
    command.Text("--corpus", options->corpus, "UTF-8 text file, folder, compressed file or archive (data.corpus)",
                 {.kind = OptionKind::kFile, .config_key = "data.corpus"});
    command.Texts("--include", options->include,
                  "read only the documents of folders and archives matching this glob (repeatable; data.include)");
    command.Texts("--exclude", options->exclude,
                  "leave out the documents of folders and archives matching this glob (repeatable; data.exclude)");
    command.Integer("--order", options->order, "n-gram order, 1 (add-one unigram) to 10", {.show_default = true});
    command.Text("--config", options->config, "take the data settings (split, newline, ...) from this config",
                 {.kind = OptionKind::kFile});
    command.ConfigSettings(options->overrides, "override a config key: --set data.newline=space (repeatable)");
    command.Flag("--json", options->json, "print {\"order\", \"val_perplexity\", \"val_bpc\"}");
    command.Run([options](CommandContext& context) {
      RunBaseline(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
