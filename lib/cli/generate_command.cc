// The `generate` command: its options and the sampling it runs (prefixes, --json, --interactive).
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>
#include <utility>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "generate/generate_session.h"
#include "model/restore.h"
#include "ops/blas.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/shell_quote.h"
#include "util/utf8.h"

namespace charlm {

std::string ReadPrefixFile(const std::string& path) {
  const FileRole role{"prefix file", "check the path", kMaxPrefixFileBytes,
                      "an RNN's state depends mostly on the end of its prefix: give the last part of the text"};
  const std::string shown = path == "-" ? "standard input" : path;
  return path == "-" ? ReadStreamLimited(STDIN_FILENO, shown, role) : ReadRegularFile(path, role);
}

// --interactive reads prefixes from standard input. A folder there fails every read, which an istream takes for the
// end of its input: the session would end at once and exit 0 as if it had been given nothing.
void CheckSessionInput() {
  struct stat info {};
  if (::fstat(STDIN_FILENO, &info) == 0 && S_ISDIR(info.st_mode)) {
    throw UserError("--interactive reads prefixes from standard input, which is a directory: give it a file, a pipe "
                    "or a terminal, e.g. charlm generate --checkpoint CKPT --interactive < prefixes.txt");
  }
}

int RunGenerate(const GenerateCommand& command, const GenerateIo& io) {
  const UnknownPolicy unknown = ParseUnknownPolicy(command.unknown);
  const bool stdin_file = std::find(command.prefix_files.begin(), command.prefix_files.end(), "-") != command.prefix_files.end();
  if (stdin_file && command.interactive) {
    throw UserError("--prefix-file - and --interactive both read standard input: give the prefix file by its path");
  }
  // Range checks reuse the config's, so the CLI and the config accept exactly the same values.
  RestoredModel restored = RestoreModel(command.checkpoint);
  SetPrecision(command.precision, restored.model);
  // Without a prefix of its own, generate continues the checkpoint's generate.prefixes, as it takes every other
  // option left out from the checkpoint's generate section (and as the training run sampled them).
  const bool no_prefix = command.prefixes.empty() && command.prefix_files.empty() && !command.interactive;
  Config config = restored.config;
  if (command.length) config.generate.length = NarrowIntOption("length", *command.length, OptionStyle::kCommandLine);
  if (command.temperature) config.generate.temperature = *command.temperature;
  if (command.top_k) config.generate.top_k = NarrowIntOption("top-k", *command.top_k, OptionStyle::kCommandLine);
  if (command.top_p) config.generate.top_p = *command.top_p;
  if (command.greedy && command.sample) {
    throw UserError("--greedy and --sample contradict each other: pass --greedy for the argmax or --sample to draw");
  }
  if (command.greedy) config.generate.greedy = true;
  if (command.sample) config.generate.greedy = false;
  const std::uint64_t seed = command.seed.empty() ? 0 : ParseSeed(command.seed, "--seed");
  if (!command.prefixes.empty()) config.generate.prefixes = command.prefixes;
  try {
    ValidateConfig(config);
  } catch (const UserError& e) {
    // The config's message names the key; say which option set it.
    const std::string message = e.what();
    for (const auto& [key, option] : {std::pair{"generate.length", "--length"}, {"generate.temperature", "--temperature"},
                                      {"generate.top_k", "--top-k"}, {"generate.top_p", "--top-p"},
                                      {"generate.prefixes", "--prefix"}}) {
      if (message.find(key) != std::string::npos) throw UserError(message + " (given as " + option + ")");
    }
    throw;
  }
  GenerateSettings settings;
  settings.seed = seed;
  SamplingOptions& options = settings.options;
  options = SamplingFromConfig(config.generate);
  if (command.beam) options.beam = NarrowIntOption("beam", *command.beam, OptionStyle::kCommandLine);
  if (command.length_penalty) options.length_penalty = *command.length_penalty;
  if (command.repetition_penalty) options.repetition_penalty = *command.repetition_penalty;
  if (command.repetition_window) {
    options.repetition_window = NarrowIntOption("repetition-window", *command.repetition_window, OptionStyle::kCommandLine);
  }
  if (command.no_repeat_ngram) {
    options.no_repeat_ngram = NarrowIntOption("no-repeat-ngram", *command.no_repeat_ngram, OptionStyle::kCommandLine);
  }
  for (const std::string& stop : command.stop) options.stop.push_back(ParseStopString(stop, OptionStyle::kCommandLine));
  CheckSamplingOptions(options, OptionStyle::kCommandLine);

  const bool sampling_options = command.temperature || command.top_k || command.top_p || !command.seed.empty();
  if (options.beam > 0 && (sampling_options || command.sample || command.greedy)) {
    spdlog::warn("beam search is deterministic and ignores --temperature/--top-k/--top-p/--seed/--sample/--greedy "
                 "(--beam 1 is greedy decoding)");
  } else if (command.greedy && sampling_options) {
    // --greedy takes the most likely character at every step: the options that shape a draw have nothing to shape.
    spdlog::warn("--greedy decodes the most likely character at every step and ignores "
                 "--temperature/--top-k/--top-p/--seed; leave --greedy out to sample with them");
  } else if (config.generate.greedy && !command.greedy && sampling_options) {
    spdlog::warn("the checkpoint's config decodes greedily (generate.greedy = true), which ignores "
                 "--temperature/--top-k/--top-p/--seed; add --sample to draw from the softmax");
  }
  for (const std::u32string& stop : options.stop) {
    if (StopIds(restored.vocab, {stop}).empty()) {
      spdlog::warn("--stop \"{}\" has a character the model never writes (outside its vocabulary), so it never stops "
                   "generation", EscapeControlChars(EncodeUtf8(stop)));
    }
  }
  std::vector<std::string> prefixes = command.prefixes;
  for (const std::string& path : command.prefix_files) prefixes.push_back(ReadPrefixFile(path));
  if (no_prefix && restored.config.generate.prefixes.empty()) {
    // As char-rnn samples without primetext: from the start of a line (--prefix ''), rather than an error whose
    // example prefix would be a guess (a walkthrough was told "--prefix e" by a model trained on "Such new").
    prefixes = {""};
    spdlog::info("no --prefix given and the checkpoint names no generate.prefixes: sampling from the start of a line "
                 "(--prefix ''); give --prefix TEXT to continue a text");
  } else if (no_prefix) {
    prefixes = restored.config.generate.prefixes;
    std::string shown;
    for (const std::string& prefix : prefixes) shown += (shown.empty() ? "\"" : ", \"") + EscapeControlChars(prefix) + "\"";
    spdlog::info("no --prefix given: continuing the checkpoint's generate.prefixes, {}", shown);
  }

  SetBlasThreads(config.train.threads);  // generation splits its batch-1 products over as many threads as training
  const AnswerSetup setup{restored.model, restored.vocab, config.data.newline, unknown, command.json};
  for (const std::string& prefix : prefixes) {
    // The prefix's ids and state are small beside what --length holds, which is estimated up front.
    const AllocationScope scope("the generation of --length " + std::to_string(options.length) + " characters" +
                                    (options.beam > 0 ? " with --beam " + std::to_string(options.beam) : "") +
                                    (command.json ? " as JSON" : "") + " from a prefix of " +
                                    std::to_string(prefix.size()) + " bytes",
                                "give a smaller --length", GenerationBytes(options.length, options.beam, command.json));
    AnswerPrefix(setup, prefix, settings, io.out);
    ++settings.seed;
  }
  if (!command.interactive) return 0;
  return RunSession(setup, settings, io.in, io.out, io.err, io.prompt) == 0 ? 0 : 1;
}

void RunGenerate(const GenerateCommand& command, std::ostream& out) {
  std::istringstream no_input;
  std::ostringstream no_messages;
  RunGenerate(command, GenerateIo{no_input, out, no_messages, false});
}

void RegisterGenerate(CommandRegistry& registry) {
  registry.Add("generate", "Generate text from a checkpoint, starting from prefixes", [](CommandBuilder& command) {
    auto options = std::make_shared<GenerateCommand>();
    command.Text("--checkpoint", options->checkpoint, "checkpoint file (last.ckpt or best.ckpt)",
                 {.required = true, .kind = OptionKind::kFile});
    command.Texts("--prefix", options->prefixes,
                  "text to start from (repeatable; '' samples from the start of a line, and the output begins with "
                  "that line break); options left out, this one included, take the checkpoint's generate.* values");
    command.Texts("--prefix-file", options->prefix_files,
                  "a file whose whole content is one prefix; - reads standard input (repeatable)", {.kind = OptionKind::kFile});
    command.Flag("--interactive", options->interactive, "then read prefixes and :set commands from standard input, one per line");
    command.Flag("--json", options->json, "one JSON object per prefix: text, log_prob, log_probs, options, seed");
    // Whole-number options are read wide, so a value past int is refused with its range (NarrowIntOption).
    command.Integer("--beam", options->beam, "beam search with N beams (0 = none)");
    command.Number("--length-penalty", options->length_penalty, "beam: rank by log-probability / length^this, 0 to 10 (default 1)");
    command.Number("--repetition-penalty", options->repetition_penalty, "divide the logits of recent characters by this (1 = off)");
    command.Integer("--repetition-window", options->repetition_window, "characters the repetition penalty looks back (default 32)");
    command.Integer("--no-repeat-ngram", options->no_repeat_ngram, "never repeat a sequence of this many characters (0 = off)");
    command.Texts("--stop", options->stop, "stop when the continuation ends with this; \\n is a newline (repeatable)");
    command.Integer("--length", options->length, "characters to generate");
    command.Number("--temperature", options->temperature, "softmax temperature");
    command.Integer("--top-k", options->top_k, "sample among this many most likely characters (0 = all)");
    command.Number("--top-p", options->top_p, "sample within this probability mass");
    command.Flag("--greedy", options->greedy, "always take the most likely character (the book's choice)");
    command.Flag("--sample", options->sample, "draw from the softmax even if the checkpoint's config says greedy");
    command.Text("--seed", options->seed, "random seed, 0 to 2^64-1 (default 0); the same seed gives the same text");
    command.Text("--unknown", options->unknown, "prefix characters outside the vocabulary",
                 {.show_default = true, .choices = {"error", "skip"}});
    command.Text("--precision", options->precision, "matrix products",
                 {.show_default = true, .choices = EnumNamesList<Precision>()});
    command.Run([options](CommandContext& context) {
      LogToStderr();
      if (options->interactive) CheckSessionInput();
      return RunGenerate(*options, GenerateIo{*context.in, *context.out, std::cerr, isatty(STDIN_FILENO) != 0});
    });
  });
}

}  // namespace charlm
