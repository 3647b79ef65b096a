// MainManPage, CommandManPage, BashCompletion and CliMarkdown: the registry and the config keys, written out.
#include "cli/docs_writer.h"

#include <set>

#include "config/config.h"

namespace charlm {
namespace {

constexpr const char* kVersion = CHARLM_VERSION;

// Text safe in a roff line: backslashes escaped, hyphens as minus signs (options stay copyable), and a leading
// dot or quote (a roff request) guarded.
std::string Roff(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string Upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

std::string ManHeader(const std::string& page, const std::string& summary) {
  return ".TH " + Upper(page) + " 1 \"\" \"charlm " + kVersion + "\" \"charlm manual\"\n.nh\n.SH NAME\n" + Roff(page) +
         " \\- " + Roff(summary) + "\n";
}

// "--length INT", "--json", "RUN_DIR..."
std::string Usage(const OptionSpec& option) {
  if (option.positional) return option.required ? option.value_name + "..." : "[" + option.value_name + "...]";
  return option.name + (option.value_name.empty() ? "" : " " + option.value_name);
}

std::string OptionNotes(const OptionSpec& option) {
  std::string notes;
  if (option.required) notes += "required";
  if (option.repeatable && !option.positional && option.help.find("repeatable") == std::string::npos) notes += std::string(notes.empty() ? "" : "; ") + "repeatable";
  if (!option.default_text.empty()) notes += std::string(notes.empty() ? "" : "; ") + "default: " + option.default_text;
  return notes;
}

std::string Synopsis(const CommandSpec& command) {
  std::string line = "charlm " + command.name;
  for (const OptionSpec& option : command.options) {
    if (option.required && !option.positional) line += " " + Usage(option);
  }
  line += " [OPTIONS]";
  for (const OptionSpec& option : command.options) {
    if (option.positional) line += " " + Usage(option);
  }
  return line;
}

std::string ShellWords(const std::vector<std::string>& words) {
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : " ") + word;
  return joined;
}

}  // namespace

std::string MainManPage(const std::vector<const CommandSpec*>& commands) {
  std::string page = ManHeader("charlm", "train, sample and evaluate character-level RNN/GRU/LSTM language models");
  page += ".SH SYNOPSIS\n.B charlm\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n.br\n.B charlm\n\\-\\-help | \\-\\-version\n";
  page += ".SH DESCRIPTION\ncharlm trains character-level language models on the CPU from a UTF\\-8 text, prints "
          "perplexity and samples while it trains, generates text from a prefix and measures perplexity on held\\-out "
          "text. Each command has a page of its own, and \\fBcharlm help\\fR \\fICOMMAND\\fR prints its options.\n";
  page += ".SH COMMANDS\n";
  for (const CommandSpec* command : commands) {
    page += ".TP\n.B " + Roff(command->name) + "\n" + Roff(command->summary) + " (see \\fBcharlm\\-" + Roff(command->name) +
            "\\fR(1)).\n";
  }
  page += ".SH OPTIONS\n.TP\n.B \\-\\-help\nPrint the commands, or with a command its options.\n"
          ".TP\n.B \\-\\-version\nPrint the version, the MPI library and OpenBLAS's kernel table.\n";
  page += ".SH EXIT STATUS\n0 on success; 1 on an error (one line on stderr naming the value, what was expected and the "
          "fix); 2 for a command line that does not parse; 128+N after a stop by signal N (the run saved last.ckpt).\n";
  page += ".SH ENVIRONMENT\n.TP\n.B OPENBLAS_CORETYPE\nOpenBLAS's kernel table. When unset and OpenBLAS would fall back "
          "to generic kernels, charlm picks the best table the CPU allows.\n";
  page += ".SH SEE ALSO\n";
  std::string see;
  for (const CommandSpec* command : commands) see += (see.empty() ? "" : ",\n") + ("\\fBcharlm\\-" + Roff(command->name) + "\\fR(1)");
  return page + see + "\n";
}

std::string CommandManPage(const CommandSpec& command) {
  std::string page = ManHeader("charlm-" + command.name, command.summary);
  page += ".SH SYNOPSIS\n" + Roff(Synopsis(command)) + "\n";
  page += ".SH DESCRIPTION\n" + Roff(command.summary) + ".\n";
  page += ".SH OPTIONS\n";
  for (const OptionSpec& option : command.options) {
    page += ".TP\n.B " + Roff(Usage(option)) + "\n" + Roff(option.help);
    const std::string notes = OptionNotes(option);
    page += (notes.empty() ? "" : " (" + Roff(notes) + ")") + std::string("\n");
  }
  page += ".TP\n.B \\-\\-help\nPrint these options.\n";
  if (command.name == "train") {
    page += ".SH CONFIG KEYS\nA config is a JSON file of sections; \\fB\\-\\-set\\fR \\fIKEY=VALUE\\fR overrides one key. "
            "Every key but data.corpus is optional.\n";
    for (const ConfigKeyDoc& key : ConfigKeyDocs()) {
      std::string type = key.type, meaning = key.meaning;
      std::erase(type, '`');
      std::erase(meaning, '`');  // Markdown code marks, which roff would print
      page += ".TP\n.B " + Roff(key.key) + "\n" + Roff(type) +
              (key.default_json.empty() ? "" : "; default " + Roff(key.default_json)) + ". " + Roff(meaning) +
              (key.resumable ? " (may change on \\-\\-resume)" : "") + "\n";
    }
  }
  return page + ".SH SEE ALSO\n\\fBcharlm\\fR(1)\n";
}

std::string BashCompletion(const std::vector<const CommandSpec*>& commands) {
  std::vector<std::string> names;
  for (const CommandSpec* command : commands) names.push_back(command->name);
  std::vector<std::string> keys, path_keys;
  std::string key_values;
  for (const ConfigKeyDoc& key : ConfigKeyDocs()) {
    keys.push_back(key.key + "=");
    if (key.is_path) path_keys.push_back(key.key);
    if (!key.choices.empty()) key_values += "    " + key.key + ") values='" + ShellWords(key.choices) + "' ;;\n";
  }
  std::string out =
      "# bash completion for charlm, generated from its command registry (charlm write-docs); do not edit.\n"
      "_charlm() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      "  # The word as typed, '=' included (bash splits words at '=' for completion).\n"
      "  local line=${COMP_LINE:0:COMP_POINT}\n"
      "  local word=${line##*[[:space:]]}\n"
      "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
      "    COMPREPLY=($(compgen -W '" + ShellWords(names) + " --help --version' -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  local command=${COMP_WORDS[1]} options='' files='' folders='' choices='' takes_value=''\n"
      "  case $command in\n";
  for (const CommandSpec* command : commands) {
    std::vector<std::string> options, files, folders, choice_cases, takes_value;
    for (const OptionSpec& option : command->options) {
      if (option.positional) continue;
      options.push_back(option.name);
      if (option.kind != OptionKind::kFlag) takes_value.push_back(option.name);
      if (option.kind == OptionKind::kFile) files.push_back(option.name);
      if (option.kind == OptionKind::kFolder) folders.push_back(option.name);
      if (!option.choices.empty()) choice_cases.push_back("      " + option.name + ") choices='" + ShellWords(option.choices) + "' ;;\n");
    }
    options.push_back("--help");
    out += "    " + command->name + ")\n      options='" + ShellWords(options) + "'\n      files=' " + ShellWords(files) +
           " '\n      folders=' " + ShellWords(folders) + " '\n      takes_value=' " + ShellWords(takes_value) + " '\n";
    if (!choice_cases.empty()) {
      out += "      case $prev in\n";
      for (const std::string& line : choice_cases) out += "  " + line;
      out += "      esac\n";
    }
    bool positional_folders = false;
    for (const OptionSpec& option : command->options) positional_folders |= option.positional && option.kind == OptionKind::kFolder;
    if (positional_folders) out += "      folders=\"$folders <positional> \"\n";
    out += "      ;;\n";
  }
  out += "  esac\n"
         "  # The word before the one being completed, as typed (COMP_WORDS splits KEY=VALUE in three).\n"
         "  local -a typed\n"
         "  read -ra typed <<< \"$line\"\n"
         "  local before=${typed[${#typed[@]}-2]}\n"
         "  if [[ $line == *[[:space:]] ]]; then before=${typed[${#typed[@]}-1]}; word=''; fi\n"
         "  if [ \"$before\" = --set ]; then\n"
         "    if [[ $word == *=* ]]; then\n"
         "      local key=${word%%=*} value=${word#*=} values=''\n"
         "      case $key in\n" + key_values +
         "      esac\n";
  for (const std::string& key : path_keys) {
    out += "      [ \"$key\" = " + key + " ] && { compopt -o filenames 2>/dev/null; local IFS=$'\\n'; COMPREPLY=($(compgen -f -- \"$value\")); return; }\n";
  }
  out += "      COMPREPLY=($(compgen -W \"$values\" -- \"$value\"))\n"
         "    else\n"
         "      compopt -o nospace 2>/dev/null\n"
         "      COMPREPLY=($(compgen -W '" + ShellWords(keys) + "' -- \"$word\"))\n"
         "    fi\n"
         "    return\n"
         "  fi\n"
         "  if [ -n \"$choices\" ]; then COMPREPLY=($(compgen -W \"$choices\" -- \"$cur\")); return; fi\n"
         "  # Paths as paths: a folder gets its '/', a name with a space stays one word.\n"
         "  if [[ $files == *\" $prev \"* ]]; then compopt -o filenames 2>/dev/null; local IFS=$'\\n'; COMPREPLY=($(compgen -f -- \"$cur\")); return; fi\n"
         "  if [[ $folders == *\" $prev \"* ]]; then compopt -o filenames 2>/dev/null; local IFS=$'\\n'; COMPREPLY=($(compgen -d -- \"$cur\")); return; fi\n"
         "  # Another option's value (a prefix, a seed, a number): nothing to offer.\n"
         "  if [[ $takes_value == *\" $prev \"* ]]; then COMPREPLY=(); return; fi\n"
         "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$options\" -- \"$cur\")); return; fi\n"
         "  if [ \"$command\" = help ]; then COMPREPLY=($(compgen -W '" + ShellWords(names) + "' -- \"$cur\")); return; fi\n"
         "  if [[ $folders == *\"<positional>\"* ]]; then compopt -o filenames 2>/dev/null; local IFS=$'\\n'; COMPREPLY=($(compgen -d -- \"$cur\")); return; fi\n"
         "  COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
         "}\n"
         "complete -F _charlm charlm\n";
  return out;
}

std::string CliMarkdown(const std::vector<const CommandSpec*>& commands) {
  std::string out =
      "# Command-line reference\n\n"
      "Generated from the command registry in `lib/cli/` (`charlm write-docs --markdown docs/cli.md`); a test fails "
      "when this page differs from what the binary generates. The same registry gives `charlm COMMAND --help`, the "
      "man pages `charlm(1)` and `charlm-COMMAND(1)` and the bash completion. The config keys that `--set` takes are "
      "in [config.md](config.md).\n\n";
  for (const CommandSpec* command : commands) {
    out += "## charlm " + command->name + "\n\n" + command->summary + ".\n\n```\n" + Synopsis(*command) +
           "\n```\n\n| option | meaning |\n|---|---|\n";
    for (const OptionSpec& option : command->options) {
      const std::string notes = OptionNotes(option);
      std::string help = option.help;
      for (std::size_t at = help.find('|'); at != std::string::npos; at = help.find('|', at + 2)) help.replace(at, 1, "\\|");
      out += "| `" + Usage(option) + "` | " + help + (notes.empty() ? "" : " (" + notes + ")") + " |\n";
    }
    out += "\n";
  }
  return out;
}

}  // namespace charlm
