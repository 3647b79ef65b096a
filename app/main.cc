// The charlm executable: parses the command line, sets up logging and calls into the library.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <iostream>

#include "errors.h"

int main(int argc, char** argv) {
  CLI::App app{"charlm: train, sample and evaluate character-level RNN/GRU/LSTM language models"};
  app.require_subcommand(1);
  // Each subcommand registers its options here and sets `run` to the library call it makes.
  std::function<int()> run;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const charlm::UserError& e) {
    std::fprintf(stderr, "charlm: error: %s\n", e.what());
    return 1;
  }
}
