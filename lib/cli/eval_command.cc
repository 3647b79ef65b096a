// The `eval` command: perplexity and bits per character of a checkpoint on a text or a split.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/dynamic_options.h"
#include "eval/evaluate.h"
#include "model/restore.h"
#include "run/run_state.h"
#include "ops/blas.h"
#include "ops/column_threads.h"
#include "run/console_format.h"
#include "text/dataset.h"
#include "text/documents.h"
#include "util/errors.h"

namespace charlm {

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
  CheckDynamicOptions(command.dynamic);  // before the checkpoint is read: a typo fails at once
  RestoredModel restored = RestoreModel(command.checkpoint);
  SetPrecision(command.precision, restored.model);
  const Config& config = restored.config;
  TextIds text;  // for --text: its ids, never the text
  Dataset data;  // for --split: its ids are scored in place
  IdView ids;
  std::string what;
  if (!command.text.empty()) {
    text = ReadTextIds(TextSourceOf(command.text, config.data), config.data.newline, restored.vocab);
    CheckUnknownChars(text.missing, unknown, command.text);
    ids = text.ids.view();
    what = command.text;
    WarnSkippedText(text, command.text);
  } else {
    if (command.split != "val" && command.split != "test") {
      throw UserError("--split \"" + command.split + "\" is not a split: use --split val or --split test");
    }
    data = LoadRunCorpus(config, restored.vocab, restored.checkpoint.trainer_state);
    if (!(data.vocab == restored.vocab)) {
      throw UserError(config.data.corpus.Label() + " no longer gives the vocabulary the checkpoint was trained with: "
                      "evaluate the changed text with --text FILE instead");
    }
    if (const std::string change = CorpusChange(data, restored.checkpoint.trainer_state, command.checkpoint);
        !change.empty()) {
      throw UserError("the corpus " + config.data.corpus.Label() + " changed since the checkpoint was written (" +
                      change + "), so its " + command.split + " split is not the one the run held out: evaluate "
                      "the changed text with --text FILE instead");
    }
    const auto part = command.split == "val" ? data.Validation() : data.Test();
    if (part.size() < 2) {
      throw UserError("the checkpoint's corpus has no " + std::string(command.split == "val" ? "validation" : "test") +
                      " split (data." + (command.split == "val" ? "val_fraction" : "test_fraction") +
                      " is " + nlohmann::json(command.split == "val" ? config.data.val_fraction : config.data.test_fraction).dump() +
                      "): evaluate a file with --text FILE, or train with that fraction above 0");
    }
    ids = part;
    what = config.data.corpus.Label() + " (" + command.split + " split)";
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
  if (command.dynamic.dynamic || command.dynamic.mix_ngram) {
    // The static figures above, then the same characters again, adapting as they are read and/or mixed.
    const AdaptiveRun run = RunAdaptive(restored, ids, command.dynamic, command.split.empty() ? nullptr : &data,
                                        EvalProgressLine(what + " (" + (command.dynamic.dynamic ? "dynamic" : "mixed") + ")"));
    if (command.json) {
      nlohmann::json json{{"perplexity", run.perplexity},      {"bits_per_char", run.bits_per_char},
                          {"static_perplexity", r.perplexity}, {"static_bits_per_char", r.bits_per_char},
                          {"tokens", run.tokens}};
      json.update(AdaptiveJson(run));
      out << json.dump() << '\n';
    } else {
      char line[512];
      std::snprintf(line, sizeof line,
                    "%s: perplexity %.4f, %.4f bits per character with %s (without: %.4f, %.4f), "
                    "%lld characters predicted\n",
                    what.c_str(), run.perplexity, run.bits_per_char,
                    run.method == "dynamic" ? "dynamic evaluation"
                    : run.method == "ngram" ? "the 5-gram mixed in"
                                            : "dynamic evaluation and the 5-gram mixed in",
                    r.perplexity, r.bits_per_char, static_cast<long long>(run.tokens));
      out << line;
    }
    return;
  }
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

void RegisterEval(CommandRegistry& registry) {
  registry.Add("eval", "Perplexity and bits per character of a checkpoint on a text", [](CommandBuilder& command) {
    auto options = std::make_shared<EvalCommand>();
    command.Text("--checkpoint", options->checkpoint, "checkpoint file", {.required = true, .kind = OptionKind::kFile});
    command.Text("--text", options->text, "UTF-8 text file to score (give it or --split)", {.kind = OptionKind::kFile});
    command.Text("--split", options->split, "a split of the checkpoint's own corpus", {.choices = {"val", "test"}});
    command.Flag("--json", options->json, "print one JSON object");
    command.Integer("--streams", options->streams,
                    "pieces scored side by side, 1 to 4096 (default train.batch_size; 1 = one stream)");
    command.Integer("--burn-in", options->burn_in, "characters each stream is warmed up on before its piece (default 256)");
    command.Text("--unknown", options->unknown, "characters outside the vocabulary",
                 {.show_default = true, .choices = {"error", "skip"}});
    command.Text("--precision", options->precision, "matrix products",
                 {.show_default = true, .choices = EnumNamesList<Precision>()});
    command.Integer("--threads", options->threads, "threads, 0 = all cores (default: the checkpoint's train.threads)");
    AddDynamicOptions(command, options->dynamic);
    command.Run([options](CommandContext& context) {
      LogToStderr();
      RunEval(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
