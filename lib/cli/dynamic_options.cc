// The --dynamic and --mix-ngram options of eval and score, defined once, and the run they share.
#include "cli/dynamic_options.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "eval/evaluate.h"
#include "eval/mixture.h"
#include "eval/score.h"
#include "model/ngram.h"
#include "run/run_state.h"
#include "util/errors.h"
#include "util/file_io.h"

namespace charlm {

namespace {

std::string Shown(double value) { return nlohmann::json(value).dump(); }

double CheckedNumber(const std::optional<double>& given, const char* name, double fallback, double max,
                     const char* unit) {
  if (!given) return fallback;
  const double value = *given;
  if (!std::isfinite(value) || value < 0 || value > max) {
    const std::string shown = std::isnan(value) ? "nan" : std::isinf(value) ? (value > 0 ? "inf" : "-inf") : Shown(value);
    throw UserError(std::string(name) + " " + shown + " is out of range: give a number from 0 to " + Shown(max) + " (" + unit + "; default " +
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
  command.Flag("--mix-ngram", options.mix_ngram,
               "mix the Kneser-Ney 5-gram of the checkpoint's training split into each prediction (its weight is "
               "chosen on the split's tail)");
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

namespace {

// Gradient statistics from `train_text` (its last kDynamicStatsChars + 1 characters), or none when it is too short.
std::optional<GradientStats> StatsFrom(const CharModel<float>& model, IdView train_text, int segment) {
  if (train_text.size() < 2) return std::nullopt;
  const IdView tail = train_text.last(static_cast<std::size_t>(
      std::min<std::int64_t>(static_cast<std::int64_t>(train_text.size()), kDynamicStatsChars + 1)));
  // Seconds on a large model, with nothing else on the terminal: say what it is doing first.
  spdlog::info("dynamic evaluation: gathering gradient statistics on the last {} characters of the training split",
               tail.size() - 1);
  GradientStats stats = GatherGradientStats(model, tail, segment);
  stats.source = "training split";
  return stats;
}

// The network's log-probabilities of ids: adapted (with `stats`, or the text's own past without) or fixed.
std::vector<double> NetworkLogProbs(const CharModel<float>& model, IdView ids, bool dynamic,
                                    const DynamicOptions& options, const GradientStats* stats, bool* cancelled) {
  if (dynamic) {
    DynamicResult result = EvaluateDynamic(model, ids, options, stats);
    if (cancelled != nullptr) *cancelled = result.cancelled;
    return std::move(result.log_probs);
  }
  return ScoreIds(model, ids.ToVector()).log_probs;
}

}  // namespace

void CheckAdaptiveFits(std::int64_t chars, std::uint64_t memory_bytes) {
  const double needed = kAdaptiveBytesPerChar * static_cast<double>(chars);
  if (memory_bytes == 0 || needed <= static_cast<double>(memory_bytes) / 2) return;
  throw UserError("--dynamic and --mix-ngram keep up to " + std::to_string(static_cast<int>(kAdaptiveBytesPerChar)) +
                  " bytes a character: " + FormatBytes(static_cast<std::uint64_t>(needed)) + " for " +
                  std::to_string(chars) + " characters, more than half of this machine's " + FormatBytes(memory_bytes) +
                  " of memory: score the text in parts (split the file), or leave --dynamic and --mix-ngram out");
}

AdaptiveRun RunAdaptive(const RestoredModel& restored, IdView ids, const DynamicCommandOptions& given,
                        const Dataset* corpus, std::function<bool(std::int64_t, std::int64_t)> progress) {
  CheckAdaptiveFits(static_cast<std::int64_t>(ids.size()), PhysicalMemoryBytes());
  AdaptiveRun run;
  run.dynamic = CheckDynamicOptions(given);
  run.dynamic.progress = std::move(progress);
  run.method = given.dynamic && given.mix_ngram ? "dynamic+ngram" : given.dynamic ? "dynamic" : "ngram";
  // Both take text the model was trained on: the statistics as the paper gathers them, the n-gram as the
  // baseline fits it.
  Dataset loaded;
  std::string unavailable;
  if (corpus == nullptr) {
    try {
      loaded = LoadRunCorpus(restored.config, restored.vocab, restored.checkpoint.trainer_state);
      if (!(loaded.vocab == restored.vocab)) {
        unavailable = restored.config.data.corpus.Label() + " no longer gives the checkpoint's vocabulary";
      } else {
        corpus = &loaded;
      }
    } catch (const UserError& error) {
      unavailable = error.what();
    }
  }
  const IdView train = corpus != nullptr ? corpus->Train() : IdView();
  if (corpus != nullptr && train.size() < 2) unavailable = "the checkpoint's training split has fewer than 2 characters";
  const CharModel<float>& model = restored.model;
  const int vocab = restored.model.spec().vocab_size;

  std::optional<KneserNeyModel> ngram;
  if (given.mix_ngram) {
    if (!unavailable.empty() || train.size() < 200) {
      throw UserError("--mix-ngram needs the checkpoint's training text (" +
                      (unavailable.empty() ? std::string("its training split has under 200 characters") : unavailable) +
                      "): put " + restored.config.data.corpus.Label() + " back, or leave --mix-ngram out");
    }
    // The weight, chosen on the training split's tail by an n-gram fitted on what comes before it.
    const std::size_t tune = static_cast<std::size_t>(
        std::min<std::int64_t>(kMixTuneChars, static_cast<std::int64_t>(train.size() / 10)));
    const IdView before = train.first(train.size() - tune);
    const IdView tail = train.last(tune + 1);  // + 1: the context of its first transition
    const KneserNeyModel tune_ngram(before, vocab, kDefaultNgramOrder);
    const std::optional<GradientStats> tune_stats =
        given.dynamic ? StatsFrom(model, before, run.dynamic.segment) : std::nullopt;
    DynamicOptions quiet = run.dynamic;
    quiet.progress = {};
    const std::vector<double> net = NetworkLogProbs(model, tail, given.dynamic, quiet,
                                                    tune_stats ? &*tune_stats : nullptr, nullptr);
    run.ngram_weight = ChooseMixWeight(net, NgramTargetProbs(tune_ngram, tail));
    run.ngram_tune_chars = static_cast<std::int64_t>(tune);
    spdlog::info("--mix-ngram: the {}-gram's weight {:.2f}, chosen on the last {} characters of the training split",
                 kDefaultNgramOrder, run.ngram_weight, tune);
    ngram.emplace(train, vocab, kDefaultNgramOrder);
  }

  std::optional<GradientStats> stats;
  if (given.dynamic) {
    if (unavailable.empty()) stats = StatsFrom(model, train, run.dynamic.segment);
    if (stats) {
      run.stats_source = stats->source;
      run.stats_chars = stats->chars;
    } else {
      run.stats_source = "scored text";
      spdlog::warn("dynamic evaluation: gradient statistics from the scored text's own past, as the training split "
                   "cannot be read ({})", unavailable);
    }
  }
  run.log_probs = NetworkLogProbs(model, ids, given.dynamic, run.dynamic, stats ? &*stats : nullptr, &run.cancelled);
  if (ngram) {
    const std::vector<double> ngram_probs = NgramTargetProbs(*ngram, ids.first(run.log_probs.size() + 1));
    run.log_probs = MixLogProbs(run.log_probs, ngram_probs, run.ngram_weight);
  }
  const EvalResult figures = FiguresOf(run.log_probs);
  run.tokens = figures.tokens;
  run.perplexity = figures.perplexity;
  run.bits_per_char = figures.bits_per_char;
  return run;
}

nlohmann::json AdaptiveJson(const AdaptiveRun& run) {
  nlohmann::json json{{"method", run.method}};
  if (run.method != "ngram") {
    json.update({{"dynamic_segment", run.dynamic.segment},
                 {"dynamic_lr", run.dynamic.lr},
                 {"dynamic_decay", run.dynamic.decay},
                 {"stats_source", run.stats_source},
                 {"stats_chars", run.stats_chars}});
  }
  if (run.method != "dynamic") {
    json.update({{"ngram_order", kDefaultNgramOrder},
                 {"ngram_weight", run.ngram_weight},
                 {"ngram_tune_chars", run.ngram_tune_chars}});
  }
  return json;
}

}  // namespace charlm
