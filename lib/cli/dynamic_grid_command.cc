// The hidden `dynamic-grid` command: how --dynamic's settings score on the tail of a checkpoint's training split,
// the grid the defaults were chosen on (docs/evaluation.md), never on a text that is reported.
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/dynamic_options.h"
#include "eval/dynamic.h"
#include "eval/evaluate.h"
#include "model/restore.h"
#include "run/run_state.h"
#include "ops/blas.h"
#include "text/dataset.h"
#include "util/errors.h"

namespace charlm {

namespace {

std::vector<double> NumberList(const std::string& text, const char* name) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UserError(std::string(name) + " \"" + text + "\" is not a comma-separated list of numbers: give, e.g., 0.001,0.01");
    }
  }
  if (values.empty()) throw UserError(std::string(name) + " is empty: give a comma-separated list of numbers");
  return values;
}

}  // namespace

void RegisterDynamicGrid(CommandRegistry& registry) {
  registry.Add(
      "dynamic-grid", "Score --dynamic settings on the tail of a checkpoint's training split (JSON lines)",
      [](CommandBuilder& command) {
        struct Options {
          std::string checkpoint, segments = "10,20,50", lrs = "0.001,0.003,0.01,0.03", decays = "0.001";
          std::int64_t tail = 10000;
          std::int64_t stats_chars = kDynamicStatsChars;
        };
        auto options = std::make_shared<Options>();
        command.Text("--checkpoint", options->checkpoint, "checkpoint file", {.required = true, .kind = OptionKind::kFile});
        command.Integer("--tail", options->tail, "characters at the end of the training split that are scored",
                        {.show_default = true});
        command.Integer("--stats-chars", options->stats_chars,
                        "characters before the tail the gradient statistics come from", {.show_default = true});
        command.Text("--segments", options->segments, "--dynamic-segment values", {.show_default = true});
        command.Text("--lrs", options->lrs, "--dynamic-lr values", {.show_default = true});
        command.Text("--decays", options->decays, "--dynamic-decay values", {.show_default = true});
        command.Run([options](CommandContext& context) {
          LogToStderr();
          const std::vector<double> segments = NumberList(options->segments, "--segments");
          const std::vector<double> lrs = NumberList(options->lrs, "--lrs");
          const std::vector<double> decays = NumberList(options->decays, "--decays");
          RestoredModel restored = RestoreModel(options->checkpoint);
          SetBlasThreads(restored.config.train.threads);
          const Dataset data = LoadRunCorpus(restored.config, restored.vocab, restored.checkpoint.trainer_state);
          if (!(data.vocab == restored.vocab)) {
            throw UserError(restored.config.data.corpus.Label() + " no longer gives the checkpoint's vocabulary: nothing to tune on");
          }
          const IdView train = data.Train();
          if (options->tail < 100 || static_cast<std::size_t>(options->tail) * 2 > train.size()) {
            throw UserError("--tail " + std::to_string(options->tail) + " is out of range: give 100 to half the training split (" +
                            std::to_string(train.size() / 2) + " characters)");
          }
          // The scored tail, and the statistics from the characters just before it, as eval takes them before val.
          const std::size_t tail_begin = train.size() - static_cast<std::size_t>(options->tail);
          const IdView tail = train.subspan(tail_begin);
          if (options->stats_chars < 1) throw UserError("--stats-chars must be at least 1");
          const std::size_t stats_chars = std::min<std::size_t>(tail_begin, static_cast<std::size_t>(options->stats_chars) + 1);
          const IdView before = train.subspan(tail_begin - stats_chars, stats_chars);
          EvalOptions fixed;
          fixed.streams = 1;
          const auto static_started = std::chrono::steady_clock::now();
          const EvalResult base = Evaluate(restored.model, tail, fixed);
          const double static_seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - static_started).count();
          for (const double segment : segments) {
            if (segment < 1 || segment > kMaxDynamicSegment) throw UserError("--segments: each must be 1 to " + std::to_string(kMaxDynamicSegment));
            const auto stats_started = std::chrono::steady_clock::now();
            const GradientStats stats = GatherGradientStats(restored.model, before, static_cast<int>(segment));
            const double stats_seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - stats_started).count();
            for (const double lr : lrs) {
              for (const double decay : decays) {
                DynamicOptions settings;
                settings.segment = static_cast<int>(segment);
                settings.lr = lr;
                settings.decay = decay;
                const auto started = std::chrono::steady_clock::now();
                const DynamicResult r = EvaluateDynamic(restored.model, tail, settings, &stats);
                const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                *context.out << nlohmann::json{{"segment", settings.segment}, {"lr", lr}, {"decay", decay},
                                               {"static_bits_per_char", base.bits_per_char}, {"static_seconds", static_seconds},
                                               {"bits_per_char", r.bits_per_char},
                                               {"gain", 1.0 - r.bits_per_char / base.bits_per_char},
                                               {"tail_chars", r.tokens}, {"stats_chars", stats.chars},
                                               {"seconds", seconds}, {"stats_seconds", stats_seconds}}.dump()
                             << std::endl;
              }
            }
          }
          return 0;
        });
      },
      /*hidden=*/true);
}

}  // namespace charlm
