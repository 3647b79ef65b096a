// Typed run configuration: defaults, JSON reading and writing, --set overrides, validation, key docs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/enums.h"

namespace charlm {

// Every default lives in these member initializers; the field lists in config.cc name and document them. Together
// they are the recipe for an unknown text trained by epochs (docs/quality.md, "The built-in defaults"): an LSTM with
// an embedding and dropout, PyTorch's initialization, Adam, clipping at 1, early stopping. `train --minutes` sizes
// the model and its regularization for the text and the machine instead.
struct OptimizerConfig {
  OptimizerKind name = OptimizerKind::kAdam;
  double lr = 0.005;
  double momentum = 0.0;  // SGD only
  double beta1 = 0.9;     // Adam only
  double beta2 = 0.999;   // Adam only
  double eps = 1e-8;      // Adam and RMSprop
  double decay = 0.9;     // RMSprop's moving-average factor rho
  double weight_decay = 0.0;  // L2 on the gradients; AdamW: decoupled, weights only
};

struct LrScheduleConfig {
  LrScheduleKind name = LrScheduleKind::kNone;
  int step_size = 10;  // epochs between decays for "step"
  double gamma = 0.5;  // factor per step_size epochs ("step") or per epoch ("exponential")
  std::int64_t warmup_steps = 0;  // "cosine": optimizer steps of linear warm-up
  double min_lr = 0.0;            // "cosine": the floor it anneals to, <= train.optimizer.lr
};

// data.corpus: the paths of the text, each a file, a folder (read recursively), a compressed file or an archive.
// One path is written as a JSON string, several as a list.
struct CorpusPaths {
  std::vector<std::string> paths;

  bool empty() const { return paths.empty(); }
  bool operator==(const CorpusPaths&) const = default;
  // "a.txt", or "a.txt + b/ (2 paths)": the corpus as messages name it.
  std::string Label() const;
};

struct DataConfig {
  CorpusPaths corpus;  // required; relative paths are relative to the working directory
  NewlinePolicy newline = NewlinePolicy::kKeep;
  std::int64_t max_chars = 0;  // 0 = the whole corpus
  double val_fraction = 0.1;
  double test_fraction = 0.0;
  int min_freq = 1;
  std::vector<std::string> include;  // glob patterns a document of a folder or archive must match (empty = all)
  std::vector<std::string> exclude;  // glob patterns that leave a document out
  std::string separator = "\n";     // put between two documents
  InvalidDocumentPolicy on_invalid = InvalidDocumentPolicy::kSkip;
  bool allow_changed_corpus = false;  // train --resume on a corpus whose manifest changed
  std::string unknown = "error";  // train --init-from: characters outside the checkpoint's vocabulary (error | skip)
};

struct ModelConfig {
  CellKind cell = CellKind::kLstm;
  int hidden_size = 256;
  int num_layers = 1;
  int embedding_size = 64;  // 0 = one-hot input
  double dropout = 0.2;
  double recurrent_dropout = 0.0;
  bool locked_dropout = false;     // dropout's masks: one per sequence, the same at every step
  double weight_drop = 0.0;        // DropConnect on each layer's w_h, one mask per training step
  double embedding_dropout = 0.0;  // whole characters dropped, one (V) mask per training step
  bool tie_embeddings = false;     // the output layer is the embedding transposed; embedding_size == hidden_size
  Activation activation = Activation::kTanh;  // plain RNN only
  bool reset_after = true;                    // GRU only; false = the book's form
  InitScheme init = InitScheme::kPytorch;
};

// train.log_every_seconds's default: 30 s when standard output is not a terminal, none on a terminal (where the
// progress bar shows the same figures). ResolvedLogSeconds turns it into the interval a run uses.
inline constexpr double kLogEverySecondsAuto = -1;
inline constexpr double kLogEverySecondsWhenRedirected = 30;

// The largest train.batch_size: validation runs that many streams side by side, and eval --streams stops at the
// same number (kMaxEvalStreams, evaluate.h), past which wider products are no faster per character.
inline constexpr int kMaxBatchSize = 4096;
// train.threads and eval --threads: far above any machine's cores per process, low enough to catch a typo.
inline constexpr int kMaxThreads = 256;

struct TrainConfig {
  SamplerKind sampler = SamplerKind::kConsecutive;
  bool random_offset = false;
  int batch_size = 32;
  int num_steps = 35;
  int epochs = 20;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  double clip_norm = 1.0;  // 0 = no clipping
  std::uint64_t seed = 42;
  int threads = 0;  // 0 = all cores
  Precision precision = Precision::kFp32;
  Engine engine = Engine::kCharlm;
  int eval_every = 1;
  int checkpoint_every = 1;
  std::string out_dir = "runs/default";
  int patience = 4;  // 0 = no early stopping
  std::int64_t checkpoint_every_steps = 0;  // 0 = off
  std::int64_t eval_every_steps = 0;        // 0 = off
  std::int64_t eval_max_chars = 0;          // 0 = the whole validation split
  double log_every_seconds = kLogEverySecondsAuto;
  std::int64_t max_steps = 0;  // 0 = no limit
  double max_minutes = 0;      // 0 = no limit
  double stall_seconds = 300;  // under mpirun: a peer silent this long is named (Workers::SetStallSeconds)
  bool report = true;  // rewrite out_dir/report.html at every epoch end
};

struct GenerateConfig {
  std::vector<std::string> prefixes;  // empty = CorpusPrefix: the first characters of the validation split
  int length = 50;
  int every = 2;  // 0 = never during training
  double temperature = 0.8;
  int top_k = 0;       // 0 = no top-k cut
  double top_p = 1.0;  // 1 = no nucleus cut
  bool greedy = false;
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  GenerateConfig generate;
};

// Every key, nested by section, enums as their config spellings.
nlohmann::json ConfigToJson(const Config& config);

// Missing keys keep their defaults; unknown keys, wrong types and bad enum spellings are UserErrors.
// data.corpus must be present. Does not validate ranges (see ValidateConfig). `overrides`: the --set assignments
// already applied to j (ApplyOverride), so that a bad value they gave is answered with a --set example.
Config ConfigFromJson(const nlohmann::json& j, const std::vector<std::string>& overrides = {});


// A config is a small JSON file: larger ones are refused before they are read.
inline constexpr std::uint64_t kMaxConfigBytes = 10'000'000;

// Parses, types and validates a config; malformed JSON is reported as "<source>:<line>:<column>: ...".
Config ParseConfigText(std::string_view text, std::string_view source_name);

// Reads the file, applies the overrides ("section.key=value") in order, then types and validates.
Config LoadConfigFile(const std::string& path, const std::vector<std::string>& overrides = {});

// The dotted key of a --set assignment, "train.epochs" of " train.epochs = 5": the text before '=', trimmed.
std::string OverrideKey(std::string_view assignment);

// Sets one dotted key, creating missing sections: "train.optimizer.lr=0.01". The value is read as
// JSON when it parses as JSON and taken as a plain string otherwise, so "model.cell=gru" works.
void ApplyOverride(nlohmann::json& j, std::string_view assignment);

// Range and consistency checks; throws a UserError naming the key, the value, the expectation and a fix.
void ValidateConfig(const Config& config);

// The log interval in seconds (0 = no log lines) of a run whose standard output is or is not a terminal.
double ResolvedLogSeconds(double log_every_seconds, bool stdout_is_terminal);

// What the docs say of one key, from its VisitFields line: the one definition behind the key table, the man page
// and the shell completion.
struct ConfigKeyDoc {
  std::string key;                   // dotted: "train.optimizer.lr"
  std::string type;                  // "integer >= 1", "one of `rnn`, `gru`, `lstm`", ...
  std::string default_json;          // the default as JSON; empty for a required key
  std::string meaning;
  std::vector<std::string> choices;  // an enumeration's spellings, or true/false; empty otherwise
  bool is_path = false;              // a file or folder (completion offers paths)
  bool resumable = false;            // may differ when resuming (ResumableConfigKeys)
};
// Every key, in the order of the docs table.
const std::vector<ConfigKeyDoc>& ConfigKeyDocs();
// Every key's value in `config` as JSON, by dotted key (sorted).
std::map<std::string, nlohmann::json> ConfigValues(const Config& config);

// Markdown table (key, type, default, meaning) of every key; docs/config.md holds a copy of it.
std::string ConfigKeysMarkdownTable();

// The keys that may differ between a checkpoint's config and the config a run resumes with: those whose
// VisitFields rule says Resumable.
const std::vector<std::string>& ResumableConfigKeys();

}  // namespace charlm
