// `charlm help [COMMAND]`, the hidden `charlm write-docs`, and the list of every command's registration.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <ostream>

#include "cli/commands.h"
#include "cli/docs_writer.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "report/report.h"
#include "util/suggest.h"

namespace charlm {

void RegisterHelp(CommandRegistry& registry) {
  registry.Add("help", "Print the commands, or one command's options", [](CommandBuilder& command) {
    auto topic = std::make_shared<std::vector<std::string>>();
    command.Positionals("COMMAND", *topic, "the command whose options to print");
    command.Run([topic](CommandContext& context) {
      const CLI::App& app = *context.app;
      const auto visible = [](const CLI::App* c) { return !c->get_group().empty(); };
      if (topic->size() > 1) throw UserError("help takes one command: e.g. charlm help train");
      std::vector<std::string> names;
      // CLI11's help() of the main application prints the chosen subcommand's (this one's), so the list of
      // commands is written here.
      std::string listing = "Usage: charlm COMMAND [OPTIONS]\n\nCommands:\n";
      for (const CLI::App* sub : app.get_subcommands(visible)) {
        if (!topic->empty() && sub->get_name() == topic->front()) {
          *context.out << sub->help(app.get_name());
          return 0;
        }
        names.push_back(sub->get_name());
        std::string name = sub->get_name();
        name.resize(std::max<std::size_t>(name.size() + 2, 12), ' ');
        listing += "  " + name + sub->get_description() + "\n";
      }
      if (!topic->empty()) throw UserError(UnknownCommandMessage(topic->front(), names));
      *context.out << listing << "\ncharlm help COMMAND (or charlm COMMAND --help) prints a command's options; "
                                "man charlm-COMMAND once installed.\n";
      return 0;
    });
  });
}

void RegisterWriteDocs(CommandRegistry& registry) {
  // The registry is complete once every command is registered; the docs are written from it when this runs.
  registry.Add(
      "write-docs", "Write the man pages, the bash completion and docs/cli.md (the build runs this)",
      [&registry](CommandBuilder& command) {
        struct Targets {
          std::string man_dir, completion, markdown;
        };
        auto targets = std::make_shared<Targets>();
        command.Text("--man-dir", targets->man_dir, "folder for charlm.1 and charlm-COMMAND.1", {.kind = OptionKind::kFolder});
        command.Text("--completion", targets->completion, "bash completion script to write", {.kind = OptionKind::kFile});
        command.Text("--markdown", targets->markdown, "Markdown reference to write", {.kind = OptionKind::kFile});
        command.Run([targets, &registry](CommandContext&) {
          const std::vector<const CommandSpec*> commands = registry.Visible();
          if (!targets->man_dir.empty()) {
            std::filesystem::create_directories(targets->man_dir);
            const std::filesystem::path dir(targets->man_dir);
            WriteFileAtomically((dir / "charlm.1").string(), MainManPage(commands), "man page");
            for (const CommandSpec* spec : commands) {
              WriteFileAtomically((dir / ("charlm-" + spec->name + ".1")).string(), CommandManPage(*spec), "man page");
            }
          }
          if (!targets->completion.empty()) WriteFileAtomically(targets->completion, BashCompletion(commands), "bash completion");
          if (!targets->markdown.empty()) WriteFileAtomically(targets->markdown, CliMarkdown(commands), "Markdown page");
          return 0;
        });
      },
      /*hidden=*/true);
}

void RegisterAllCommands(CommandRegistry& registry) {
  RegisterVocab(registry);
  RegisterTrain(registry);
  RegisterGenerate(registry);
  RegisterEval(registry);
  RegisterBaseline(registry);
  RegisterScore(registry);
  RegisterSummary(registry);
  RegisterExport(registry);
  RegisterImport(registry);
  RegisterReport(registry);
  RegisterBench(registry);
  RegisterDynamicGrid(registry);
  RegisterHelp(registry);
  RegisterWriteDocs(registry);
}

}  // namespace charlm
