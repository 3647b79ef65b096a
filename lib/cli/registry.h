// The command line's one definition: every command with its options (name, kind, default, choices, help), from
// which parsing, --help, the man pages, the bash completion and docs/cli.md are all made.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace charlm {

// What an option's value is: decides how it is parsed, shown and completed.
enum class OptionKind { kFlag, kInteger, kNumber, kText, kFile, kFolder, kChoice, kConfigSetting };

struct OptionSpec {
  std::string name;  // "--length"; a positional argument's name has no dashes ("run_dirs")
  OptionKind kind = OptionKind::kText;
  std::string value_name;  // "INT", "FILE", "KEY=VALUE", as --help shows it; empty for a flag
  std::string help;
  std::string default_text;          // as shown in the help and the man page; empty = none shown
  std::vector<std::string> choices;  // kChoice: every accepted spelling
  bool required = false;
  bool repeatable = false;
  bool positional = false;
};

// What a command's run function may use besides its own options: the process's arguments (mpirun rewrites them),
// its streams, and the parsed command line (for `help`).
struct CommandContext {
  int* argc = nullptr;
  char*** argv = nullptr;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  const CLI::App* app = nullptr;
};

struct CommandSpec {
  std::string name;
  std::string summary;  // one line: the command list, the man page's NAME
  std::vector<OptionSpec> options;
  bool hidden = false;  // build-time helpers: parsed, but in no list, page or completion
  std::vector<std::function<void()>> checks;  // run after parsing, before `run`: each throws a UserError to refuse
  std::function<int(CommandContext&)> run;
};

// How an option is declared beyond its name, target and help.
struct OptionTraits {
  bool required = false;
  bool show_default = false;  // print the target's initial value as the default
  OptionKind kind = OptionKind::kText;  // for text options: kFile, kFolder or kConfigSetting
  std::vector<std::string> choices = {};
  // The config key this option sets ("data.corpus" for --corpus): giving it and `--set KEY=…` both is refused,
  // as a key given twice to --set is.
  std::string config_key = {};
};

// Declares one command's options: each call adds the option to the parser (bound to `target`) and to the spec.
// Options whose target is a std::optional are set only when given, so "left out" stays distinguishable.
class CommandBuilder {
 public:
  CommandBuilder(CLI::App& command, CommandSpec& spec) : command_(command), spec_(spec) {}


  void Text(const std::string& name, std::string& target, const std::string& help, OptionTraits traits = {});
  void Texts(const std::string& name, std::vector<std::string>& target, const std::string& help, OptionTraits traits = {});
  void Positionals(const std::string& name, std::vector<std::string>& target, const std::string& help,
                   OptionTraits traits = {});
  void Integer(const std::string& name, int& target, const std::string& help, OptionTraits traits = {});
  void Integer(const std::string& name, std::int64_t& target, const std::string& help, OptionTraits traits = {});
  void Integer(const std::string& name, std::optional<std::int64_t>& target, const std::string& help);
  void Number(const std::string& name, double& target, const std::string& help, OptionTraits traits = {});
  void Number(const std::string& name, std::optional<double>& target, const std::string& help);
  void Flag(const std::string& name, bool& target, const std::string& help);
  void Flag(const std::string& name, std::function<void()> when_given, const std::string& help);
  // --set KEY=VALUE, repeatable: a config key (completion offers the keys and their enumerations' values).
  void ConfigSettings(std::vector<std::string>& target, const std::string& help);

  // What the command does once its options are parsed; returns the exit code.
  void Run(std::function<int(CommandContext&)> run);

 private:
  OptionSpec& Add(const std::string& name, OptionKind kind, const std::string& value_name, const std::string& help,
                  const OptionTraits& traits);
  template <typename T>
  void Value(const std::string& name, OptionKind kind, const std::string& value_name, T& target, const std::string& help,
             const OptionTraits& traits);

  CLI::App& command_;
  CommandSpec& spec_;
};

// Every command of charlm, registered into a CLI11 application.
class CommandRegistry {
 public:
  explicit CommandRegistry(CLI::App& app) : app_(app) {}
  // A new command; `declare` declares its options and its run function.
  void Add(const std::string& name, const std::string& summary, const std::function<void(CommandBuilder&)>& declare,
           bool hidden = false);
  const std::vector<std::unique_ptr<CommandSpec>>& commands() const { return commands_; }
  // The visible commands, in registration order.
  std::vector<const CommandSpec*> Visible() const;
  // The command the parsed command line chose, or null.
  const CommandSpec* Chosen() const;

 private:
  CLI::App& app_;
  std::vector<std::unique_ptr<CommandSpec>> commands_;
};

// Registers every command of charlm, in the order of `charlm --help` (lib/cli/*_command.cc each hold one).
void RegisterAllCommands(CommandRegistry& registry);

}  // namespace charlm
