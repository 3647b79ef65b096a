// The --dynamic options of eval and score, defined once, and the run they share.
#include "cli/dynamic_options.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>

#include "util/errors.h"

namespace charlm {

namespace {

std::string Shown(double value) { return nlohmann::json(value).dump(); }

double CheckedNumber(const std::optional<double>& given, const char* name, double fallback, double max,
                     const char* unit) {
  if (!given) return fallback;
  const double value = *given;
  if (!std::isfinite(value) || value < 0 || value > max) {
    throw UserError(std::string(name) + " " + (std::isfinite(value) ? Shown(value) : std::string("is not finite")) +
                    " is out of range: give a number from 0 to " + Shown(max) + " (" + unit + "; default " +
                    Shown(fallback) + ")");
  }
  return value;
}

}  // namespace

void AddDynamicOptions(CommandBuilder& command, DynamicCommandOptions& options) {
  command.Flag("--dynamic", options.dynamic,
               "adapt the weights to the text as it is scored (dynamic evaluation; the checkpoint is not changed)");
  command.Integer("--dynamic-segment", options.segment,
                  "with --dynamic: characters scored before each adaptation step (default " +
                      std::to_string(kDefaultDynamicSegment) + ")");
  command.Number("--dynamic-lr", options.lr,
                 "with --dynamic: size of the RMS-normalized step (default " + Shown(kDefaultDynamicLr) + ")");
  command.Number("--dynamic-decay", options.decay,
                 "with --dynamic: pull back toward the trained weights per step (default " +
                     Shown(kDefaultDynamicDecay) + ")");
}

DynamicOptions CheckDynamicOptions(const DynamicCommandOptions& given) {
  if (!given.dynamic) {
    const char* stray = given.segment ? "--dynamic-segment" : given.lr ? "--dynamic-lr" : given.decay ? "--dynamic-decay" : nullptr;
    if (stray != nullptr) throw UserError(std::string(stray) + " is a setting of --dynamic: add --dynamic, or leave it out");
  }
  DynamicOptions options;
  if (given.segment) {
    if (*given.segment < 1 || *given.segment > kMaxDynamicSegment) {
      throw UserError("--dynamic-segment " + std::to_string(*given.segment) + " is out of range: give 1 to " +
                      std::to_string(kMaxDynamicSegment) + " characters (default " +
                      std::to_string(kDefaultDynamicSegment) + ")");
    }
    options.segment = static_cast<int>(*given.segment);
  }
  options.lr = CheckedNumber(given.lr, "--dynamic-lr", kDefaultDynamicLr, kMaxDynamicLr, "0 = no step");
  options.decay = CheckedNumber(given.decay, "--dynamic-decay", kDefaultDynamicDecay, kMaxDynamicDecay, "0 = no pull back");
  return options;
}

DynamicRun RunDynamic(const RestoredModel& restored, IdView ids, const DynamicOptions& options, const Dataset* corpus,
                      std::function<bool(std::int64_t, std::int64_t)> progress) {
  DynamicRun run;
  run.options = options;
  run.options.progress = std::move(progress);
  // The statistics come from text the model was trained on, as the paper gathers them: the training split's tail.
  Dataset loaded;
  std::string unavailable;
  if (corpus == nullptr) {
    try {
      loaded = LoadDataset(restored.config.data);
      if (!(loaded.vocab == restored.vocab)) {
        unavailable = restored.config.data.corpus + " no longer gives the checkpoint's vocabulary";
      } else {
        corpus = &loaded;
      }
    } catch (const UserError& error) {
      unavailable = error.what();
    }
  }
  std::optional<GradientStats> stats;
  if (corpus != nullptr && corpus->Train().size() >= 2) {
    const IdView train = corpus->Train();
    const IdView tail = train.last(static_cast<std::size_t>(std::min<std::int64_t>(
        static_cast<std::int64_t>(train.size()), kDynamicStatsChars + 1)));
    stats = GatherGradientStats(restored.model, tail, options.segment);
    stats->source = "training split";
    run.stats_source = stats->source;
    run.stats_chars = stats->chars;
    spdlog::info("dynamic evaluation: gradient statistics from the last {} characters of the training split of {}",
                 stats->chars, restored.config.data.corpus);
  } else {
    if (unavailable.empty()) unavailable = "the checkpoint's training split has fewer than 2 characters";
    run.stats_source = "scored text";
    spdlog::warn("dynamic evaluation: gradient statistics from the scored text's own past, as the training split "
                 "cannot be read ({})", unavailable);
  }
  run.result = EvaluateDynamic(restored.model, ids, run.options, stats ? &*stats : nullptr);
  return run;
}

nlohmann::json DynamicSettingsJson(const DynamicRun& run) {
  return {{"dynamic_segment", run.options.segment},
          {"dynamic_lr", run.options.lr},
          {"dynamic_decay", run.options.decay},
          {"stats_source", run.stats_source},
          {"stats_chars", run.stats_chars}};
}

}  // namespace charlm
