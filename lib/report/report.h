// `charlm report`: one self-contained HTML page (inline SVG, no JavaScript, no network) from a run's folder:
// learning curves, samples by epoch, the config, the model summary and continuations from best.ckpt; or several
// runs side by side: their wall time and parameter count, their validation and training curves overlaid.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace charlm {

// One row of metrics.jsonl. "kind" is "epoch" (also for rows written before kinds existed), "log" or "eval".
struct MetricsRow {
  std::string kind = "epoch";
  int epoch = 0;
  std::optional<std::int64_t> step;
  // log rows: how far into `epoch` they were taken; eval rows get it from their step (ParseMetrics)
  std::optional<double> epoch_fraction;
  std::optional<double> train_perplexity, val_perplexity, learning_rate, tokens_per_s, grad_norm, elapsed_s;
  // Where the row sits on an epoch axis: its epoch, or epoch - 1 + epoch_fraction within one.
  double EpochPosition() const;
};

// The "format" of the rows of samples.jsonl that charlm writes: {"format": 2, "epoch", "prefix", "text"}, text
// being the continuation alone (as in `charlm generate --json`). Rows without "format" (before 2) had the prefix
// at the start of text.
inline constexpr int kSamplesFormat = 2;

// A sample printed during training: one line of out_dir/samples.jsonl.
struct SampleRow {
  int epoch = 0;
  std::string prefix;  // as configured
  std::string text;    // the continuation; for an older row whose text does not start with its prefix, that whole text
  bool text_has_prefix = false;  // that older row: the page shows text alone
};

// What a run's folder holds, read leniently (a half-written last line, a row of the wrong shape, are skipped).
struct RunData {
  std::string dir;
  std::string name;  // the folder's name, for legends
  std::vector<MetricsRow> rows;
  std::vector<SampleRow> samples;
  std::optional<nlohmann::json> config;    // config.json, else best.ckpt's or last.ckpt's config
  std::optional<nlohmann::json> baseline;  // baseline.json: {"order", "val_perplexity", "val_bpc"}
  std::optional<nlohmann::json> info;      // run_info.json: corpus, split sizes, parameters, machine, version
  bool has_best_checkpoint = false;         // best.ckpt is in dir: only then do the charts label the best "best.ckpt"
  std::string init_from;                    // the checkpoint a fine-tuning run started from (train --init-from)
};

// What ParseMetrics passed over: lines that are not a JSON row with a whole-number epoch, and perplexities below 1
// or not finite (dropped from their row), each counted with the first line (from 1) it was on.
struct MetricsSkips {
  int lines = 0, first_line = 0;
  int values = 0, first_value_line = 0;
};

// Rows in step order, each (kind, step or epoch) once: a later row replaces an earlier one, so a run resumed
// mid-way that repeats a stretch never shows a point twice. `skipped`, when given, counts what was passed over.
// `init_from`, when given, receives the checkpoint named by the "init" row (a `train --init-from` run's first).
std::vector<MetricsRow> ParseMetrics(std::string_view jsonl, MetricsSkips* skipped = nullptr,
                                     std::string* init_from = nullptr);
std::vector<SampleRow> ParseSamples(std::string_view jsonl);

// UserError when dir is not a folder holding metrics.jsonl.
RunData LoadRun(const std::string& dir);

// Extra figures a report can show that need the model: the summary table and a continuation of each prefix.
struct ModelFigures {
  std::string summary_table;
  std::int64_t vocab_size = 0, parameters = 0;
  std::vector<std::pair<std::string, std::string>> continuations;  // prefix, its continuation (or why there is none)
  std::string checkpoint;                                           // which checkpoint they came from
};
// From best.ckpt in dir (std::nullopt when there is none yet); seed 0 and the checkpoint's generate settings.
// stop_requested true ends a continuation at once (a training run's stop signal), which then says so.
std::optional<ModelFigures> ComputeModelFigures(const std::string& dir, const std::function<bool()>& stop_requested = {});

struct ReportOptions {
  bool live = false;  // the run is still training: the page reloads itself every 30 s (an HTML meta refresh)
};
std::string RenderRunReport(const RunData& run, const std::optional<ModelFigures>& figures,
                            const ReportOptions& options = {});
std::string RenderComparison(const std::vector<RunData>& runs);

// {"corpus", "corpus_chars", "vocab_size", "train_chars", "val_chars", "test_chars", "parameters", "threads",
// "machine", "charlm_version"}: written by a training run as out_dir/run_info.json.
std::string MachineDescription();

struct ReportCommand {
  std::vector<std::string> run_dirs;
  std::string out;  // default: RUN_DIR/report.html for one run; required for several
  bool force = false;  // replace an existing file that is not an HTML page (never a run's file or input)
};
// Writes the page and prints its path.
void RunReport(const ReportCommand& command, std::ostream& out);

}  // namespace charlm
