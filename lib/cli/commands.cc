// Implements generate, eval and summary on top of the library, and resolves the config a training run uses.
#include "cli/commands.h"
#include "util/shell_quote.h"
#include "model/restore.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ops/bf16_gemm.h"
#include "ops/blas.h"
#include "ops/column_threads.h"
#include "format/checkpoint.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "eval/evaluate.h"
#include "util/file_io.h"
#include "generate/generate_session.h"
#include "model/ngram.h"
#include "util/rng.h"
#include "run/handlers.h"
#include "eval/score.h"
#include "model/summary.h"
#include "util/utf8.h"

namespace charlm {

Config ResolveTrainConfig(const std::string& config_path, const std::vector<std::string>& overrides,
                          const std::string& resume_path) {
  if (!config_path.empty()) return LoadConfigFile(config_path, overrides);
  if (resume_path.empty()) {
    throw UserError("train needs --config FILE (or --resume CKPT to continue a run): e.g. charlm train --config configs/default.json");
  }
  nlohmann::json j = LoadCheckpoint(resume_path).config;
  // A checkpoint copied to another folder continues there, beside itself, unless --set says otherwise: writing
  // into the folder it was saved from could overwrite whatever run lives there now.
  const bool out_dir_set = std::any_of(overrides.begin(), overrides.end(),
                                       [](const std::string& a) { return a.starts_with("train.out_dir="); });
  if (!out_dir_set && j.contains("train") && j["train"].is_object()) {
    const std::string folder = std::filesystem::path(resume_path).parent_path().string();
    const std::string here = folder.empty() ? "." : folder;
    j["train"]["out_dir"] = here;  // said by OutDirGuard once the folder is locked
  }
  for (const std::string& assignment : overrides) ApplyOverride(j, assignment);
  Config config = ConfigFromJson(j, overrides);
  ValidateConfig(config);
  return config;
}

UnknownPolicy ParseUnknownPolicy(const std::string& text) {
  if (text == "error") return UnknownPolicy::kError;
  if (text == "skip") return UnknownPolicy::kSkip;
  throw UserError("--unknown \"" + text + "\" is not a policy: use --unknown error or --unknown skip");
}


std::string ReadPrefixFile(const std::string& path) {
  const FileRole role{"prefix file", "check the path", kMaxPrefixFileBytes,
                      "an RNN's state depends mostly on the end of its prefix: give the last part of the text"};
  const std::string shown = path == "-" ? "standard input" : path;
  return path == "-" ? ReadStreamLimited(STDIN_FILENO, shown, role) : ReadRegularFile(path, role);
}

namespace {

// What --unknown skip left out of a text file (EncodeText says it for a prefix): never silent, as the figures
// cover only the rest.
void WarnSkippedText(const TextIds& text, const std::string& path) {
  const auto kept = static_cast<std::int64_t>(text.ids.size());
  if (kept >= text.chars) return;
  spdlog::warn("--unknown skip: left out {} of the {} characters of {}, which are outside the model's vocabulary "
               "(the figures below cover the other {}): {}", text.chars - kept, text.chars, path, kept,
               ListUnknownChars(text.missing));
}

// --precision's value for eval and generate; bf16 is checked against this build and CPU before it is used.
void SetPrecision(const std::string& text, CharModel<float>& model) {
  const std::optional<Precision> precision = ParseEnum<Precision>(text);
  if (!precision) {
    throw UserError("--precision " + text + " is not one of " + EnumChoices<Precision>() + ": leave --precision out for fp32 (the default), or give one of them");
  }
  RequirePrecision(*precision, "--precision", "leave --precision out (fp32 is the default)");
  model.set_precision(*precision);
}

}  // namespace

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
  if (no_prefix && restored.config.generate.prefixes.empty()) {
    // The example is text of this model's own vocabulary, whatever its language.
    throw UserError("generate needs a --prefix TEXT (or --prefix-file FILE, or --interactive): the checkpoint's config "
                    "has no generate.prefixes to continue; e.g. --prefix " +
                    ShellQuote(SuggestedPrefix(restored.vocab, restored.config.generate.prefixes)));
  }
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
  if (no_prefix) {
    prefixes = restored.config.generate.prefixes;
    std::string shown;
    for (const std::string& prefix : prefixes) shown += (shown.empty() ? "\"" : ", \"") + EscapeControlChars(prefix) + "\"";
    spdlog::info("no --prefix given: continuing the checkpoint's generate.prefixes, {}", shown);
  }

  SetBlasThreads(config.train.threads);  // generation splits its batch-1 products over as many threads as training
  const AnswerSetup setup{restored.model, restored.vocab, config.data.newline, unknown, command.json};
  for (const std::string& prefix : prefixes) {
    const AllocationScope scope("the generation from a prefix of " + std::to_string(prefix.size()) + " bytes",
                                "give a shorter prefix");
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

void RunScore(const ScoreCommand& command, std::ostream& out) {
  const UnknownPolicy unknown = ParseUnknownPolicy(command.unknown);
  if (command.text.empty() == !command.prefix_given) {
    throw UserError("score needs exactly one of --text FILE or --prefix TEXT");
  }
  if (static_cast<int>(command.json) + static_cast<int>(command.tsv) + static_cast<int>(command.colour) > 1) {
    throw UserError("--json, --tsv and --color each choose the output: give one of them");
  }
  RestoredModel restored = RestoreModel(command.checkpoint);
  const NewlinePolicy newline = restored.config.data.newline;
  std::vector<int> ids;
  std::string what;
  if (!command.text.empty()) {
    what = command.text;
    const TextIds text = ReadTextIds(command.text, newline, restored.vocab);
    CheckUnknownChars(text.missing, unknown, what);
    WarnSkippedText(text, command.text);
    ids = text.ids.view().ToVector();
  } else {
    what = "prefix \"" + EscapeControlChars(command.prefix) + "\"";
    ids = EncodeText(restored.vocab, ApplyNewlinePolicy(DecodeUtf8(command.prefix, "--prefix"), newline), unknown, what);
  }
  if (ids.size() < 2) {
    throw UserError(what + " has " + std::to_string(ids.size()) +
                    " known character(s): the first is context only, so nothing is scored; give at least 2");
  }
  SetBlasThreads(restored.config.train.threads);
  const TextScore score = ScoreIds(restored.model, ids);
  if (command.json) {
    out << FormatScoreJson(score, restored.vocab);
  } else if (command.tsv) {
    out << FormatScoreTsv(score, restored.vocab);
  } else if (command.colour) {
    out << FormatScoreColour(score, restored.vocab) << FormatScoreSummary(score, what);
  } else {
    out << FormatScoreSummary(score, what);
  }
  CheckOutputWritten(out);
}

namespace {

// On a terminal, eval redraws one line of stderr with its progress: a 10 MB text takes minutes. Nothing otherwise.
std::function<bool(std::int64_t, std::int64_t)> EvalProgressLine(const std::string& what) {
  if (::isatty(STDERR_FILENO) == 0) return {};
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  auto last_drawn = std::make_shared<Clock::time_point>(started - std::chrono::seconds(1));
  return [what, started, last_drawn](std::int64_t done, std::int64_t total) {
    const Clock::time_point now = Clock::now();
    if (done < total && now - *last_drawn < std::chrono::milliseconds(250)) return true;
    *last_drawn = now;
    if (done >= total) {
      std::fputs("\r\033[K", stderr);  // the result line replaces it
      return true;
    }
    const double elapsed = std::chrono::duration<double>(now - started).count();
    const double eta = done > 0 ? elapsed * static_cast<double>(total - done) / static_cast<double>(done) : 0.0;
    std::fprintf(stderr, "\revaluating %s: %.1f%% (%lld of %lld characters), ETA %s\033[K", what.c_str(),
                 100.0 * static_cast<double>(done) / static_cast<double>(std::max<std::int64_t>(total, 1)),
                 static_cast<long long>(done), static_cast<long long>(total), FormatDuration(eta).c_str());
    std::fflush(stderr);
    return true;
  };
}

}  // namespace

void RunEval(const EvalCommand& command, std::ostream& out) {
  const UnknownPolicy unknown = ParseUnknownPolicy(command.unknown);
  if (command.text.empty() == command.split.empty()) {
    throw UserError("eval needs exactly one of --text FILE or --split val|test");
  }
  if (command.streams && *command.streams < 1) {
    throw UserError("--streams " + std::to_string(*command.streams) + " is below 1: give 1 (one stream) or more");
  }
  // Each stream holds num_steps steps of activations: past a few thousand they cost memory and gain no speed.
  if (command.streams && *command.streams > kMaxEvalStreams) {
    throw UserError("--streams " + std::to_string(*command.streams) + " is above " + std::to_string(kMaxEvalStreams) +
                    ": give 1 to " + std::to_string(kMaxEvalStreams) + " (more gain no speed and need more memory)");
  }
  if (command.burn_in && *command.burn_in < 0) {
    throw UserError("--burn-in " + std::to_string(*command.burn_in) + " is negative: give 0 or more characters");
  }
  if (command.burn_in && *command.burn_in > std::numeric_limits<int>::max()) {
    throw UserError("--burn-in " + std::to_string(*command.burn_in) + " is out of range: expected an integer from 0 to " +
                    std::to_string(std::numeric_limits<int>::max()) + " (characters)");
  }
  if (command.threads && (*command.threads < 0 || *command.threads > kMaxEvalThreads)) {
    throw UserError("--threads " + std::to_string(*command.threads) + " is out of range: give 1 to " +
                    std::to_string(kMaxEvalThreads) + ", or 0 for all cores");
  }
  RestoredModel restored = RestoreModel(command.checkpoint);
  SetPrecision(command.precision, restored.model);
  const Config& config = restored.config;
  TextIds text;  // for --text: its ids, never the text
  Dataset data;  // for --split: its ids are scored in place
  IdView ids;
  std::string what;
  if (!command.text.empty()) {
    text = ReadTextIds(command.text, config.data.newline, restored.vocab);
    CheckUnknownChars(text.missing, unknown, command.text);
    ids = text.ids.view();
    what = command.text;
    WarnSkippedText(text, command.text);
  } else {
    if (command.split != "val" && command.split != "test") {
      throw UserError("--split \"" + command.split + "\" is not a split: use --split val or --split test");
    }
    data = LoadDataset(config.data);
    if (!(data.vocab == restored.vocab)) {
      throw UserError(config.data.corpus + " no longer gives the vocabulary the checkpoint was trained with: "
                      "evaluate the changed text with --text FILE instead");
    }
    const auto part = command.split == "val" ? data.Validation() : data.Test();
    if (part.size() < 2) {
      throw UserError("the checkpoint's corpus has no " + std::string(command.split == "val" ? "validation" : "test") +
                      " split (data." + (command.split == "val" ? "val_fraction" : "test_fraction") +
                      " is " + nlohmann::json(command.split == "val" ? config.data.val_fraction : config.data.test_fraction).dump() +
                      "): evaluate a file with --text FILE, or train with that fraction above 0");
    }
    ids = part;
    what = config.data.corpus + " (" + command.split + " split)";
  }
  if (ids.size() < 2) throw UserError(what + " has fewer than 2 known characters: nothing to predict; give a longer text");
  EvalOptions options;
  options.streams = static_cast<int>(command.streams.value_or(std::min(config.train.batch_size, kMaxEvalStreams)));
  options.num_steps = config.train.num_steps;
  if (command.burn_in) options.burn_in = static_cast<int>(*command.burn_in);
  options.progress = EvalProgressLine(what);
  // --threads, else the threads training used (train.threads; 0 = all cores), for OpenBLAS, oneDNN, and the cell
  // kernels and softmax, which before ran on one thread whatever the setting. As a training run sets them.
  SetBlasThreads(static_cast<int>(command.threads.value_or(restored.config.train.threads)));
  ColumnThreads row_threads(BlasThreads(), ColumnThreads::IdleWait::kYield);
  options.row_threads = &row_threads;
  const EvalResult r = Evaluate(restored.model, ids, options);
  if (command.json) {
    out << nlohmann::json{{"perplexity", r.perplexity}, {"bits_per_char", r.bits_per_char}, {"tokens", r.tokens},
                          {"rescored_streams", r.rerun_streams}, {"rescored_chars", r.rerun_chars}}.dump()
        << '\n';
  } else {
    char line[256];
    std::snprintf(line, sizeof line, "%s: perplexity %.4f, %.4f bits per character, %lld characters predicted\n",
                  what.c_str(), r.perplexity, r.bits_per_char, static_cast<long long>(r.tokens));
    out << line;
  }
}

void RunBaseline(const BaselineCommand& command, std::ostream& out) {
  nlohmann::json j = nlohmann::json::object();
  if (!command.config.empty()) j = ConfigToJson(LoadConfigFile(command.config, command.overrides));
  if (command.config.empty()) {
    for (const std::string& assignment : command.overrides) ApplyOverride(j, assignment);
  }
  if (!command.corpus.empty()) j["data"]["corpus"] = command.corpus;
  if (!j.contains("data") || !j["data"].contains("corpus")) {
    throw UserError("baseline needs --corpus FILE (or --config FILE naming data.corpus): e.g. charlm baseline --corpus "
                    "notes.txt");
  }
  Config config = ConfigFromJson(j, command.config.empty() ? command.overrides : std::vector<std::string>());
  ValidateConfig(config);
  const Dataset data = LoadDataset(config.data);
  if (data.Validation().size() < 2) {
    throw UserError("the validation split of " + config.data.corpus + " has " + std::to_string(data.Validation().size()) +
                    " characters (data.val_fraction is " + nlohmann::json(config.data.val_fraction).dump() +
                    "): nothing to score; set --set data.val_fraction=0.1 or use more text");
  }
  const Baseline baseline = FitBaseline(data.Train(), data.Validation(), data.vocab.size(), command.order);
  if (command.json) {
    out << BaselineJson(baseline).dump() << '\n';
  } else {
    out << config.data.corpus << ": " << FormatBaseline(baseline) << '\n';
  }
}

void RunSummary(const SummaryCommand& command, std::ostream& out) {
  const Config config = LoadConfigFile(command.config, command.overrides);
  const Dataset data = LoadDataset(config.data);
  out << ModelSummary(MakeModelSpec(config.model, data.vocab.size()), config.train.batch_size, config.train.num_steps);
}


}  // namespace charlm
