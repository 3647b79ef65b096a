// The standard handlers of a training run: metrics file, checkpoints, console log, samples, progress bar, early stop.
#include "run/handlers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "format/checkpoint.h"
#include "util/errors.h"
#include "generate/generate.h"
#include "util/json_parse.h"
#include "model/ngram.h"
#include "report/report.h"
#include "util/rng.h"
#include "run/out_dir.h"

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

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto total = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", total / 3600, total / 60 % 60);
  } else if (total >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", total);
  }
  return buf;
}

namespace {

// A resumed run's earlier rows are in the checkpoint's folder: out_dir itself when it resumes in place, else the
// folder it was resumed from (whose files are only read).
fs::path EarlierRunFile(const TrainingRun& run, const std::string& name) {
  const fs::path folder = fs::path(run.resume_path()).parent_path();
  return (folder.empty() ? fs::path(".") : folder) / name;
}

bool SameFile(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

// The lines of `path` that are JSON objects `keep` accepts; nullopt when there is no such file.
std::optional<std::vector<std::string>> KeptLines(const fs::path& path,
                                                  const std::function<bool(const nlohmann::json&)>& keep) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && keep(j)) kept.push_back(line);
  }
  return kept;
}

// Replaces out_dir's file `path` with `text`, checked after a flush (so a full disk is an error, not a short file).
void WriteOutDirFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw UserError(path.string() + " cannot be written: check the folder's permissions and free space");
}

void WriteLines(const fs::path& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + '\n';
  WriteOutDirFile(path, text);
}

}  // namespace

// Keeps the earlier rows up to the resumed position (a row after it describes training that is being redone),
// copied from the checkpoint's folder when the run resumes into another, so the new folder holds the whole run;
// starts the file afresh otherwise. Rows carry their step; rows written before steps were recorded, their epoch.
void MetricsWriter::OnTrainBegin(TrainingRun& run) {
  const fs::path path = MetricsPath(run);
  const Progress& progress = run.progress();
  std::vector<std::string> kept;
  if (progress.global_step > 0) {
    const fs::path earlier = EarlierRunFile(run, "metrics.jsonl");
    const std::optional<std::vector<std::string>> rows = KeptLines(earlier, [&](const nlohmann::json& j) {
      const std::optional<std::int64_t> step =
          j.contains("step") ? ExactInteger<std::int64_t>(j["step"]) : std::nullopt;
      const std::optional<int> epoch = j.contains("epoch") ? ExactInteger<int>(j["epoch"]) : std::nullopt;
      return j.contains("step") ? step && *step <= progress.global_step : epoch && *epoch <= progress.epochs_completed;
    });
    if (!rows) {
      spdlog::warn("resuming {}: there is no {} beside it, so {} (and report.html's curves) start at step {}",
                   run.resume_path(), earlier.string(), path.string(), progress.global_step);
    } else {
      kept = *rows;
      if (!SameFile(earlier, path)) {
        spdlog::info("resuming {}: copied the {} rows of {} up to step {} into {}", run.resume_path(), kept.size(),
                     earlier.string(), progress.global_step, path.string());
      }
    }
  }
  WriteLines(path, kept);
}

void MetricsWriter::Append(const TrainingRun& run, const nlohmann::json& row) {
  const fs::path path = MetricsPath(run);
  std::ofstream metrics(path, std::ios::app);
  metrics << row.dump() << '\n';
  metrics.flush();
  if (!metrics) throw UserError(path.string() + " cannot be written: check free space");
}

void BaselineReporter::OnTrainBegin(TrainingRun& run) {
  const IdView all_val_ids = run.val_ids();
  if (all_val_ids.size() < 2) return;  // nothing to compare against
  const IdView val_ids = all_val_ids.first(
      std::min(all_val_ids.size(), static_cast<std::size_t>(kMaxStartBaselineChars)));
  // Rank 0's share of a data-parallel run starts at the text's beginning and holds at least the characters the
  // fit reads (kMaxNgramFitChars), so the baseline does not depend on the number of processes.
  assert(run.data().train_begin == 0);
  const Baseline baseline = FitBaseline(run.data().TrainHeld(), val_ids, run.data().vocab.size(),
                                        kDefaultNgramOrder);
  spdlog::info("{} (charlm baseline --order N for another order)", FormatBaseline(baseline));
  const fs::path path = fs::path(run.config().train.out_dir) / "baseline.json";
  WriteOutDirFile(path, BaselineJson(baseline).dump() + '\n');
}

void MetricsWriter::OnLog(TrainingRun& run, const StepEvent& step) {
  Append(run, {{"kind", "log"},
               {"epoch", step.epoch},
               {"step", step.step},
               {"epoch_fraction", step.num_batches > 0 ? static_cast<double>(step.batch) / step.num_batches : 1.0},
               {"train_loss", step.running_loss},
               {"train_bits_per_char", step.running_loss / std::log(2.0)},
               {"grad_norm", step.grad_norm},
               {"learning_rate", step.learning_rate},
               {"tokens_per_s", step.tokens_per_s},
               {"eta_epoch_s", step.eta_epoch_s},
               {"eta_run_s", step.eta_run_s},
               {"elapsed_s", step.elapsed_s}});
}

void MetricsWriter::OnEval(TrainingRun& run, const EvalEvent& eval) {
  if (eval.epoch_end) return;  // the epoch row holds it
  Append(run, {{"kind", "eval"},
               {"epoch", eval.epoch},
               {"step", eval.step},
               {"val_perplexity", eval.result.perplexity},
               {"val_bits_per_char", eval.result.bits_per_char},
               {"val_chars", eval.result.tokens},
               {"elapsed_s", eval.elapsed_s}});
}

void MetricsWriter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  Append(run, {{"kind", "epoch"},
               {"epoch", summary.epoch},
               {"step", run.progress().global_step},
               {"train_perplexity", summary.train_perplexity},
               {"train_bpc", std::log2(summary.train_perplexity)},
               {"val_perplexity", OptionalJson(summary.val_perplexity)},
               {"val_bpc", summary.val_perplexity ? nlohmann::json(std::log2(*summary.val_perplexity))
                                                  : nlohmann::json(nullptr)},
               {"learning_rate", summary.learning_rate},
               {"tokens_per_s", summary.tokens_per_s},
               {"grad_norm", summary.grad_norm},
               {"elapsed_s", summary.elapsed_s}});
}

void ConfigWriter::OnTrainBegin(TrainingRun& run) {
  const fs::path path = fs::path(run.config().train.out_dir) / "config.json";
  WriteOutDirFile(path, ConfigToJson(run.config()).dump(2) + '\n');
}

void ProgressLogger::OnLog(TrainingRun& run, const StepEvent& step) {
  spdlog::info("epoch {}/{}  step {} ({:.1f}% of the epoch)  train loss {:.4f} ({:.3f} bits/char)  {:.0f} tokens/s  "
               "ETA epoch {}, run {}",
               step.epoch, run.config().train.epochs, step.step,
               step.num_batches > 0 ? 100.0 * static_cast<double>(step.batch) / step.num_batches : 100.0,
               step.running_loss, step.running_loss / std::log(2.0), step.tokens_per_s,
               FormatDuration(step.eta_epoch_s), FormatDuration(step.eta_run_s));
}

void ProgressLogger::OnEval(TrainingRun&, const EvalEvent& eval) {
  if (eval.epoch_end) return;  // the epoch line holds it
  spdlog::info("step {}: val perplexity {:.3f} ({:.3f} bits/char) on {} characters", eval.step,
               eval.result.perplexity, eval.result.bits_per_char, eval.result.tokens);
}

void Budget::OnTrainBegin(TrainingRun& run) {
  started_ = std::chrono::steady_clock::now();  // a run already at train.max_steps never gets here (TrainingRun)
  Check(run);
}

void Budget::OnStep(TrainingRun& run, const StepEvent&) { Check(run); }

void Budget::Check(TrainingRun& run) {
  const TrainConfig& tc = run.config().train;
  if (tc.max_steps > 0 && run.progress().global_step >= tc.max_steps) {
    run.RequestStop(StopReason::kBudget, "train.max_steps " + std::to_string(tc.max_steps));
  }
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count() / 60;
  if (watch_clock_ && tc.max_minutes > 0 && minutes >= tc.max_minutes) {
    char detail[64];
    std::snprintf(detail, sizeof detail, "train.max_minutes %g", tc.max_minutes);
    run.RequestStop(StopReason::kBudget, detail);
  }
}

namespace {

// Why `best`, read from `source`, is not the resumed run's best so far; nullopt when it is.
std::optional<std::string> NotTheRunsBest(const CheckpointMetadata& best, const TrainingRun& run,
                                          const std::string& source) {
  if (!(best.vocab == run.data().vocab.ToJson())) return "its vocabulary differs from the checkpoint's";
  if (!best.config.is_object() || !best.config.contains("model") ||
      !(best.config["model"] == ConfigToJson(run.config())["model"])) {
    return "its model differs from the checkpoint's";
  }
  const Progress saved = Progress::FromJson(best.trainer_state, source);  // UserError when unreadable
  if (saved.global_step > run.progress().global_step) {
    return "it was saved at step " + std::to_string(saved.global_step) + ", after the checkpoint's step " +
           std::to_string(run.progress().global_step) + " (a later run in that folder)";
  }
  if (saved.best_score != run.progress().best_score) {
    return "its best score is not the checkpoint's (another run's model)";
  }
  return std::nullopt;
}

}  // namespace

void Checkpointer::OnTrainBegin(TrainingRun& run) {
  const std::optional<double> best_score = run.progress().best_score;
  if (!run.resumed() || !run.imported_from().empty() || !best_score) return;  // no best yet: the first epoch makes it
  const fs::path source = EarlierRunFile(run, "best.ckpt");
  const fs::path target = run.best_checkpoint_path();
  if (ResumedInPlace(run)) return;  // best.ckpt is there
  std::error_code ec;
  const std::string until = "so " + target.string() + " is written when " +
                            (run.val_ids().empty() ? "training" : "validation") + " perplexity improves on " +
                            FormatPerplexityAndBpc(best_score) + ", the best before the checkpoint";
  if (!fs::is_regular_file(source, ec)) {
    spdlog::warn("resuming {}: there is no {} beside it, {}", run.resume_path(), source.string(), until);
    return;
  }
  // Checked on its JSON sections alone, so that a best.ckpt that is not copied (a later run's, another model's, a
  // damaged one) is never held whole; the copy then needs every byte, and checks what it copies again, since
  // another run may have replaced the file in between.
  std::optional<std::string> reason;
  CheckpointData best;
  try {
    reason = NotTheRunsBest(LoadCheckpointMetadata(source.string()), run, source.string());
    if (!reason) {
      best = LoadCheckpoint(source.string());
      reason = NotTheRunsBest({best.config, best.vocab, best.trainer_state}, run, source.string());
    }
  } catch (const UserError& e) {
    reason = std::string("it cannot be read (") + e.what() + ")";
  }
  if (reason) {
    spdlog::warn("resuming {}: {} is not copied: {}; {}", run.resume_path(), source.string(), *reason, until);
    return;
  }
  SaveCheckpoint(target.string(), best);  // atomically, as every checkpoint: temp file, fsync, rename
  spdlog::info("resuming {}: copied {} (the run's best so far, {} perplexity {}) into {}", run.resume_path(),
               source.string(), run.val_ids().empty() ? "training" : "validation", FormatPerplexityAndBpc(best_score),
               target.string());
}

void Checkpointer::OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) {
  if (point.kind != CheckpointPoint::Kind::kEpochEnd) {
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

// Keeps the samples of the epochs before the resumed position, from the checkpoint's folder as MetricsWriter does
// (a run that never sampled has no samples.jsonl: nothing to say); starts the file afresh otherwise.
void SamplePrinter::OnTrainBegin(TrainingRun& run) {
  const fs::path path = fs::path(run.config().train.out_dir) / "samples.jsonl";
  std::vector<std::string> kept;
  if (run.progress().epochs_completed > 0) {
    kept = KeptLines(EarlierRunFile(run, "samples.jsonl"), [&](const nlohmann::json& j) {
             const std::optional<int> epoch = j.contains("epoch") ? ExactInteger<int>(j["epoch"]) : std::nullopt;
             return epoch && *epoch <= run.progress().epochs_completed;
           }).value_or(std::vector<std::string>());
  }
  WriteLines(path, kept);
}

void SamplePrinter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  const Config& config = run.config();
  if (config.generate.every <= 0 || summary.epoch % config.generate.every != 0) return;
  if (run.stop_reason() == StopReason::kSignal) return;  // the user wants out, not samples
  const StopRequested stop = [&] {
    if (stop_requested_ && stop_requested_()) run.RequestStop(StopReason::kSignal);
    return run.stop_reason() == StopReason::kSignal;
  };
  Rng rng(MixSeed(MixSeed(config.train.seed, kGenerateStream), static_cast<std::uint64_t>(summary.epoch - 1)));
  const SamplingOptions sampling = SamplingFromConfig(config.generate);
  // All samples first, then the lines: a progress bar says "sampling" meanwhile and is gone before they print.
  run.Announce("sampling");
  const std::vector<std::string> prefixes = SamplePrefixes(config.generate.prefixes, run.data());
  std::vector<GeneratedParts> samples;
  for (const std::string& prefix : prefixes) {
    samples.push_back(GenerateParts(run.model(), run.data().vocab, prefix, sampling, rng, UnknownPolicy::kError,
                                    config.data.newline, stop));
    if (stop()) break;
  }
  run.Announce("");
  if (stop()) return;  // cut short: a partial sample is not the epoch's sample
  const fs::path path = fs::path(config.train.out_dir) / "samples.jsonl";
  std::ofstream log(path, std::ios::app);
  for (std::size_t k = 0; k < samples.size(); ++k) {
    spdlog::info(" - {}{}", samples[k].prefix, samples[k].continuation);  // as the book prints it
    log << nlohmann::json{{"format", kSamplesFormat},
                          {"epoch", summary.epoch},
                          {"prefix", prefixes[k]},
                          {"text", samples[k].continuation}}.dump()
        << '\n';
  }
  log.flush();
  if (!log) throw UserError(path.string() + " cannot be written: check free space");
}

void ReportWriter::OnTrainBegin(TrainingRun& run) {
  if (!run.config().train.report) return;
  const Dataset& data = run.data();
  const int threads = run.config().train.threads;
  const nlohmann::json info = {
      {"corpus", run.config().data.corpus},
      {"corpus_chars", data.corpus_chars()},
      {"vocab_size", data.vocab.size()},
      {"train_chars", data.train_chars()},
      {"val_chars", data.val_chars()},
      {"test_chars", data.test_chars()},
      {"parameters", run.model().params().size()},
      {"threads", threads > 0 ? std::to_string(threads) : "all cores (train.threads = 0)"},
      {"machine", MachineDescription()},
      {"charlm_version", CHARLM_VERSION}};
  try {
    WriteFileAtomically((fs::path(run.config().train.out_dir) / "run_info.json").string(), info.dump(2) + "\n");
  } catch (const UserError& e) {
    spdlog::warn("{}; training goes on without a report", e.what());
    warned_ = true;
  }
}

void ReportWriter::Write(TrainingRun& run, bool live) {
  if (!run.config().train.report || warned_) return;
  const std::string& dir = run.config().train.out_dir;
  try {
    ReportOptions options;
    options.live = live;
    WriteFileAtomically((fs::path(dir) / "report.html").string(),
                        RenderRunReport(LoadRun(dir), ComputeModelFigures(dir, [&] {
                                          if (stop_requested_ && stop_requested_()) run.RequestStop(StopReason::kSignal);
                                          return run.stop_reason() == StopReason::kSignal;
                                        }), options));
  } catch (const UserError& e) {
    spdlog::warn("report.html not written: {}; training goes on (charlm report {} retries)", e.what(), dir);
    warned_ = true;
  }
}

void ReportWriter::OnEval(TrainingRun& run, const EvalEvent& eval) {
  if (!eval.epoch_end) Write(run, true);
}

void ReportWriter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  Write(run, !summary.last_epoch && run.stop_reason() == StopReason::kNone);
}

void ReportWriter::OnTrainEnd(TrainingRun& run, const TrainOutcome&) { Write(run, false); }

void ProgressBar::Draw(const std::string& text) {
  // Pads to the longest line drawn so far, so a shorter line leaves no tail of the previous one.
  std::fprintf(stderr, "\r%-110s", text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::OnStep(TrainingRun& run, const StepEvent& step) {
  last_ = step;
  const int width = 30;
  const int filled = step.num_batches > 0 ? static_cast<int>(width * step.batch / step.num_batches) : width;
  char line[256];
  std::snprintf(line, sizeof line, "epoch %d/%d [%s%s] %lld/%lld  train ppl %.3f  %.0f tok/s  ETA %s, run %s",
                step.epoch, run.config().train.epochs, std::string(filled, '#').c_str(),
                std::string(width - filled, ' ').c_str(), static_cast<long long>(step.batch),
                static_cast<long long>(step.num_batches), std::exp(step.running_loss), step.tokens_per_s,
                FormatDuration(step.eta_epoch_s).c_str(), FormatDuration(step.eta_run_s).c_str());
  Draw(line);
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r%110s\r", "");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::OnLog(TrainingRun&, const StepEvent&) { Clear(); }  // the log line follows; the next step redraws

void ProgressBar::OnActivity(TrainingRun& run, std::string_view activity) {
  if (activity.empty()) {
    Clear();
    return;
  }
  Draw("epoch " + std::to_string(last_.epoch) + "/" + std::to_string(run.config().train.epochs) + "  " +
       std::string(activity) + "...");
}

void ProgressBar::OnEvalBegin(TrainingRun& run) { OnActivity(run, "validating"); }
void ProgressBar::OnEval(TrainingRun&, const EvalEvent&) { Clear(); }
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

HandlerList StandardHandlers(const Config& config, const TrainEnvironment& hooks) {
  HandlerList handlers;
  // First, and locked here: the lock comes before any file is written and any line is logged.
  handlers.push_back(std::make_unique<OutDirGuard>(config.train.out_dir));
  if (hooks.progress_bar) handlers.push_back(std::make_unique<ProgressBar>());
  handlers.push_back(std::make_unique<BaselineReporter>());
  handlers.push_back(std::make_unique<ConfigWriter>());
  handlers.push_back(std::make_unique<Budget>());
  handlers.push_back(std::make_unique<Checkpointer>());
  handlers.push_back(std::make_unique<ProgressLogger>());
  handlers.push_back(std::make_unique<EpochLogger>());
  handlers.push_back(std::make_unique<MetricsWriter>());
  handlers.push_back(std::make_unique<SamplePrinter>(hooks.stop_requested));
  handlers.push_back(std::make_unique<ReportWriter>(hooks.stop_requested));  // after the metrics row and samples it shows
  handlers.push_back(std::make_unique<EarlyStopping>());
  return handlers;
}

}  // namespace charlm
