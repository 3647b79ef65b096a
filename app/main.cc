// The charlm executable: builds the command line from the registry in lib/cli/ and runs the chosen command.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "cli/command_line.h"
#include "cli/registry.h"
#include "ops/blas.h"
#include "parallel/workers.h"

int main(int argc, char** argv) {
  charlm::PrepareRuntimeEnvironment(argv);  // before anything else: it may re-execute the program
  CLI::App app{"charlm: train, sample and evaluate character-level RNN/GRU/LSTM language models"};
  app.set_version_flag("--version", "charlm " CHARLM_VERSION "\n" + charlm::MpiDescription() +
                                        "\nOpenBLAS: " + charlm::BlasCoreDescription());
  app.require_subcommand(1);
  charlm::CommandRegistry registry(app);
  charlm::RegisterAllCommands(registry);
  if (const std::optional<int> exit_code = charlm::ParseCommandLine(app, argc, argv)) return *exit_code;
  charlm::CommandContext context{&argc, &argv, &std::cin, &std::cout, &app};
  return charlm::RunChosenCommand(registry, context);
}
