// The training loop and everything around it: metrics.jsonl, last/best checkpoints, resume, early stopping.
#include "trainer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "blas.h"
#include "checkpoint.h"
#include "corpus.h"
#include "dataset.h"
#include "errors.h"
#include "evaluate.h"
#include "generate.h"
#include "model.h"
#include "optimizer.h"
#include "rng.h"
#include "sampler.h"
#include "utf8.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Seeds derived from the run seed, one stream per purpose, so each is reproducible on its own.
constexpr std::uint64_t kDropoutStream = 1;
constexpr std::uint64_t kGenerateStream = 2;

// Where training stands; saved in every checkpoint as JSON so a resumed run continues bit for bit.
struct Progress {
  int epochs_completed = 0;      // whole epochs done
  std::int64_t next_batch = 0;   // first batch of epoch `epochs_completed` still to run (0 at an epoch boundary)
  double partial_loss_sum = 0;   // loss * tokens summed over the batches of the unfinished epoch
  std::int64_t partial_tokens = 0;
  std::int64_t global_step = 0;  // optimizer steps so far: seeds dropout masks
  std::optional<double> best_score;  // best validation perplexity (training perplexity without a validation split)
  int epochs_since_best = 0;

  nlohmann::json ToJson() const {
    return {{"epochs_completed", epochs_completed}, {"next_batch", next_batch}, {"partial_loss_sum", partial_loss_sum},
            {"partial_tokens", partial_tokens},     {"global_step", global_step},
            {"best_score", best_score ? nlohmann::json(*best_score) : nlohmann::json(nullptr)},
            {"epochs_since_best", epochs_since_best}};
  }
  static Progress FromJson(const nlohmann::json& j, const std::string& source) {
    try {
      Progress p;
      p.epochs_completed = j.at("epochs_completed").get<int>();
      p.next_batch = j.at("next_batch").get<std::int64_t>();
      p.partial_loss_sum = j.at("partial_loss_sum").get<double>();
      p.partial_tokens = j.at("partial_tokens").get<std::int64_t>();
      p.global_step = j.at("global_step").get<std::int64_t>();
      if (!j.at("best_score").is_null()) p.best_score = j.at("best_score").get<double>();
      p.epochs_since_best = j.at("epochs_since_best").get<int>();
      if (p.epochs_completed < 0 || p.next_batch < 0 || p.partial_tokens < 0 || p.global_step < 0) {
        throw UserError("negative counter");
      }
      return p;
    } catch (const std::exception& e) {
      throw UserError(source + ": the checkpoint's training state is unreadable (" + e.what() +
                      "): it cannot be resumed; start a new run or use another checkpoint");
    }
  }
};

// Flattens {"a": {"b": 1}} to {"a.b": 1} for comparing configs key by key.
void Flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      Flatten(value, path, out);
    } else {
      out[path] = value;
    }
  }
}

bool IsResumableKey(const std::string& key) {
  for (const std::string& allowed : ResumableConfigKeys()) {
    if (key == allowed || (allowed.ends_with(".*") && key.starts_with(allowed.substr(0, allowed.size() - 1)))) {
      return true;
    }
  }
  return false;
}

void CheckResumeCompatible(const Config& checkpoint_config, const Config& config, const std::string& source) {
  std::map<std::string, nlohmann::json> saved, wanted;
  Flatten(ConfigToJson(checkpoint_config), "", saved);
  Flatten(ConfigToJson(config), "", wanted);
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
  for (int id = 0; id < std::min(saved.size(), rebuilt.size()); ++id) {
    if (saved.TokenText(id) != rebuilt.TokenText(id)) {
      detail += "; id " + std::to_string(id) + " is '" + saved.TokenText(id) + "' in the checkpoint but '" +
                rebuilt.TokenText(id) + "' now";
      break;
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

std::string FormatNumber(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

std::string FormatPerplexity(std::optional<double> ppl) {
  if (!ppl) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", *ppl);
  return buf;
}

void DrawProgress(int epoch, int epochs, std::int64_t done, std::int64_t total, double loss_sum, std::int64_t tokens) {
  const int width = 30;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\repoch %d/%d [%s%s] %lld/%lld  train ppl %.3f   ", epoch, epochs, std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), static_cast<long long>(done), static_cast<long long>(total),
               tokens > 0 ? std::exp(loss_sum / tokens) : 0.0);
  std::fflush(stderr);
}

void ClearProgress() {
  std::fprintf(stderr, "\r%80s\r", "");
  std::fflush(stderr);
}

// Keeps the metrics of epochs 1..epochs_completed when resuming; starts the file afresh otherwise.
void PrepareMetricsFile(const fs::path& path, int epochs_completed) {
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

}  // namespace

const std::vector<std::string>& ResumableConfigKeys() {
  static const std::vector<std::string> keys = {"train.epochs",         "train.patience", "train.eval_every",
                                                "train.checkpoint_every", "train.out_dir",  "train.threads",
                                                "generate.*"};
  return keys;
}

void CheckModelFitsInMemory(const ModelSpec& spec) {
  const std::size_t params = ParamLayout(spec).total();  // the layout the model would allocate, without allocating
  // Parameters, gradients and up to two optimizer moments: four floats each, before any activation.
  const double needed_gb = 4.0 * sizeof(float) * static_cast<double>(params) / 1e9;
  const double machine_gb =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  if (machine_gb > 0 && needed_gb > machine_gb) {
    char message[400];
    std::snprintf(message, sizeof message,
                  "the model has %lld parameters, which with gradients and optimizer state need %.1f GB, more than "
                  "this machine's %.1f GB of memory: make model.hidden_size, model.num_layers or model.embedding_size "
                  "smaller",
                  static_cast<long long>(params), needed_gb, machine_gb);
    throw UserError(message);
  }
}

TrainOutcome Train(const Config& config, const std::string& resume_path, const TrainHooks& hooks) {
  const TrainConfig& tc = config.train;
  std::optional<CheckpointData> resume;
  if (!resume_path.empty()) {
    resume = LoadCheckpoint(resume_path);
    Config saved;
    try {
      saved = ConfigFromJson(resume->config);
    } catch (const UserError& e) {
      throw UserError("--resume " + resume_path + ": the checkpoint's config is unreadable (" + e.what() +
                      "): start a new run or use another checkpoint");
    }
    CheckResumeCompatible(saved, config, resume_path);
  }
  SetBlasThreads(tc.threads);
  spdlog::info("config: {}", ConfigToJson(config).dump());

  const Dataset data = LoadDataset(config.data);
  if (resume) CheckVocabMatches(Vocab::FromJson(resume->vocab), data.vocab, resume_path, config.data.corpus);
  const std::span<const int> train_ids = data.Train(), val_ids = data.Validation();
  const std::int64_t needed = Sampler::MinimumLength(tc.sampler, tc.batch_size, tc.num_steps, tc.random_offset);
  if (static_cast<std::int64_t>(train_ids.size()) < needed) {
    throw UserError("the training split of " + config.data.corpus + " has " + std::to_string(train_ids.size()) +
                    " characters, but train.batch_size " + std::to_string(tc.batch_size) + " x train.num_steps " +
                    std::to_string(tc.num_steps) + " needs at least " + std::to_string(needed) +
                    ": lower train.batch_size or train.num_steps, lower data.val_fraction/test_fraction, or use more text");
  }
  for (const std::string& prefix : config.generate.prefixes) {
    if (config.generate.every > 0) {
      EncodeText(data.vocab, ApplyNewlinePolicy(DecodeUtf8(prefix, "generate.prefixes"), config.data.newline),
                 UnknownPolicy::kError, "generate.prefixes entry \"" + EscapeControlChars(prefix) + "\"",
                 "change generate.prefixes in the config (or with --set generate.prefixes=...) to text from the corpus");
    }
  }
  ProbeOutputDir(tc.out_dir);
  const fs::path out_dir(tc.out_dir);
  const std::string last_path = (out_dir / "last.ckpt").string(), best_path = (out_dir / "best.ckpt").string();
  if (resume_path.empty() && fs::exists(last_path)) {
    spdlog::warn("{} holds the checkpoints of an earlier run; this run replaces them as it saves its own (set "
                 "train.out_dir to another folder to keep them)", tc.out_dir);
  }

  Sampler sampler(train_ids, tc.sampler, tc.batch_size, tc.num_steps, tc.random_offset, tc.seed);
  CheckModelFitsInMemory(MakeModelSpec(config.model, data.vocab.size()));
  CharModel<float> model(MakeModelSpec(config.model, data.vocab.size()));
  model.Initialize(config.model.init, tc.seed);
  Optimizer optimizer(tc.optimizer, model.params().size());
  const int B = tc.batch_size, T = tc.num_steps;
  auto ws = model.MakeWorkspace(T, B);
  auto state = model.MakeState(B);  // (L, B, H) carried between consecutive batches
  std::vector<int> x_batch_major(static_cast<std::size_t>(B) * T), y_batch_major(x_batch_major.size());
  std::vector<int> x(x_batch_major.size()), y(x_batch_major.size());  // (T, B) time-major

  Progress progress;
  if (resume) {
    progress = Progress::FromJson(resume->trainer_state, resume_path);
    if (resume->params.size() != model.params().size() || resume->optimizer_state.size() != optimizer.state().size()) {
      throw UserError("--resume " + resume_path + ": the checkpoint holds " + std::to_string(resume->params.size()) +
                      " parameters and " + std::to_string(resume->optimizer_state.size()) +
                      " optimizer values, the config needs " + std::to_string(model.params().size()) + " and " +
                      std::to_string(optimizer.state().size()) + ": start a new run");
    }
    model.params() = resume->params;
    optimizer.state() = resume->optimizer_state;
    optimizer.set_steps_taken(progress.global_step);
    if (progress.next_batch > 0 && tc.sampler == SamplerKind::kConsecutive) {
      if (resume->carried_state.size() != state.h.size() + state.c.size()) {
        throw UserError("--resume " + resume_path + ": the carried hidden state has the wrong size: start a new run");
      }
      std::copy(resume->carried_state.begin(), resume->carried_state.begin() + state.h.size(), state.h.begin());
      std::copy(resume->carried_state.begin() + state.h.size(), resume->carried_state.end(), state.c.begin());
    }
    spdlog::info("resuming {} at epoch {}, batch {}", resume_path, progress.epochs_completed + 1, progress.next_batch);
    if (progress.epochs_completed >= tc.epochs) {
      spdlog::warn("{} has already completed {} epochs and train.epochs is {}: nothing to train; to go on, resume "
                   "with --set train.epochs=N for an N above {}",
                   resume_path, progress.epochs_completed, tc.epochs, progress.epochs_completed);
    }
  }
  PrepareMetricsFile(out_dir / "metrics.jsonl", progress.epochs_completed);
  spdlog::info("corpus {}: {} characters, vocabulary {}, train {} / validation {} / test {}; model {} parameters",
               config.data.corpus, data.ids.size(), data.vocab.size(), train_ids.size(), val_ids.size(),
               data.split.size - data.split.val_end, model.params().size());

  // What a divergence leaves behind, said exactly: a last.ckpt in out_dir may be from an earlier run.
  bool saved_this_run = false;
  auto kept_checkpoint = [&]() -> std::string {
    if (saved_this_run) return "this run's last good checkpoint, " + last_path + ", is kept";
    if (resume) return "the checkpoint it resumed from, " + resume_path + ", is unchanged";
    if (fs::exists(last_path)) return "no checkpoint of this run was saved (" + last_path + " is from an earlier run)";
    return "no checkpoint was saved";
  };
  auto save = [&](const std::string& path) {
    // The last line of defence for "never a NaN checkpoint": an update can overflow the weights after a finite loss.
    for (float p : model.params()) {
      if (!std::isfinite(p)) {
        throw UserError("training diverged before epoch " + std::to_string(progress.epochs_completed + 1) +
                        " could be saved: the weights are not finite; lower train.optimizer.lr or set/lower "
                        "train.clip_norm; " + kept_checkpoint());
      }
    }
    saved_this_run = true;
    CheckpointData ckpt;
    ckpt.config = ConfigToJson(config);
    ckpt.vocab = data.vocab.ToJson();
    ckpt.trainer_state = progress.ToJson();
    ckpt.params = model.params();
    ckpt.optimizer_state = optimizer.state();
    if (progress.next_batch > 0 && tc.sampler == SamplerKind::kConsecutive) {
      ckpt.carried_state = state.h;
      ckpt.carried_state.insert(ckpt.carried_state.end(), state.c.begin(), state.c.end());
    }
    SaveCheckpoint(path, ckpt);
  };

  TrainOutcome outcome;
  const auto run_start = Clock::now();
  const SamplingOptions sampling = SamplingFromConfig(config.generate);

  for (int epoch = progress.epochs_completed; epoch < tc.epochs; ++epoch) {
    sampler.BeginEpoch(epoch);
    const double lr = ScheduledLearningRate(tc.optimizer, tc.lr_schedule, epoch);
    if (progress.next_batch == 0) {
      state.Zero();  // a new epoch starts from a zero state for both samplers
      progress.partial_loss_sum = 0;
      progress.partial_tokens = 0;
    }
    const auto epoch_start = Clock::now();
    const std::int64_t first_batch = progress.next_batch;
    for (std::int64_t batch = first_batch; batch < sampler.num_batches(); ++batch) {
      sampler.GetBatch(batch, x_batch_major.data(), y_batch_major.data());
      for (int b = 0; b < B; ++b) {
        for (int t = 0; t < T; ++t) {
          x[static_cast<std::size_t>(t) * B + b] = x_batch_major[static_cast<std::size_t>(b) * T + t];
          y[static_cast<std::size_t>(t) * B + b] = y_batch_major[static_cast<std::size_t>(b) * T + t];
        }
      }
      if (tc.sampler == SamplerKind::kRandom) state.Zero();  // random windows are unrelated
      model.ZeroGrads();
      const ForwardMode mode{true, MixSeed(MixSeed(tc.seed, kDropoutStream), progress.global_step)};
      const float loss = model.Forward(*ws, x.data(), y.data(), T, B, state, mode);
      model.Backward(*ws, nullptr);
      const double grad_norm = GlobalNorm(model.grads());
      // A finite loss whose perplexity overflows (above ~709 nats per character, where ln V is a few nats) has
      // diverged just as surely as a NaN: the weights have blown up even if saturated activations keep them finite.
      const bool loss_diverged = !std::isfinite(loss) || !std::isfinite(std::exp(static_cast<double>(loss)));
      if (loss_diverged || !std::isfinite(grad_norm)) {
        if (hooks.progress_bar) ClearProgress();
        const std::string what = !loss_diverged        ? "gradient norm is not finite"
                                 : std::isfinite(loss) ? "loss is " + FormatNumber(loss) + " (perplexity overflows)"
                                                       : "loss is " + FormatNumber(loss);
        throw UserError("training diverged at epoch " + std::to_string(epoch + 1) + ", batch " +
                        std::to_string(batch + 1) + ": the " + what + "; lower train.optimizer.lr (now " +
                        FormatNumber(lr) + ") or set/lower train.clip_norm (now " + FormatNumber(tc.clip_norm) +
                        "); " + kept_checkpoint());
      }
      // Clipping is applied inside the step (without weight decay, the bits of scaling the gradients first).
      optimizer.Step(model.params(), model.grads(), lr, ClipScale(grad_norm, tc.clip_norm));
      ++progress.global_step;
      progress.partial_loss_sum += static_cast<double>(loss) * B * T;
      progress.partial_tokens += static_cast<std::int64_t>(B) * T;
      progress.next_batch = batch + 1;
      if (hooks.progress_bar) {
        DrawProgress(epoch + 1, tc.epochs, batch + 1, sampler.num_batches(), progress.partial_loss_sum,
                     progress.partial_tokens);
      }
      if (hooks.stop_requested && hooks.stop_requested()) {
        if (hooks.progress_bar) ClearProgress();
        save(last_path);
        outcome.interrupted = true;
        outcome.epochs_completed = progress.epochs_completed;
        outcome.last_checkpoint = last_path;
        return outcome;
      }
    }
    if (hooks.progress_bar) ClearProgress();
    const double train_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const std::int64_t epoch_tokens = (sampler.num_batches() - first_batch) * static_cast<std::int64_t>(B) * T;
    const double train_ppl = std::exp(progress.partial_loss_sum / std::max<std::int64_t>(progress.partial_tokens, 1));
    progress.epochs_completed = epoch + 1;
    progress.next_batch = 0;
    const bool last_epoch = epoch + 1 == tc.epochs;

    std::optional<double> val_ppl;
    if (!val_ids.empty() && ((epoch + 1) % tc.eval_every == 0 || last_epoch)) {
      val_ppl = Evaluate(model, val_ids, B, T).perplexity;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
    const double tokens_per_s = train_seconds > 0 ? epoch_tokens / train_seconds : 0.0;
    spdlog::info("epoch {}/{}  train perplexity {}  val perplexity {}  lr {:.3g}  {:.0f} tokens/s  {:.1f} s", epoch + 1,
                 tc.epochs, FormatPerplexity(train_ppl), FormatPerplexity(val_ppl), lr, tokens_per_s, elapsed);
    {
      nlohmann::json line = {{"epoch", epoch + 1},
                             {"train_perplexity", train_ppl},
                             {"val_perplexity", val_ppl ? nlohmann::json(*val_ppl) : nlohmann::json(nullptr)},
                             {"learning_rate", lr},
                             {"tokens_per_s", tokens_per_s},
                             {"elapsed_s", elapsed}};
      std::ofstream metrics(out_dir / "metrics.jsonl", std::ios::app);
      metrics << line.dump() << '\n';
      if (!metrics) throw UserError((out_dir / "metrics.jsonl").string() + " cannot be written: check free space");
    }
    if (config.generate.every > 0 && (epoch + 1) % config.generate.every == 0) {
      Rng rng(MixSeed(MixSeed(tc.seed, kGenerateStream), static_cast<std::uint64_t>(epoch)));
      for (const std::string& prefix : config.generate.prefixes) {
        spdlog::info(" - {}", GenerateText(model, data.vocab, prefix, sampling, rng, UnknownPolicy::kError,
                                           config.data.newline));
      }
    }

    // Best is judged on validation perplexity; without a validation split, on training perplexity.
    const std::optional<double> score = val_ids.empty() ? std::optional<double>(train_ppl) : val_ppl;
    if (score) {
      if (!progress.best_score || *score < *progress.best_score) {
        progress.best_score = score;
        progress.epochs_since_best = 0;
        save(best_path);
      } else {
        ++progress.epochs_since_best;
      }
    }
    const bool early_stop = tc.patience > 0 && progress.epochs_since_best >= tc.patience;
    if ((epoch + 1) % tc.checkpoint_every == 0 || last_epoch || early_stop) save(last_path);
    outcome.train_perplexity = train_ppl;
    outcome.val_perplexity = val_ppl;
    if (early_stop) {
      spdlog::info("early stop: validation perplexity has not improved for {} epochs (best {})", tc.patience,
                   FormatPerplexity(progress.best_score));
      outcome.early_stopped = true;
      break;
    }
  }
  outcome.epochs_completed = progress.epochs_completed;
  outcome.best_val_perplexity = val_ids.empty() ? std::nullopt : progress.best_score;
  outcome.last_checkpoint = last_path;
  outcome.best_checkpoint = best_path;
  outcome.sample_prefix = SuggestedPrefix(data.vocab, config.generate.prefixes);
  return outcome;
}

}  // namespace charlm
