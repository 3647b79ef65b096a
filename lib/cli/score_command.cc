// The `score` command: how likely a text is, character by character.
#include <CLI/CLI.hpp>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/dynamic_options.h"
#include "eval/score.h"
#include "model/restore.h"
#include "ops/blas.h"
#include "text/corpus.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace charlm {

void RunScore(const ScoreCommand& command, std::ostream& out) {
  const UnknownPolicy unknown = ParseUnknownPolicy(command.unknown);
  if (command.text.empty() == !command.prefix_given) {
    throw UserError("score needs exactly one of --text FILE or --prefix TEXT");
  }
  if (static_cast<int>(command.json) + static_cast<int>(command.tsv) + static_cast<int>(command.colour) > 1) {
    throw UserError("--json, --tsv and --color each choose the output: give one of them");
  }
  CheckDynamicOptions(command.dynamic);  // before the checkpoint is read: a typo fails at once
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
    ids = EncodeText(restored.vocab, DecodeText(command.prefix, newline, "--prefix"), unknown, what);
  }
  if (ids.size() < 2) {
    throw UserError(what + " has " + std::to_string(ids.size()) +
                    " known character(s): the first is context only, so nothing is scored; give at least 2");
  }
  SetBlasThreads(restored.config.train.threads);
  TextScore score;
  std::optional<AdaptiveRun> run;
  if (command.dynamic.dynamic || command.dynamic.mix_ngram) {
    run = RunAdaptive(restored, ids, command.dynamic, nullptr, {});
    score = TextScoreOf(ids, run->log_probs);
    what += " (" + run->method + ")";
  } else {
    score = ScoreIds(restored.model, ids);
  }
  if (command.json && run) {
    // The same object, under adaptation, with how it was adapted.
    nlohmann::json json = nlohmann::json::parse(FormatScoreJson(score, restored.vocab));
    json.update(AdaptiveJson(*run));
    out << json.dump() << '\n';
  } else if (command.json) {
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

void RegisterScore(CommandRegistry& registry) {
  registry.Add("score", "Log-probability, perplexity and per-character surprisal of a text", [](CommandBuilder& command) {
    auto options = std::make_shared<ScoreCommand>();
    command.Text("--checkpoint", options->checkpoint, "checkpoint file", {.required = true, .kind = OptionKind::kFile});
    command.Text("--text", options->text, "UTF-8 text file to score (give it or --prefix)", {.kind = OptionKind::kFile});
    command.Text("--prefix", options->prefix, "the text to score itself");
    command.Flag("--json", options->json, "print one JSON object with every character's surprisal");
    command.Flag("--tsv", options->tsv, "print one tab-separated row per character");
    command.Flag("--color", options->colour, "print the text coloured by surprisal (ANSI colours)");
    command.Text("--unknown", options->unknown, "characters outside the vocabulary",
                 {.show_default = true, .choices = {"error", "skip"}});
    AddDynamicOptions(command, options->dynamic);
    command.Run([options](CommandContext& context) {
      options->prefix_given = context.app->get_subcommand("score")->count("--prefix") > 0;
      LogToStderr();
      RunScore(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
