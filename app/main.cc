// The charlm executable: parses the command line, sets up logging and calls into the library.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <iostream>

#include "corpus.h"
#include "errors.h"
#include "vocab_report.h"

int main(int argc, char** argv) {
  CLI::App app{"charlm: train, sample and evaluate character-level RNN/GRU/LSTM language models"};
  app.require_subcommand(1);
  // Each subcommand registers its options here and sets `run` to the library call it makes.
  std::function<int()> run;

  // vocab: corpus statistics and the character table (lib/vocab_report.h).
  charlm::VocabReportOptions vocab_options;
  std::string vocab_newline = "keep";
  auto* vocab_command = app.add_subcommand("vocab", "Print corpus length, vocabulary size and most frequent characters");
  vocab_command->add_option("--corpus", vocab_options.corpus, "UTF-8 text file")->required();
  vocab_command->add_option("--newline", vocab_newline, "keep | space | drop")->capture_default_str();
  vocab_command->add_option("--max-chars", vocab_options.max_chars, "keep only the first N characters (0 = all)")
      ->capture_default_str();
  vocab_command->add_option("--top", vocab_options.top, "how many of the most frequent characters to list")
      ->capture_default_str();
  vocab_command->callback([&] {
    run = [&] {
      vocab_options.newline = charlm::ParseNewlinePolicy(vocab_newline, "--newline");
      charlm::PrintVocabReport(vocab_options, std::cout);
      return 0;
    };
  });

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
