// What is generated from the command registry: man pages (roff), bash completion and docs/cli.md.
#pragma once

#include <string>
#include <vector>

#include "cli/registry.h"

namespace charlm {

// charlm(1): the commands and the global options.
std::string MainManPage(const std::vector<const CommandSpec*>& commands);
// charlm-COMMAND(1): the command's options; charlm-train(1) also has every config key.
std::string CommandManPage(const CommandSpec& command);
// A bash completion script: commands, options, --set keys and their enumerations' values, file arguments.
std::string BashCompletion(const std::vector<const CommandSpec*>& commands);
// docs/cli.md: every command and its options as Markdown.
std::string CliMarkdown(const std::vector<const CommandSpec*>& commands);

}  // namespace charlm
