// One training run's state: the data, model, optimizer, sampler, carried hidden state and position, built fresh
// or restored from a checkpoint, and written back as one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "format/checkpoint.h"
#include "config/config.h"
#include "generate/generate.h"
#include "text/corpus.h"
#include "text/dataset.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "text/sampler.h"

namespace charlm {

// Seeds derived from the run seed, one stream per purpose, so each is reproducible on its own.
inline constexpr std::uint64_t kDropoutStream = 1;
inline constexpr std::uint64_t kGenerateStream = 2;

// Where training stands; saved in every checkpoint as JSON so a resumed run continues bit for bit.
struct Progress {
  int epochs_completed = 0;      // whole epochs done
  std::int64_t next_batch = 0;   // first batch of epoch `epochs_completed` still to run (0 at an epoch boundary)
  double partial_loss_sum = 0;   // loss * tokens summed over the batches of the unfinished epoch
  std::int64_t partial_tokens = 0;
  std::int64_t global_step = 0;  // optimizer steps so far: seeds dropout masks
  std::optional<double> best_score;  // best validation perplexity (training perplexity without a validation split)
  int epochs_since_best = 0;
  double elapsed_seconds = 0;  // wall time of the whole run up to this point, summed across resumes

  nlohmann::json ToJson() const;
  // UserError naming `source` when a field is missing, mistyped or out of range. elapsed_seconds may be absent
  // (checkpoints written before it was kept): it then starts from 0.
  static Progress FromJson(const nlohmann::json& j, const std::string& source);
};

// The streams of train.batch_size this process trains: all of them, or a data-parallel worker's contiguous block.
struct StreamShard {
  int first = 0;
  int count = 0;  // 0 = all of train.batch_size
};

// The corpus as a run of this config and shard reads it: all of it (LoadDataset), or a share (LoadDatasetShare).
using DatasetLoader = std::function<Dataset(const Config&, StreamShard)>;

// Why a run stopped before train.epochs: set by whoever asks (a signal, early stopping, a budget).
enum class StopReason { kNone, kSignal, kEarlyStop, kBudget };

// "data.corpus=\"x.txt\", model.cell=\"gru\"": the keys of `config` whose values differ from the defaults, in
// key order, for a start-of-run line that stays readable.
std::string DifferencesFromDefaults(const Config& config);

// `train --init-from CKPT`: the checkpoint a new run starts from, its weights and vocabulary (which reads the corpus).
struct InitialWeights {
  std::string path;
  Vocab vocab;
  std::vector<float> params;  // (layout total) of the config's model, which has the checkpoint's architecture
};

// In a fine-tuning run's checkpoints (trainer_state): the checkpoint it started from. Its corpus is read with
// the checkpoint's vocabulary, not one built from the text (LoadRunCorpus).
inline constexpr const char* kInitFromKey = "init_from";

// In a checkpoint's trainer_state: the corpus's manifest (ManifestToJson), which a resumed run compares with what
// it reads (absent when the run read only a share of the corpus, under mpirun).
inline constexpr const char* kCorpusManifestKey = "corpus_manifest";

// How the corpus read now differs from the one a checkpoint's trainer_state (named `source` in errors) recorded, in
// words (ManifestDifference), or "" when it is the same or either side has no manifest.
std::string CorpusChange(const Dataset& data, const nlohmann::json& trainer_state, const std::string& source);

// Reads data.corpus as ids of `vocab` (fine-tuning keeps a checkpoint's vocabulary), then splits it. Characters
// outside it are, by data.unknown, an error naming the first 20 and the count ("error"), or left out, said on the
// log ("skip"); data.max_chars and data.min_freq do not apply (the vocabulary is given).
Dataset LoadDatasetWithVocab(const DataConfig& data, const Vocab& vocab);

class TrainingRun {
 public:
  // Checks everything a user can get wrong (resume compatibility, a finished run, corpus length, prefixes, out_dir,
  // memory) before the first file is written, then builds or restores the run. Logs nothing (see LogStart).
  // With a partial `shard`, state() holds only the shard's streams; a resumed checkpoint's carried state (every
  // stream) is cut down to them, and Save() writes the every-stream state last given to SetCarriedStateOfAll().
  // `load` gives the corpus (LoadDataset when empty); a data-parallel worker's reads only its share.
  TrainingRun(const Config& config, const std::string& resume_path, StreamShard shard = {},
              const DatasetLoader& load = {});

  // The config, where it resumes and the corpus, in three lines: called once out_dir is locked, so that no line
  // of a run that cannot start comes before its error.
  void LogStart() const;

  const Config& config() const { return config_; }
  const Dataset& data() const { return data_; }
  IdView val_ids() const { return data_.Validation(); }
  Sampler& sampler() { return sampler_; }
  CharModel<float>& model() { return model_; }
  const CharModel<float>& model() const { return model_; }
  Optimizer& optimizer() { return optimizer_; }
  RecurrentState<float>& state() { return state_; }  // (L, shard().count, H)
  const StreamShard& shard() const { return shard_; }
  bool owns_all_streams() const { return shard_.count == config_.train.batch_size; }
  // The carried state of every stream, [h (L, B, H), c (L, B, H) for LSTM], gathered from the workers for Save().
  void SetCarriedStateOfAll(std::vector<float> carried) { carried_of_all_ = std::move(carried); }
  Progress& progress() { return progress_; }
  const Progress& progress() const { return progress_; }
  bool resumed() const { return !resume_path_.empty(); }
  const std::string& resume_path() const { return resume_path_; }
  // The resumed checkpoint's own train.out_dir (where it was saved), or "" for a fresh run.
  const std::string& saved_out_dir() const { return saved_out_dir_; }
  // The safetensors file a resumed checkpoint was imported from (kImportedFromKey), or "": such a run fine-tunes
  // weights, a new run from epoch 1, rather than continuing one.
  const std::string& imported_from() const { return imported_from_; }
  std::string last_checkpoint_path() const;
  std::string best_checkpoint_path() const;

  // Seconds of training in this run so far, including the time before the resumed checkpoint.
  double ElapsedSeconds() const;
  // The resumed checkpoint's elapsed_seconds (0 for a fresh run): where the time-based cosine schedule goes on.
  double ElapsedBeforeResume() const { return elapsed_before_; }

  // Updates the best score (lower is better) and the count since the best; true when `score` is a new best.
  bool RecordScore(double score);

  // A new run's weights from another run's checkpoint (train --init-from): UserError when the sizes differ. The
  // optimizer stays fresh; the log and metrics.jsonl name the checkpoint.
  void StartFrom(const InitialWeights& init);
  const std::string& init_from() const { return init_from_; }

  // The start's Kneser-Ney baseline over the whole validation split (BaselineReporter), for the end's verdict.
  void set_baseline_val_perplexity(double perplexity) { baseline_val_perplexity_ = perplexity; }
  std::optional<double> baseline_val_perplexity() const { return baseline_val_perplexity_; }

  // Writes a checkpoint of the current position, atomically. UserError (saying which checkpoint is kept) when the
  // weights are not finite: an update can overflow them after a finite loss, and a NaN checkpoint is never written.
  void Save(const std::string& path);

  // What a failure leaves behind, said exactly, for error messages: a last.ckpt in out_dir may be an earlier run's.
  std::string KeptCheckpointNote() const;
  // Where OutDirGuard moved an earlier run's files (out_dir/previous), for KeptCheckpointNote.
  void set_earlier_run_folder(std::string folder) { earlier_run_folder_ = std::move(folder); }

  // The first request wins; `detail` says which budget ran out ("train.max_steps 500"), for the user.
  void RequestStop(StopReason reason, std::string detail = "") {
    if (stop_reason_ != StopReason::kNone) return;
    stop_reason_ = reason;
    stop_detail_ = std::move(detail);
  }
  // The one poll of the user's stop request, wherever the run may wait (after a step, while validating, sampling
  // or charting): asks `stop_requested` (none: nothing asks) and records a signal stop when it says so. True when
  // the run is stopping for a signal, asked now or before.
  bool PollStopSignal(const std::function<bool()>& stop_requested) {
    if (stop_requested && stop_requested()) RequestStop(StopReason::kSignal);
    return stop_reason_ == StopReason::kSignal;
  }
  StopReason stop_reason() const { return stop_reason_; }
  const std::string& stop_detail() const { return stop_detail_; }

  // Tells the handlers that something long starts ("sampling"), or that it ended (empty), so a progress bar can
  // say so instead of freezing. The loop sets the listener.
  void Announce(std::string_view activity) const {
    if (activity_listener_) activity_listener_(activity);
  }
  void set_activity_listener(std::function<void(std::string_view)> listener) {
    activity_listener_ = std::move(listener);
  }

 private:
  // Declared in construction order: each member's initializer runs the checks the next one relies on.
  Config config_;
  StreamShard shard_;
  std::string resume_path_;
  std::optional<CheckpointData> resume_;  // the checkpoint resumed from; released once restored
  Dataset data_;
  Sampler sampler_;
  CharModel<float> model_;
  Optimizer optimizer_;
  RecurrentState<float> state_;  // (L, shard_.count, H) carried between consecutive batches
  std::vector<float> carried_of_all_;  // partial shard: every stream's carried state, for Save()
  Progress progress_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  double elapsed_before_ = 0;  // the resumed checkpoint's elapsed_seconds
  std::string saved_out_dir_;
  std::string imported_from_;
  std::string earlier_run_folder_;
  bool saved_this_run_ = false;
  StopReason stop_reason_ = StopReason::kNone;
  std::string stop_detail_;
  std::optional<double> baseline_val_perplexity_;
  std::string init_from_;
  nlohmann::json manifest_json_;  // the corpus manifest as checkpoints store it, made at the first save
  std::function<void(std::string_view)> activity_listener_;
};

class Workers;

// What the process around a run provides: stop requests, what the terminal is, the workers of a job. (The run's own
// extension points are its handlers, lib/run/handler.h.)
// A checkpoint's corpus as its run read it: with the checkpoint's vocabulary when the run was a fine-tuning one
// (kInitFromKey in trainer_state), else with the vocabulary built from the text (LoadDataset).
Dataset LoadRunCorpus(const Config& config, const Vocab& vocab, const nlohmann::json& trainer_state);

struct TrainEnvironment {
  std::function<bool()> stop_requested;  // polled after every step; true = save last.ckpt and return
  bool progress_bar = false;              // redraw a bar on stderr (a terminal); otherwise log lines only
  bool stdout_is_terminal = false;        // decides train.log_every_seconds's default (ResolvedLogSeconds)
  // The processes of a data-parallel job (lib/parallel/workers.h; borrowed): each trains its block of the batch's
  // streams and rank 0 alone writes files and prints. Null = one process.
  Workers* workers = nullptr;
  // Called once every check has passed, right before the first step: from then on a stop saves last.ckpt.
  std::function<void()> loop_started;
  // Borrowed; null = the model starts from its initializer (or the resumed checkpoint).
  const InitialWeights* init = nullptr;
  // The corpus as the caller already read it (train --minutes's plan reads it to size the model), with the data
  // section it was read with: one process takes it instead of reading the text a second time (seconds for a
  // source tree's archive) when its data section is the same. Null = the run reads the corpus.
  std::shared_ptr<Dataset> preloaded;
  nlohmann::json preloaded_data;
};

struct TrainOutcome {
  int epochs_completed = 0;
  double train_perplexity = 0;
  std::optional<double> val_perplexity;
  std::optional<double> best_val_perplexity;
  bool early_stopped = false;
  bool interrupted = false;  // stop_requested fired; last.ckpt holds the exact position
  bool budget_reached = false;  // train.max_steps or train.max_minutes ran out; last.ckpt holds the exact position
  std::string budget;           // which, for the user: "train.max_steps 500" or "train.max_minutes 60"
  std::string last_checkpoint;
  // By validation perplexity, or by training perplexity without a validation split; empty when out_dir has no
  // best.ckpt (a run resumed into another folder, its best epoch before the checkpoint, whose best.ckpt was not
  // there to copy): the outcome never names a file that is not on disk.
  std::string best_checkpoint;
  std::string sample_prefix;    // a prefix in this vocabulary to suggest for `charlm generate` (SuggestedPrefix)
  // What the end of the run says about the figure (EndOfTrainLines): the Kneser-Ney 5-gram's validation
  // perplexity printed at the start, when it scored the whole validation split (it scores at most
  // kMaxStartBaselineChars); how many validations came after the best one (0: the last was the best); and the
  // epoch of the best one when this invocation saw it (0: before a resume), 1-based, a budget's last partial
  // epoch counting as the next.
  std::optional<double> baseline_val_perplexity;
  int validations_since_best = 0;
  int best_epoch = 0;
  // out_dir/report.html when the run's last write of it succeeded (ReportWriter); empty when the page is missing
  // or stale, so the end of the run never advertises a page that was not written.
  std::string report_page;
};

// The trainer state of a run before its first step (epoch 0, batch 0, no best score), as a checkpoint stores it.
nlohmann::json InitialTrainerState();

// What `charlm import` writes: InitialTrainerState plus kImportedFromKey, the safetensors file. `train --resume` on
// such a checkpoint is fine-tuning: a new run from epoch 1 on its weights, which moves an earlier run in its out_dir
// aside as any new run does, and says so.
inline constexpr const char* kImportedFromKey = "imported_from";
nlohmann::json ImportedTrainerState(std::string_view safetensors_path);

}  // namespace charlm
