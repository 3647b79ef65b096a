// The `vocab` command: corpus statistics and the character table.
#include <memory>

#include "cli/commands.h"
#include "text/vocab_report.h"
#include "text/corpus.h"

#include <iostream>

namespace charlm {

void RegisterVocab(CommandRegistry& registry) {
  registry.Add("vocab", "Print corpus length, vocabulary size and most frequent characters", [](CommandBuilder& command) {
    auto options = std::make_shared<VocabReportOptions>();
    auto newline = std::make_shared<std::string>("keep");
    command.Text("--corpus", options->corpus, "UTF-8 text file", {.required = true, .kind = OptionKind::kFile});
    command.Text("--newline", *newline, "what line breaks become",
                 {.show_default = true, .choices = EnumNamesList<NewlinePolicy>()});
    command.Integer("--max-chars", options->max_chars, "keep only the first N characters (0 = all)", {.show_default = true});
    command.Integer("--top", options->top, "how many of the most frequent characters to list", {.show_default = true});
    command.Run([options, newline](CommandContext& context) {
      options->newline = ParseNewlinePolicy(*newline, "--newline");
      PrintVocabReport(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
