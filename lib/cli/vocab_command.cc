// The `vocab` command: corpus statistics and the character table.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "text/corpus.h"
#include "text/vocab_report.h"

namespace charlm {
namespace {

struct VocabCommand {
  std::string corpus;
  std::string newline = "keep";
  std::int64_t max_chars = 0;
  std::vector<std::string> include, exclude, overrides;
  VocabReportOptions report;
};

// The data section the options give, read and checked as a config's (so --set data.KEY works as in train).
DataConfig DataOf(const VocabCommand& command) {
  nlohmann::json j;
  j["data"]["corpus"] = command.corpus;
  j["data"]["newline"] = std::string(EnumName(ParseNewlinePolicy(command.newline, "--newline")));
  j["data"]["max_chars"] = command.max_chars;
  if (!command.include.empty()) j["data"]["include"] = command.include;
  if (!command.exclude.empty()) j["data"]["exclude"] = command.exclude;
  for (const std::string& assignment : command.overrides) ApplyOverride(j, assignment);
  Config config = ConfigFromJson(j, command.overrides);
  ValidateConfig(config);
  return config.data;
}

}  // namespace

void RegisterVocab(CommandRegistry& registry) {
  registry.Add("vocab", "Print corpus length, vocabulary size, documents and most frequent characters",
               [](CommandBuilder& command) {
    auto options = std::make_shared<VocabCommand>();
    command.Text("--corpus", options->corpus,
                 "UTF-8 text file, folder, compressed file or archive (data.corpus)",
                 {.required = true, .kind = OptionKind::kFile, .config_key = "data.corpus"});
    command.Text("--newline", options->newline, "what line breaks become",
                 {.show_default = true, .choices = EnumNamesList<NewlinePolicy>(), .config_key = "data.newline"});
    command.Integer("--max-chars", options->max_chars, "keep only the first N characters (0 = all)", {.show_default = true});
    command.Texts("--include", options->include,
                  "read only the documents of folders and archives matching this glob, e.g. '*.c' (repeatable; data.include)");
    command.Texts("--exclude", options->exclude,
                  "leave out the documents of folders and archives matching this glob (repeatable; data.exclude)");
    command.ConfigSettings(options->overrides, "set a data key: --set data.separator='' (repeatable)");
    command.Integer("--top", options->report.top, "how many of the most frequent characters to list", {.show_default = true});
    command.Flag("--json", options->report.json,
                 "print one JSON object: characters, vocabulary, documents, skipped, bytes, top, first_chars, first_ids");
    command.Run([options](CommandContext& context) {
      options->report.data = DataOf(*options);
      PrintVocabReport(options->report, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
