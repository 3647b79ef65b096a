// CommandBuilder and CommandRegistry: each option goes to CLI11 and to the spec in the same call.
#include "cli/registry.h"

#include <CLI/CLI.hpp>

#include <map>
#include <sstream>

#include "config/config.h"
#include "util/errors.h"
#include "util/utf8.h"

namespace charlm {
namespace {

template <typename T>
std::string Shown(const T& value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string JoinChoices(const std::vector<std::string>& choices) {
  std::string joined;
  for (const std::string& choice : choices) joined += (joined.empty() ? "" : " | ") + choice;
  return joined;
}

}  // namespace

OptionSpec& CommandBuilder::Add(const std::string& name, OptionKind kind, const std::string& value_name,
                                const std::string& help, const OptionTraits& traits) {
  OptionSpec option;
  option.name = name;
  option.kind = traits.choices.empty() ? kind : OptionKind::kChoice;
  option.value_name = value_name;
  option.help = help;
  option.choices = traits.choices;
  option.required = traits.required;
  spec_.options.push_back(std::move(option));
  return spec_.options.back();
}

void CommandBuilder::Text(const std::string& name, std::string& target, const std::string& help, OptionTraits traits) {
  const OptionKind kind = traits.kind;
  const std::string value_name = kind == OptionKind::kFile ? "FILE" : kind == OptionKind::kFolder ? "DIR" : "TEXT";
  // The help names the choices, so --help and the man page always list every accepted value.
  const std::string shown_help = traits.choices.empty() ? help : help + ": " + JoinChoices(traits.choices);
  OptionSpec& option = Add(name, kind, traits.choices.empty() ? value_name : "CHOICE", shown_help, traits);
  CLI::Option* cli = command_.add_option(name, target, shown_help);
  cli->type_name(option.value_name);
  if (traits.required) cli->required();
  if (traits.show_default) {
    cli->capture_default_str();
    option.default_text = target;
  }
  if (!traits.config_key.empty()) {
    spec_.checks.push_back([cli, name, key = traits.config_key, &command = command_] {
      const CLI::Option* settings = command.get_option_no_throw("--set");
      if (cli->count() == 0 || settings == nullptr) return;
      for (const std::string& assignment : settings->results()) {
        if (OverrideKey(assignment) != key) continue;
        throw UserError(name + " and --set " + EscapeControlChars(assignment) + " both set " + key +
                        ": give one of them");
      }
    });
  }
}

void CommandBuilder::Texts(const std::string& name, std::vector<std::string>& target, const std::string& help,
                           OptionTraits traits) {
  const std::string value_name = traits.kind == OptionKind::kFile ? "FILE" : "TEXT";
  OptionSpec& option = Add(name, traits.kind, value_name, help, traits);
  option.repeatable = true;
  CLI::Option* cli = command_.add_option(name, target, help);
  cli->type_name(value_name);
  if (traits.required) cli->required();
}

void CommandBuilder::Positionals(const std::string& name, std::vector<std::string>& target, const std::string& help,
                                 OptionTraits traits) {
  // A positional's name is its value name (RUN_DIR, COMMAND): CLI11's help and errors then say what the man page says.
  OptionSpec& option = Add(name, traits.kind, name, help, traits);
  option.repeatable = true;
  option.positional = true;
  CLI::Option* cli = command_.add_option(name, target, help);
  cli->type_name("");
  if (traits.required) cli->required();
}

template <typename T>
void CommandBuilder::Value(const std::string& name, OptionKind kind, const std::string& value_name, T& target,
                           const std::string& help, const OptionTraits& traits) {
  OptionSpec& option = Add(name, kind, value_name, help, traits);
  CLI::Option* cli = command_.add_option(name, target, help);
  if (traits.required) cli->required();
  if (traits.show_default) {
    cli->capture_default_str();
    option.default_text = Shown(target);
  }
}

void CommandBuilder::Integer(const std::string& name, int& target, const std::string& help, OptionTraits traits) {
  Value(name, OptionKind::kInteger, "INT", target, help, traits);
}

void CommandBuilder::Integer(const std::string& name, std::int64_t& target, const std::string& help, OptionTraits traits) {
  Value(name, OptionKind::kInteger, "INT", target, help, traits);
}

void CommandBuilder::Integer(const std::string& name, std::optional<std::int64_t>& target, const std::string& help) {
  Add(name, OptionKind::kInteger, "INT", help, {});
  command_.add_option_function<std::int64_t>(name, [&target](const std::int64_t& value) { target = value; }, help);
}

void CommandBuilder::Number(const std::string& name, double& target, const std::string& help, OptionTraits traits) {
  Value(name, OptionKind::kNumber, "FLOAT", target, help, traits);
}

void CommandBuilder::Number(const std::string& name, std::optional<double>& target, const std::string& help) {
  Add(name, OptionKind::kNumber, "FLOAT", help, {});
  command_.add_option_function<double>(name, [&target](const double& value) { target = value; }, help);
}

void CommandBuilder::Flag(const std::string& name, bool& target, const std::string& help) {
  Add(name, OptionKind::kFlag, "", help, {});
  command_.add_flag(name, target, help);
}

void CommandBuilder::Flag(const std::string& name, std::function<void()> when_given, const std::string& help) {
  Add(name, OptionKind::kFlag, "", help, {});
  command_.add_flag(name, [when_given = std::move(when_given)](std::int64_t) { when_given(); }, help);
}

void CommandBuilder::ConfigSettings(std::vector<std::string>& target, const std::string& help) {
  OptionSpec& option = Add("--set", OptionKind::kConfigSetting, "KEY=VALUE", help, {});
  option.repeatable = true;
  command_.add_option("--set", target, help)->type_name("KEY=VALUE");
  // A key given twice would silently keep the last value: a user who repeats one has lost track of which applies.
  spec_.checks.push_back([&target] {
    std::map<std::string, std::string> seen;  // key -> its first assignment
    for (const std::string& assignment : target) {
      const std::string key = OverrideKey(assignment);
      const auto [at, inserted] = seen.emplace(key, assignment);
      if (!inserted) {
        throw UserError("--set " + EscapeControlChars(key) + " is given twice (" + EscapeControlChars(at->second) +
                        " and " + EscapeControlChars(assignment) + "): give each key once");
      }
    }
  });
}

void CommandBuilder::Run(std::function<int(CommandContext&)> run) { spec_.run = std::move(run); }

void CommandRegistry::Add(const std::string& name, const std::string& summary,
                          const std::function<void(CommandBuilder&)>& declare, bool hidden) {
  auto spec = std::make_unique<CommandSpec>();
  spec->name = name;
  spec->summary = summary;
  spec->hidden = hidden;
  CLI::App* command = app_.add_subcommand(name, summary);
  if (hidden) command->group("");
  CommandBuilder builder(*command, *spec);
  declare(builder);
  commands_.push_back(std::move(spec));
}

std::vector<const CommandSpec*> CommandRegistry::Visible() const {
  std::vector<const CommandSpec*> visible;
  for (const auto& command : commands_) {
    if (!command->hidden) visible.push_back(command.get());
  }
  return visible;
}

const CommandSpec* CommandRegistry::Chosen() const {
  const std::vector<CLI::App*> parsed = app_.get_subcommands();
  if (parsed.empty()) return nullptr;
  for (const auto& command : commands_) {
    if (command->name == parsed.back()->get_name()) return command.get();
  }
  return nullptr;
}

}  // namespace charlm
