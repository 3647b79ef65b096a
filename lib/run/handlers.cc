// The standard handlers of a training run: metrics file, checkpoints, console log, samples, progress bar, early stop.
#include "run/handlers.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "errors.h"
#include "generate.h"
#include "ngram.h"
#include "rng.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

fs::path MetricsPath(const TrainingRun& run) { return fs::path(run.config().train.out_dir) / "metrics.jsonl"; }

// "324.371 (8.341 bpc)": bits per character beside every printed perplexity.
std::string FormatPerplexityAndBpc(std::optional<double> ppl) {
  if (!ppl) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f (%.3f bpc)", *ppl, std::log2(*ppl));
  return buf;
}

nlohmann::json OptionalJson(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

// Keeps the metrics of epochs 1..epochs_completed when resuming; starts the file afresh otherwise.
void MetricsWriter::OnTrainBegin(TrainingRun& run) {
  const fs::path path = MetricsPath(run);
  const int epochs_completed = run.progress().epochs_completed;
  std::vector<std::string> kept;
  if (epochs_completed > 0) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("epoch") && j["epoch"].is_number_integer() &&
          j["epoch"].get<int>() <= epochs_completed) {
        kept.push_back(line);
      }
    }
  }
  std::ofstream out(path, std::ios::trunc);
  for (const auto& line : kept) out << line << '\n';
  if (!out) throw UserError(path.string() + " cannot be written: check the folder's permissions and free space");
}

void MetricsWriter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  const nlohmann::json line = {
      {"epoch", summary.epoch},
      {"train_perplexity", summary.train_perplexity},
      {"train_bpc", std::log2(summary.train_perplexity)},
      {"val_perplexity", OptionalJson(summary.val_perplexity)},
      {"val_bpc", summary.val_perplexity ? nlohmann::json(std::log2(*summary.val_perplexity)) : nlohmann::json(nullptr)},
      {"learning_rate", summary.learning_rate},
      {"tokens_per_s", summary.tokens_per_s},
      {"elapsed_s", summary.elapsed_s}};
  const fs::path path = MetricsPath(run);
  std::ofstream metrics(path, std::ios::app);
  metrics << line.dump() << '\n';
  if (!metrics) throw UserError(path.string() + " cannot be written: check free space");
}

void BaselineReporter::OnTrainBegin(TrainingRun& run) {
  const std::span<const int> val_ids = run.val_ids();
  if (val_ids.size() < 2) return;  // nothing to compare against
  const Baseline baseline = FitBaseline(run.data().Train(), val_ids, run.data().vocab.size(),
                                        kDefaultNgramOrder);
  spdlog::info("{} (charlm baseline --order N for another order)", FormatBaseline(baseline));
  const fs::path path = fs::path(run.config().train.out_dir) / "baseline.json";
  std::ofstream out(path, std::ios::trunc);
  out << BaselineJson(baseline).dump() << '\n';
  if (!out) throw UserError(path.string() + " cannot be written: check the folder's permissions and free space");
}

void Checkpointer::OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) {
  if (point.kind == CheckpointPoint::Kind::kStop) {
    run.Save(run.last_checkpoint_path());
    return;
  }
  const EpochSummary& epoch = *point.epoch;
  if (epoch.improved) run.Save(run.best_checkpoint_path());
  if (epoch.epoch % run.config().train.checkpoint_every == 0 || epoch.last_epoch ||
      run.stop_reason() != StopReason::kNone) {
    run.Save(run.last_checkpoint_path());
  }
}

void EpochLogger::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  spdlog::info("epoch {}/{}  train perplexity {}  val perplexity {}  lr {:.3g}  {:.0f} tokens/s  {:.1f} s",
               summary.epoch, run.config().train.epochs, FormatPerplexityAndBpc(summary.train_perplexity),
               FormatPerplexityAndBpc(summary.val_perplexity), summary.learning_rate, summary.tokens_per_s,
               summary.elapsed_s);
}

void SamplePrinter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  const Config& config = run.config();
  if (config.generate.every <= 0 || summary.epoch % config.generate.every != 0) return;
  Rng rng(MixSeed(MixSeed(config.train.seed, kGenerateStream), static_cast<std::uint64_t>(summary.epoch - 1)));
  const SamplingOptions sampling = SamplingFromConfig(config.generate);
  for (const std::string& prefix : config.generate.prefixes) {
    spdlog::info(" - {}", GenerateText(run.model(), run.data().vocab, prefix, sampling, rng, UnknownPolicy::kError,
                                       config.data.newline));
  }
}

void ProgressBar::OnStep(TrainingRun& run, const StepEvent& step) {
  const Progress& progress = run.progress();
  const int width = 30;
  const int filled = step.num_batches > 0 ? static_cast<int>(width * step.batch / step.num_batches) : width;
  std::fprintf(stderr, "\repoch %d/%d [%s%s] %lld/%lld  train ppl %.3f   ", step.epoch, run.config().train.epochs,
               std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
               static_cast<long long>(step.batch), static_cast<long long>(step.num_batches),
               progress.partial_tokens > 0 ? std::exp(progress.partial_loss_sum / progress.partial_tokens) : 0.0);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r%80s\r", "");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::OnEvalBegin(TrainingRun&) { Clear(); }
void ProgressBar::OnEpochScored(TrainingRun&, EpochSummary&) { Clear(); }
void ProgressBar::OnTrainEnd(TrainingRun&, const TrainOutcome&) { Clear(); }
void ProgressBar::OnAbort(TrainingRun&) noexcept { Clear(); }

void EarlyStopping::OnEpochScored(TrainingRun& run, EpochSummary&) {
  const int patience = run.config().train.patience;
  if (patience > 0 && run.progress().epochs_since_best >= patience) {
    run.RequestStop(StopReason::kEarlyStop);
    stopped_ = run.stop_reason() == StopReason::kEarlyStop;
  }
}

void EarlyStopping::OnEpochEnd(TrainingRun& run, const EpochSummary&) {
  if (!stopped_) return;
  spdlog::info("early stop: validation perplexity has not improved for {} epochs (best {})",
               run.config().train.patience, FormatPerplexityAndBpc(run.progress().best_score));
}

HandlerList StandardHandlers(const Config&, const TrainHooks& hooks) {
  HandlerList handlers;
  if (hooks.progress_bar) handlers.push_back(std::make_unique<ProgressBar>());
  handlers.push_back(std::make_unique<BaselineReporter>());
  handlers.push_back(std::make_unique<Checkpointer>());
  handlers.push_back(std::make_unique<EpochLogger>());
  handlers.push_back(std::make_unique<MetricsWriter>());
  handlers.push_back(std::make_unique<SamplePrinter>());
  handlers.push_back(std::make_unique<EarlyStopping>());
  return handlers;
}

}  // namespace charlm
