// Builds a training run from a config, fresh or from a checkpoint, after checking what a user can get wrong.
#include "run/run_state.h"

#include "run/out_dir.h"
#include "model/model_memory.h"
#include "model/restore.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <type_traits>

#include "ops/bf16_gemm.h"
#include "ops/blas.h"
#include "text/corpus.h"
#include "util/errors.h"
#include "generate/generate.h"
#include "util/json_parse.h"
#include "util/utf8.h"
#include "text/vocab.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

bool IsResumableKey(const std::string& key) {
  const std::vector<std::string>& keys = ResumableConfigKeys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

void CheckResumeCompatible(const Config& checkpoint_config, const Config& config, const std::string& source) {
  const std::map<std::string, nlohmann::json> saved = ConfigValues(checkpoint_config);
  std::map<std::string, nlohmann::json> wanted = ConfigValues(config);
  for (const auto& [key, value] : saved) {
    if (IsResumableKey(key) || wanted[key] == value) continue;
    throw UserError("--resume " + source + ": " + key + " is " + value.dump() + " in the checkpoint but " +
                    wanted[key].dump() + " in the config: resume with the checkpoint's value, or start a new run");
  }
}

void CheckVocabMatches(const Vocab& saved, const Vocab& rebuilt, const std::string& source, const std::string& corpus) {
  if (saved == rebuilt) return;
  std::string detail = std::to_string(saved.size()) + " characters in the checkpoint, " +
                       std::to_string(rebuilt.size()) + " from the corpus";
  bool named = false;
  for (int id = 0; id < std::min(saved.size(), rebuilt.size()); ++id) {
    if (saved.TokenText(id) != rebuilt.TokenText(id)) {
      detail += "; id " + std::to_string(id) + " is '" + saved.TokenText(id) + "' in the checkpoint but '" +
                rebuilt.TokenText(id) + "' now";
      named = true;
      break;
    }
  }
  // The same characters under the same ids can still differ in how often they occur: say so, or the message
  // ("404 characters in the checkpoint, 404 from the corpus") names no difference at all.
  for (int id = 0; !named && id < std::min(saved.size(), rebuilt.size()); ++id) {
    if (saved.counts()[id] != rebuilt.counts()[id]) {
      detail += "; the same characters, but their counts differ: '" + saved.TokenText(id) + "' occurs " +
                std::to_string(saved.counts()[id]) + " times in the checkpoint's text, " +
                std::to_string(rebuilt.counts()[id]) + " times now";
      named = true;
    }
  }
  throw UserError("--resume " + source + ": the vocabulary of " + corpus + " differs from the checkpoint's (" +
                  detail + "): resume on the same text with the same data settings, or start a new run");
}

// Fails before any training when out_dir cannot take files (missing permissions, read-only, full).
void ProbeOutputDir(const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    throw UserError("train.out_dir \"" + out_dir + "\" cannot be created (" + ec.message() +
                    "): choose a writable folder with --set train.out_dir=PATH");
  }
  const fs::path probe = fs::path(out_dir) / (".charlm_write_probe." + std::to_string(::getpid()));
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  const bool ok = f != nullptr && std::fputs("probe", f) >= 0 && std::fflush(f) == 0;
  if (f != nullptr) std::fclose(f);
  fs::remove(probe, ec);
  if (!ok) {
    throw UserError("train.out_dir \"" + out_dir + "\" is not writable: choose a writable folder with --set train.out_dir=PATH");
  }
}

// The checkpoint to resume from, checked against the config; also sets the threads. Logs nothing: the start of
// the run is logged once every check has passed and out_dir is locked (TrainingRun::LogStart).
std::optional<CheckpointData> OpenResume(const Config& config, const std::string& resume_path) {
  std::optional<CheckpointData> resume;
  if (!resume_path.empty()) {
    resume = LoadCheckpoint(resume_path);
    Config saved;
    try {
      saved = ConfigFromJson(resume->config);
    } catch (const UserError& e) {
      throw UserError("--resume " + resume_path + ": the checkpoint's config is unreadable (" + EscapeControlChars(e.what()) +
                      "): start a new run or use another checkpoint");
    }
    CheckResumeCompatible(saved, config, resume_path);
    const Progress progress = Progress::FromJson(resume->trainer_state, resume_path);
    // A finished run has nothing to train: an error before out_dir is touched, not a run that writes a report and
    // claims a best.ckpt it never saved.
    if (progress.epochs_completed >= config.train.epochs) {
      throw UserError("--resume " + resume_path + ": the run is already complete (" +
                      std::to_string(progress.epochs_completed) +
                      (progress.epochs_completed == 1 ? " epoch" : " epochs") + " done, train.epochs is " +
                      std::to_string(config.train.epochs) + "), so nothing was trained or written: to train on, " +
                      "resume with --set train.epochs=N for an N above " + std::to_string(progress.epochs_completed));
    }
    if (config.train.max_steps > 0 && progress.global_step >= config.train.max_steps) {
      throw UserError("--resume " + resume_path + ": the run has already taken " +
                      std::to_string(progress.global_step) + " steps and train.max_steps is " +
                      std::to_string(config.train.max_steps) + ", so nothing was trained or written: to train on, " +
                      "resume with --set train.max_steps=N for an N above " + std::to_string(progress.global_step) +
                      " (or 0 for no limit)");
    }
  }
  RequirePrecision(config.train.precision, "train.precision", "train in fp32 with --set train.precision=fp32");
  SetBlasThreads(config.train.threads);
  return resume;
}

// The corpus, checked against the checkpoint's vocabulary, the batch shape and the prefixes.
Dataset LoadCheckedData(const Config& config, const std::optional<CheckpointData>& resume,
                        const std::string& resume_path, StreamShard shard, const DatasetLoader& load) {
  // Before the corpus is read: a corpus folder holding out_dir would read the run's own files.
  for (const std::string& path : config.data.corpus.paths) CheckCorpusOutsideRunFiles(path, config.train.out_dir);
  const TrainConfig& tc = config.train;
  Dataset data = load                ? load(config, shard)
                 : resume.has_value() ? LoadRunCorpus(config, Vocab::FromJson(resume->vocab), resume->trainer_state)
                                      : LoadDataset(config.data);
  if (resume) CheckVocabMatches(Vocab::FromJson(resume->vocab), data.vocab, resume_path, config.data.corpus.Label());
  if (resume) {
    const std::string difference = CorpusChange(data, resume->trainer_state, resume_path);
    if (!difference.empty() && !config.data.allow_changed_corpus) {
      throw UserError("--resume " + resume_path + ": the corpus " + config.data.corpus.Label() +
                      " changed since the checkpoint was written (" + difference +
                      "): resume on the text the run trained on, or go on with this one with --set "
                      "data.allow_changed_corpus=true");
    }
    if (!difference.empty()) {
      spdlog::warn("the corpus {} changed since the checkpoint was written ({}); going on with it "
                   "(data.allow_changed_corpus)", config.data.corpus.Label(), difference);
    }
  }
  const std::int64_t needed = Sampler::MinimumLength(tc.sampler, tc.batch_size, tc.num_steps, tc.random_offset);
  if (data.train_chars() < needed) {
    throw UserError("the training split of " + config.data.corpus.Label() + " has " + std::to_string(data.train_chars()) +
                    " characters, but train.batch_size " + std::to_string(tc.batch_size) + " x train.num_steps " +
                    std::to_string(tc.num_steps) + " needs at least " + std::to_string(needed) +
                    ": lower train.batch_size or train.num_steps, lower data.val_fraction/test_fraction, or use more text");
  }
  for (const std::string& prefix : config.generate.prefixes) {
    if (config.generate.every > 0) {
      EncodeText(data.vocab, DecodeText(prefix, config.data.newline, "generate.prefixes"),
                 UnknownPolicy::kError, "generate.prefixes entry \"" + EscapeControlChars(prefix) + "\"",
                 "change generate.prefixes in the config (or with --set generate.prefixes=...) to text from the corpus");
    }
  }
  return data;
}

// The model's sizes, checked against the machine's memory; then out_dir, the last check, so that a run refused
// for any reason leaves no folder behind.
ModelSpec CheckedModelSpec(const Config& config, const Dataset& data) {
  ModelSpec spec = MakeModelSpec(config.model, data.vocab.size());
  CheckModelFitsInMemory(spec);
  CheckStepFitsInMemory(spec, config.train.batch_size, config.train.num_steps);
  ProbeOutputDir(config.train.out_dir);  // an earlier run's files are moved aside later, under the lock (run/out_dir.h)
  return spec;
}

}  // namespace

std::string DifferencesFromDefaults(const Config& config) {
  const std::map<std::string, nlohmann::json> wanted = ConfigValues(config);
  std::map<std::string, nlohmann::json> defaults = ConfigValues(Config{});
  std::string text;
  for (const auto& [key, value] : wanted) {
    if (defaults[key] == value) continue;
    text += (text.empty() ? "" : ", ") + key + "=" + value.dump();
  }
  return text.empty() ? "the defaults" : text;
}

nlohmann::json Progress::ToJson() const {
  return {{"epochs_completed", epochs_completed}, {"next_batch", next_batch}, {"partial_loss_sum", partial_loss_sum},
          {"partial_tokens", partial_tokens},     {"global_step", global_step},
          {"best_score", best_score ? nlohmann::json(*best_score) : nlohmann::json(nullptr)},
          {"epochs_since_best", epochs_since_best}, {"elapsed_seconds", elapsed_seconds}};
}

Progress Progress::FromJson(const nlohmann::json& j, const std::string& source) {
  try {
    // A valid CRC says the bytes are as written, not that a writer wrote sense: every field is range-checked.
    auto bad = [](const std::string& field, const std::string& value, const std::string& expected) {
      throw UserError(field + " is " + value + ", expected " + expected);
    };
    // Counts are whole numbers from 0 to the field's maximum, checked before the narrowing a plain get<> does.
    auto count = [&](const char* field, auto& target) {
      using Int = std::remove_reference_t<decltype(target)>;
      const nlohmann::json& value = j.at(field);
      const std::optional<Int> number = ExactInteger<Int>(value);
      if (!number || *number < 0) {
        bad(field, value.is_number() ? value.dump() : std::string("a ") + value.type_name(),
            "a whole number from 0 to " + std::to_string(std::numeric_limits<Int>::max()));
      }
      target = *number;
    };
    Progress p;
    count("epochs_completed", p.epochs_completed);
    count("next_batch", p.next_batch);
    p.partial_loss_sum = j.at("partial_loss_sum").get<double>();
    count("partial_tokens", p.partial_tokens);
    count("global_step", p.global_step);
    if (!j.at("best_score").is_null()) p.best_score = j.at("best_score").get<double>();
    count("epochs_since_best", p.epochs_since_best);
    if (j.contains("elapsed_seconds")) p.elapsed_seconds = j.at("elapsed_seconds").get<double>();
    if (!(p.partial_loss_sum >= 0) || !std::isfinite(p.partial_loss_sum)) {
      bad("partial_loss_sum", nlohmann::json(p.partial_loss_sum).dump(), "a finite number >= 0");
    }
    if (p.best_score && (!(*p.best_score >= 1) || !std::isfinite(*p.best_score))) {
      bad("best_score", nlohmann::json(*p.best_score).dump(), "a perplexity, a finite number >= 1");
    }
    if (!(p.elapsed_seconds >= 0) || !std::isfinite(p.elapsed_seconds)) {
      bad("elapsed_seconds", nlohmann::json(p.elapsed_seconds).dump(), "a finite number >= 0");
    }
    return p;
  } catch (const std::exception& e) {
    throw UserError(source + ": the checkpoint's training state is unreadable (" + EscapeControlChars(e.what()) +
                    "): it cannot be resumed; start a new run or use another checkpoint");
  }
}

TrainingRun::TrainingRun(const Config& config, const std::string& resume_path, StreamShard shard,
                         const DatasetLoader& load)
    : config_(config),
      shard_(shard.count == 0 ? StreamShard{0, config.train.batch_size} : shard),
      resume_path_(resume_path),
      resume_(OpenResume(config_, resume_path_)),
      data_(LoadCheckedData(config_, resume_, resume_path_, shard_, load)),
      sampler_(data_.TrainHeld(), data_.train_begin, data_.train_chars(), config_.train.sampler, config_.train.batch_size, config_.train.num_steps,
               config_.train.random_offset, config_.train.seed),
      model_(CheckedModelSpec(config_, data_)),
      optimizer_(config_.train.optimizer, model_.layout()),
      state_(model_.MakeState(shard_.count)) {
  assert(shard_.first >= 0 && shard_.count > 0 && shard_.first + shard_.count <= config_.train.batch_size);
  const TrainConfig& tc = config_.train;
  model_.Initialize(config_.model.init, tc.seed);
  model_.set_precision(tc.precision);  // before any workspace is made
  model_.set_engine(tc.engine);
  if (resume_) {
    progress_ = Progress::FromJson(resume_->trainer_state, resume_path_);
    if (resume_->params.size() != model_.params().size() ||
        resume_->optimizer_state.size() != optimizer_.state().size()) {
      throw UserError("--resume " + resume_path_ + ": the checkpoint holds " + std::to_string(resume_->params.size()) +
                      " parameters and " + std::to_string(resume_->optimizer_state.size()) +
                      " optimizer values, the config needs " + std::to_string(model_.params().size()) + " and " +
                      std::to_string(optimizer_.state().size()) + ": start a new run");
    }
    model_.params() = resume_->params;
    optimizer_.state() = resume_->optimizer_state;
    optimizer_.set_steps_taken(progress_.global_step);
    if (progress_.next_batch > 0 && tc.sampler == SamplerKind::kConsecutive) {
      // Saved for every stream, (L, B, H) for h and again for c: this shard's rows of each layer.
      const std::size_t streams = static_cast<std::size_t>(tc.batch_size), hidden = static_cast<std::size_t>(state_.hidden);
      const std::size_t layers = static_cast<std::size_t>(state_.num_layers);
      const std::size_t per_part = layers * streams * hidden;
      if (resume_->carried_state.size() != per_part * (state_.c.empty() ? 1 : 2)) {
        throw UserError("--resume " + resume_path_ + ": the carried hidden state has the wrong size: start a new run");
      }
      const std::size_t rows = static_cast<std::size_t>(shard_.count) * hidden;
      const std::size_t skip = static_cast<std::size_t>(shard_.first) * hidden;
      for (std::size_t l = 0; l < layers; ++l) {
        const float* saved_h = resume_->carried_state.data() + l * streams * hidden + skip;
        std::copy_n(saved_h, rows, state_.h.data() + l * rows);
        if (!state_.c.empty()) std::copy_n(saved_h + per_part, rows, state_.c.data() + l * rows);
      }
    }
    // The position must lie inside this run's epoch: a later batch, or a token count that is not its batches', is
    // a state no run of this config can have written.
    // (At next_batch 0 the partial sums are from the finished epoch and are reset before use.)
    const std::int64_t tokens_per_batch = static_cast<std::int64_t>(tc.batch_size) * tc.num_steps;
    sampler_.BeginEpoch(progress_.epochs_completed);  // the resumed epoch's layout, as the loop will lay it out
    if (progress_.next_batch > sampler_.num_batches() ||
        (progress_.next_batch > 0 && progress_.partial_tokens != progress_.next_batch * tokens_per_batch)) {
      throw UserError(resume_path_ + ": the checkpoint's training state is inconsistent (next_batch " +
                      std::to_string(progress_.next_batch) + " of " + std::to_string(sampler_.num_batches()) +
                      " batches, partial_tokens " + std::to_string(progress_.partial_tokens) + ", expected next_batch x " +
                      std::to_string(tokens_per_batch) + "): it cannot be resumed; start a new run or use another checkpoint");
    }
    elapsed_before_ = progress_.elapsed_seconds;
    const nlohmann::json& saved_train = resume_->config.contains("train") ? resume_->config["train"] : nlohmann::json();
    if (saved_train.is_object() && saved_train.contains("out_dir") && saved_train["out_dir"].is_string()) {
      saved_out_dir_ = saved_train["out_dir"].get<std::string>();
    }
    const nlohmann::json& state = resume_->trainer_state;
    if (state.is_object() && state.contains(kImportedFromKey) && state[kImportedFromKey].is_string()) {
      imported_from_ = state[kImportedFromKey].get<std::string>();
    }
    // A resumed fine-tuning run stays one: its later checkpoints read the corpus as it does.
    if (state.is_object() && state.contains(kInitFromKey) && state[kInitFromKey].is_string()) {
      init_from_ = state[kInitFromKey].get<std::string>();
    }
    resume_.reset();  // the weights are in the model now; do not keep a second copy
  }
}

std::string CorpusChange(const Dataset& data, const nlohmann::json& trainer_state, const std::string& source) {
  if (!trainer_state.is_object() || !trainer_state.contains(kCorpusManifestKey) || data.manifest.empty()) return "";
  return ManifestDifference(ManifestFromJson(trainer_state[kCorpusManifestKey], source), data.manifest);
}

Dataset LoadDatasetWithVocab(const DataConfig& data, const Vocab& vocab) {
  TextIds text = ReadTextIds(CorpusSource::Of(data), data.newline, vocab);
  const UnknownPolicy unknown = data.unknown == "skip" ? UnknownPolicy::kSkip : UnknownPolicy::kError;
  CheckUnknownChars(text.missing, unknown, data.corpus.Label(),
                    "remove them from the text, or pass --set data.unknown=skip to leave them out");
  if (!text.missing.empty()) {
    spdlog::warn("left out {} characters of {} outside the checkpoint's vocabulary: {}",
                 text.chars - static_cast<std::int64_t>(text.ids.size()), data.corpus.Label(), ListUnknownChars(text.missing));
  }
  Dataset dataset;
  dataset.manifest = std::move(text.notes.manifest);
  dataset.documents = text.notes.documents;
  dataset.skipped = text.notes.skipped;
  dataset.vocab = vocab;
  dataset.ids = std::move(text.ids);
  dataset.split = SplitCorpus(static_cast<std::int64_t>(dataset.ids.size()), data.val_fraction, data.test_fraction);
  return dataset;
}

Dataset LoadRunCorpus(const Config& config, const Vocab& vocab, const nlohmann::json& trainer_state) {
  if (trainer_state.is_object() && trainer_state.contains(kInitFromKey)) {
    return LoadDatasetWithVocab(config.data, vocab);
  }
  return LoadDataset(config.data);
}

void TrainingRun::StartFrom(const InitialWeights& init) {
  if (init.params.size() != model_.params().size()) {
    throw UserError("--init-from " + init.path + ": the checkpoint holds " + std::to_string(init.params.size()) +
                    " parameters, the model needs " + std::to_string(model_.params().size()) +
                    ": give the checkpoint's model settings, or start without --init-from");
  }
  model_.params() = init.params;
  init_from_ = init.path;
}

void TrainingRun::LogStart() const {
  spdlog::info("config: {} (all keys: {})", DifferencesFromDefaults(config_),
               (fs::path(config_.train.out_dir) / "config.json").string());
  if (!init_from_.empty()) {
    spdlog::info("fine-tuning from {}: its weights and vocabulary, a new run from epoch 1 with a fresh optimizer",
                 init_from_);
  }
  if (resumed() && !imported_from_.empty()) {
    spdlog::info("fine-tuning {}: its weights were imported from {} with no training state, so this is a new run "
                 "from epoch 1 with fresh optimizer moments", resume_path_, imported_from_);
  } else if (resumed()) {
    spdlog::info("resuming {} at epoch {}, batch {}", resume_path_, progress_.epochs_completed + 1,
                 progress_.next_batch);
  }
  spdlog::info("corpus {}: {} characters, vocabulary {}, train {} / validation {} / test {}; model {} parameters",
               config_.data.corpus.Label(), data_.corpus_chars(), data_.vocab.size(), data_.train_chars(), data_.val_chars(),
               data_.test_chars(), model_.params().size());
}

std::string TrainingRun::last_checkpoint_path() const {
  return (fs::path(config_.train.out_dir) / "last.ckpt").string();
}

std::string TrainingRun::best_checkpoint_path() const {
  return (fs::path(config_.train.out_dir) / "best.ckpt").string();
}

double TrainingRun::ElapsedSeconds() const {
  return elapsed_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

bool TrainingRun::RecordScore(double score) {
  if (!progress_.best_score || score < *progress_.best_score) {
    progress_.best_score = score;
    progress_.epochs_since_best = 0;
    return true;
  }
  ++progress_.epochs_since_best;
  return false;
}

std::string TrainingRun::KeptCheckpointNote() const {
  const std::string last_path = last_checkpoint_path();
  if (saved_this_run_) return "this run's last good checkpoint, " + last_path + ", is kept";
  if (resumed()) return "the checkpoint it resumed from, " + resume_path_ + ", is unchanged";
  if (!earlier_run_folder_.empty()) {
    // The earlier run may itself have ended before its first save (a diverged try, run again): name what is there.
    std::error_code ec;
    bool has_checkpoint = false;
    for (const char* name : {"last.ckpt", "best.ckpt"}) {
      has_checkpoint = has_checkpoint || std::filesystem::is_regular_file(std::filesystem::path(earlier_run_folder_) / name, ec);
    }
    return "no checkpoint of this run was saved (the earlier run's " +
           std::string(has_checkpoint ? "checkpoints are" : "files, none of them a checkpoint, are") + " in " +
           earlier_run_folder_ + ")";
  }
  return "no checkpoint was saved";
}

void TrainingRun::Save(const std::string& path) {
  for (float p : model_.params()) {
    if (!std::isfinite(p)) {
      throw UserError("training diverged before epoch " + std::to_string(progress_.epochs_completed + 1) +
                      " could be saved: the weights are not finite; lower train.optimizer.lr or set/lower "
                      "train.clip_norm; " + KeptCheckpointNote());
    }
  }
  saved_this_run_ = true;
  progress_.elapsed_seconds = ElapsedSeconds();
  CheckpointData ckpt;
  ckpt.config = ConfigToJson(config_);
  ckpt.vocab = data_.vocab.ToJson();
  ckpt.trainer_state = progress_.ToJson();
  if (!init_from_.empty()) ckpt.trainer_state[kInitFromKey] = init_from_;
  if (manifest_json_.is_null() && !data_.manifest.empty()) manifest_json_ = ManifestToJson(data_.manifest);
  if (!manifest_json_.is_null()) ckpt.trainer_state[kCorpusManifestKey] = manifest_json_;
  ckpt.params = model_.params();
  ckpt.optimizer_state = optimizer_.state();
  if (progress_.next_batch > 0 && config_.train.sampler == SamplerKind::kConsecutive) {
    if (owns_all_streams()) {
      ckpt.carried_state = state_.h;
      ckpt.carried_state.insert(ckpt.carried_state.end(), state_.c.begin(), state_.c.end());
    } else {
      assert(carried_of_all_.size() == state_.h.size() / static_cast<std::size_t>(shard_.count) *
                                           static_cast<std::size_t>(config_.train.batch_size) *
                                           (state_.c.empty() ? 1 : 2));
      ckpt.carried_state = carried_of_all_;
    }
  }
  SaveCheckpoint(path, ckpt);
}

nlohmann::json InitialTrainerState() { return Progress{}.ToJson(); }

nlohmann::json ImportedTrainerState(std::string_view safetensors_path) {
  nlohmann::json state = InitialTrainerState();
  state[kImportedFromKey] = std::string(safetensors_path);
  return state;
}

}  // namespace charlm
