// The `score` command: how likely a text is, character by character.
#include <CLI/CLI.hpp>

#include <filesystem>
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
#include "text/documents.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace charlm {
namespace {

// Bytes a character of the text needs while it is scored: its ids as read (2, TokenIds) and as scored (4); rounded
// up for the allocator's slack.
constexpr std::uint64_t kScoreBytesPerChar = 8;

std::uint64_t FileSizeOrZero(const std::string& path) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<std::uint64_t>(size);
}

}  // namespace

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
  // OpenBLAS's buffers are mapped before the text is read, so that the estimate below is checked against what is
  // left (under ulimit -v they take 128 MB of address space a thread).
  SetBlasThreads(restored.config.train.threads);
  const NewlinePolicy newline = restored.config.data.newline;
  std::vector<int> ids;
  std::string what;
  if (!command.text.empty()) {
    what = command.text;
    // The peak: the ids as read (up to 2 bytes a character, TokenIds) and as scored (4), and --dynamic's or
    // --mix-ngram's own (CheckAdaptiveFits); the output is streamed, so nothing per character beyond them.
    const std::uint64_t file_bytes = FileSizeOrZero(command.text);
    const AllocationScope scope("the ids of text '" + command.text + "' (" + FormatBytes(file_bytes) + ")",
                                "score it in parts (split the file)", file_bytes * kScoreBytesPerChar);
    const TextIds text = ReadTextIds(TextSourceOf(command.text, restored.config.data), newline, restored.vocab);
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
  const ScoreFormat format = command.json     ? ScoreFormat::kJson
                             : command.tsv    ? ScoreFormat::kTsv
                             : command.colour ? ScoreFormat::kColour
                                              : ScoreFormat::kSummary;
  if (command.dynamic.dynamic || command.dynamic.mix_ngram) {
    const AdaptiveRun run = RunAdaptive(restored, ids, command.dynamic, nullptr, {});
    ScoreWriter writer(format, out, restored.vocab, ids, what + " (" + run.method + ")");
    writer.Begin();
    ScoreTotals totals;
    for (std::size_t k = 0; k < run.log_probs.size(); ++k) {
      writer.Add(k, run.log_probs[k]);
      totals.log_prob += run.log_probs[k];
    }
    totals.predicted = static_cast<std::int64_t>(run.log_probs.size());
    // The same object, under adaptation, with how it was adapted.
    writer.End(totals, AdaptiveJson(run));
  } else {
    // Streamed: each character is written as it is scored (Begin waits for the first, so that weights that give
    // no finite score fail before anything is printed).
    ScoreWriter writer(format, out, restored.vocab, ids, what);
    bool begun = false;
    const ScoreTotals totals = ScoreStream(restored.model, ids, [&](std::size_t k, double log_prob) {
      if (!begun) writer.Begin();
      begun = true;
      writer.Add(k, log_prob);
    });
    writer.End(totals);
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
