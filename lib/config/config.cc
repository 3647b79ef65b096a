// Field lists of the config structs, and the JSON, override, validation and docs code they drive.
#include "config/config.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <concepts>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/json_parse.h"
#include "util/suggest.h"
#include "util/utf8.h"

namespace charlm {
namespace {

using nlohmann::json;

constexpr double kInf = std::numeric_limits<double>::infinity();

// What a field accepts beyond its type. The field lists attach one to every field so that validation
// and the generated docs read the same bounds.
struct Rule {
  double low = -kInf;
  bool low_inclusive = true;
  double high = kInf;
  bool high_inclusive = true;
  bool non_empty = false;  // strings
  bool required = false;   // the key must be present in the JSON (implies non_empty)
  // The key may differ between a checkpoint's config and the config a run resumes with (`train --resume`): it
  // changes how long the run goes on, what it reports or how fast it runs, not its trajectory.
  bool resumable = false;
  // The number is used as a float32 (the optimizer's step, the clipping scale): 0 or a magnitude float32
  // holds as a normal number, since 1e-300 passes "> 0" but becomes 0 (or a denormal) there, and 1e39 becomes inf.
  bool float32 = false;
};

constexpr Rule kAny{};
constexpr Rule kNonEmpty{.non_empty = true};
constexpr Rule kRequired{.non_empty = true, .required = true};
constexpr Rule AtLeast(double low) { return {.low = low}; }
constexpr Rule Above(double low) { return {.low = low, .low_inclusive = false}; }
constexpr Rule Between(double low, double high) { return {.low = low, .high = high}; }
constexpr Rule kFromZeroBelowOne{.low = 0, .high = 1, .high_inclusive = false};
constexpr Rule kAboveZeroToOne{.low = 0, .low_inclusive = false, .high = 1};
constexpr Rule Resumable(Rule rule) {
  rule.resumable = true;
  return rule;
}
constexpr Rule Float32(Rule rule) {
  rule.float32 = true;
  return rule;
}

// The field lists: the one place naming each key, its rule and its meaning. Visitors provide
// operator()(name, field, rule, meaning) for values and Section(name, struct) for nesting.
// Order here is the order of the docs table.

template <typename V>
void VisitFields(DataConfig& c, V& v) {
  v("corpus", c.corpus, kRequired,
    "training text: a UTF-8 file, a folder (read recursively, in sorted path order), a compressed file "
    "(`.gz`, `.xz`, `.zst`, `.bz2`, `.lz4`), an archive (`.tar` and its compressed forms, `.zip`, `.7z`), or a list of these; "
    "relative to the working directory");
  v("newline", c.newline, kAny, "what line breaks become: kept, a space (the book's choice) or dropped");
  v("max_chars", c.max_chars, AtLeast(0), "train on the first max_chars characters only (reading stops there); 0 = whole corpus");
  v("val_fraction", c.val_fraction, kFromZeroBelowOne,
    "share of the text held out for validation: a contiguous slice just before the test slice");
  v("test_fraction", c.test_fraction, kFromZeroBelowOne,
    "share of the text held out for the final test: the last slice of the text");
  v("min_freq", c.min_freq, AtLeast(1), "characters seen fewer times share one `<unk>` id");
  v("include", c.include, kAny,
    "glob patterns (`*` matches `/` too) of the documents of folders and archives to read, e.g. `[\"*.c\", \"*.h\"]`; "
    "empty = all");
  v("exclude", c.exclude, kAny, "glob patterns of the documents of folders and archives to leave out");
  v("separator", c.separator, kAny, "text put between two documents of the corpus");
  v("on_invalid", c.on_invalid, kAny,
    "a document of a folder or archive that is not UTF-8 text (a NUL byte, invalid UTF-8): left out and counted "
    "(`skip`) or an error naming it (`error`); a single named file is always an error");
  v("allow_changed_corpus", c.allow_changed_corpus, Resumable(kAny),
    "`train --resume` on a corpus whose manifest (documents, sizes, hashes) differs from the checkpoint's");
  v("unknown", c.unknown, kAny,
    "fine-tuning (`train --init-from`): characters outside the checkpoint's vocabulary are an `error` or left out (`skip`)");
}

template <typename V>
void VisitFields(ModelConfig& c, V& v) {
  v("cell", c.cell, kAny, "recurrent cell");
  v("hidden_size", c.hidden_size, AtLeast(1), "units per recurrent layer");
  v("num_layers", c.num_layers, AtLeast(1), "stacked recurrent layers");
  v("embedding_size", c.embedding_size, AtLeast(0), "width of the learned character embedding; 0 = one-hot input");
  v("dropout", c.dropout, kFromZeroBelowOne, "dropout on the inputs of each layer and before the output layer");
  v("recurrent_dropout", c.recurrent_dropout, kFromZeroBelowOne, "dropout on the hidden state fed back each step");
  v("locked_dropout", c.locked_dropout, kAny,
    "`dropout` as locked (variational) dropout: one mask per sequence, the same at every time step (AWD-LSTM)");
  v("weight_drop", c.weight_drop, kFromZeroBelowOne,
    "DropConnect on each recurrent layer's w_h: one mask per training step, shared by all sequences (AWD-LSTM)");
  v("embedding_dropout", c.embedding_dropout, kFromZeroBelowOne,
    "drop whole characters from the input: one mask over the vocabulary per training step (AWD-LSTM)");
  v("tie_embeddings", c.tie_embeddings, kAny,
    "the output layer uses the input embedding transposed (no output.w); needs embedding_size == hidden_size");
  v("activation", c.activation, kAny, "nonlinearity of the plain RNN cell");
  v("reset_after", c.reset_after, kAny, "GRU: apply the reset gate after the hidden matmul; false = the book's form");
  v("init", c.init, kAny, "weight initialization scheme");
}

template <typename V>
void VisitFields(OptimizerConfig& c, V& v) {
  v("name", c.name, kAny, "update rule; `adamw` is Adam with decoupled weight decay (torch.optim.AdamW)");
  v("lr", c.lr, Float32(Above(0)), "learning rate");
  v("momentum", c.momentum, Float32(kFromZeroBelowOne), "SGD momentum; 0 = plain SGD");
  v("beta1", c.beta1, Float32(kFromZeroBelowOne), "Adam and AdamW: decay of the first-moment average");
  v("beta2", c.beta2, Float32(kFromZeroBelowOne), "Adam and AdamW: decay of the second-moment average");
  v("eps", c.eps, Float32(Above(0)), "Adam, AdamW and RMSprop: added to the denominator");
  v("decay", c.decay, Float32(kFromZeroBelowOne), "RMSprop: moving-average factor rho of the squared gradients");
  v("weight_decay", c.weight_decay, Float32(AtLeast(0)),
    "L2 penalty added to the gradients; `adamw`: each step scales the weights and the embedding (not the biases) "
    "by 1 - lr * weight_decay");
}

template <typename V>
void VisitFields(LrScheduleConfig& c, V& v) {
  v("name", c.name, kAny,
    "learning-rate schedule: `step` and `exponential` per epoch, `cosine` per optimizer step (docs/config.md)");
  v("step_size", c.step_size, AtLeast(1), "step: epochs between decays");
  v("gamma", c.gamma, Float32(kAboveZeroToOne), "factor per step_size epochs (step) or per epoch (exponential)");
  v("warmup_steps", c.warmup_steps, AtLeast(0),
    "cosine: optimizer steps of linear warm-up from lr / warmup_steps to lr; 0 = none");
  v("min_lr", c.min_lr, Float32(AtLeast(0)),
    "cosine: the learning rate it anneals to, at train.max_steps (or the last epoch's end) or, with "
    "train.max_minutes, when the time runs out; at most train.optimizer.lr");
}

template <typename V>
void VisitFields(TrainConfig& c, V& v) {
  v("sampler", c.sampler, kAny, "minibatches: random windows (state reset) or consecutive streams (state carried)");
  v("random_offset", c.random_offset, kAny, "start each epoch at a random offset in [0, num_steps), so windows differ between epochs");
  v("batch_size", c.batch_size, Between(1, kMaxBatchSize),
    "sequences per minibatch, up to 4096 (validation runs as many streams side by side, as eval --streams does)");
  v("num_steps", c.num_steps, AtLeast(1), "time steps per sequence (truncated backpropagation length)");
  v("epochs", c.epochs, Resumable(AtLeast(1)), "passes over the training text");
  v.Section("optimizer", c.optimizer);
  v.Section("lr_schedule", c.lr_schedule);
  v("clip_norm", c.clip_norm, Float32(AtLeast(0)), "clip the global gradient norm to this; 0 = no clipping");
  v("seed", c.seed, kAny, "seed of every random choice (init, sampling, dropout)");
  v("threads", c.threads, Resumable(Between(0, kMaxThreads)), "OpenBLAS threads; 0 = all cores");
  v("precision", c.precision, Resumable(kAny),
    "inputs of the matrix products: fp32, or bf16 with fp32 accumulation (oneDNN, a CPU with avx512_bf16 or AMX); "
    "weights, optimizer state, gradients, nonlinearities and the loss stay fp32. `fp32_packed`: fp32 throughout, the "
    "per-step recurrent products on w_h packed once per sequence by oneDNN (any CPU; a build with oneDNN): faster, "
    "other rounding than `fp32` (docs/benchmarks.md)");
  v("engine", c.engine, Resumable(kAny),
    "what runs the recurrent layers in training and evaluation: `charlm`, its own kernels, or `onednn`, oneDNN's fused "
    "RNN primitive (what PyTorch 2.x runs on the CPU; LSTM, RNN and the reset_after GRU, no recurrent dropout; in "
    "train.precision's fp32 or bf16). Generation always runs charlm's (docs/benchmarks.md)");
  v("eval_every", c.eval_every, Resumable(AtLeast(1)), "epochs between validation passes");
  v("checkpoint_every", c.checkpoint_every, Resumable(AtLeast(1)), "epochs between checkpoints");
  v("out_dir", c.out_dir, Resumable(kNonEmpty), "directory for checkpoints and logs");
  v("patience", c.patience, Resumable(AtLeast(0)), "stop after this many evaluations without a better validation loss; 0 = never");
  v("checkpoint_every_steps", c.checkpoint_every_steps, Resumable(AtLeast(0)),
    "also write last.ckpt every this many optimizer steps, mid-epoch too; 0 = off");
  v("eval_every_steps", c.eval_every_steps, Resumable(AtLeast(0)),
    "also validate every this many optimizer steps (an `eval` row in metrics.jsonl); 0 = off");
  v("eval_max_chars", c.eval_max_chars, Resumable(AtLeast(0)),
    "the step validations and the validation at a time or step budget's stop score the first this many characters of "
    "the validation split; 0 = all (epoch ends always score all)");
  v("log_every_seconds", c.log_every_seconds, Resumable(AtLeast(-1)),
    "seconds between progress lines (epoch, step, loss, tokens/s, ETA); 0 = none; -1 = 30 when stdout is not a terminal, else none");
  v("max_steps", c.max_steps, Resumable(AtLeast(0)),
    "stop after this many optimizer steps of the whole run, saving last.ckpt as a signal does; 0 = no limit");
  v("max_minutes", c.max_minutes, Resumable(AtLeast(0)),
    "stop after this many minutes of this invocation, saving last.ckpt as a signal does; 0 = no limit");
  v("stall_seconds", c.stall_seconds, Resumable(Between(1, 86400)),
    "under mpirun: seconds a process may make no progress (stopped, hung, or busy alone) before one line on "
    "standard error names it; the job goes on waiting");
  v("report", c.report, Resumable(kAny), "rewrite out_dir/report.html (curves and samples, see charlm report) after every epoch");
}

template <typename V>
void VisitFields(GenerateConfig& c, V& v) {
  v("prefixes", c.prefixes, Resumable(kAny),
    "texts to continue when sampling (a lone string is one prefix; \"\" starts as after a line break); empty = the "
    "first characters of the validation split");
  v("length", c.length, Resumable(AtLeast(0)), "characters generated after each prefix");
  v("every", c.every, Resumable(AtLeast(0)), "epochs between samples during training; 0 = never");
  v("temperature", c.temperature, Resumable(Above(0)), "divides the logits before sampling; below 1 is more conservative");
  v("top_k", c.top_k, Resumable(AtLeast(0)), "sample among the k most likely characters only; 0 = all");
  v("top_p", c.top_p, Resumable(kAboveZeroToOne), "sample within the smallest set of this total probability; 1 = all");
  v("greedy", c.greedy, Resumable(kAny), "always take the most likely character (the book's argmax)");
}

template <typename V>
void VisitFields(Config& c, V& v) {
  v.Section("data", c.data);
  v.Section("model", c.model);
  v.Section("train", c.train);
  v.Section("generate", c.generate);
}

template <typename T>
concept EnumField = std::is_enum_v<T>;
template <typename T>
concept IntegerField = std::integral<T> && !std::same_as<T, bool>;

// --- small helpers for messages -------------------------------------------------------------------

// A JSON value as it would be written, cut short at a character boundary so messages stay one line.
std::string Dumped(const json& value) {
  // JSON has no NaN or infinity (dump writes null); a --set or CLI value can still be one.
  if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    const double number = value.get<double>();
    return std::isnan(number) ? "nan" : number > 0 ? "inf" : "-inf";
  }
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr std::size_t kMaxShown = 60;
  if (text.size() > kMaxShown) {
    std::size_t cut = kMaxShown;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

// "\"abc\" (string)": the offending value and its JSON type.
std::string Shown(const json& value) { return Dumped(value) + " (" + value.type_name() + ")"; }

std::string FormatBound(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// ">= 1", "> 0", "in [0, 1)", or "" when unbounded.
std::string DescribeBounds(const Rule& rule) {
  const bool has_low = rule.low != -kInf;
  const bool has_high = rule.high != kInf;
  if (has_low && has_high) {
    return "in " + std::string(rule.low_inclusive ? "[" : "(") + FormatBound(rule.low) + ", " + FormatBound(rule.high) +
           (rule.high_inclusive ? "]" : ")");
  }
  if (has_low) return (rule.low_inclusive ? ">= " : "> ") + FormatBound(rule.low);
  if (has_high) return (rule.high_inclusive ? "<= " : "< ") + FormatBound(rule.high);
  return "";
}

template <typename T>
json ToJsonValue(const T& field) {
  if constexpr (EnumField<T>) {
    return std::string(EnumName(field));
  } else if constexpr (std::same_as<T, CorpusPaths>) {
    if (field.paths.size() == 1) return field.paths[0];
    return field.paths;
  } else {
    return field;
  }
}

// --- visitors -------------------------------------------------------------------------------------

class JsonWriter {
 public:
  explicit JsonWriter(json& out) : out_(out) { out_ = json::object(); }

  template <typename T>
  void operator()(std::string_view name, T& field, const Rule&, std::string_view) {
    out_[std::string(name)] = ToJsonValue(field);
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    JsonWriter inner(out_[std::string(name)]);
    VisitFields(section, inner);
  }

 private:
  json& out_;
};

// Every dotted key, sections included ("train.optimizer" and "train.optimizer.lr"), in field-list order.
class KeyLister {
 public:
  explicit KeyLister(std::string prefix = "") : prefix_(std::move(prefix)) {}

  template <typename T>
  void operator()(std::string_view name, T&, const Rule&, std::string_view) {
    keys_.push_back(prefix_ + std::string(name));
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    keys_.push_back(prefix_ + std::string(name));
    KeyLister inner(prefix_ + std::string(name) + ".");
    VisitFields(section, inner);
    keys_.insert(keys_.end(), inner.keys_.begin(), inner.keys_.end());
  }

  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::string prefix_;
  std::vector<std::string> keys_;
};

const std::vector<std::string>& AllDottedKeys() {
  static const std::vector<std::string> keys = [] {
    Config config;
    KeyLister lister;
    VisitFields(config, lister);
    return lister.keys();
  }();
  return keys;
}

// What to do about a key that no field list names: the nearest key of the same section, else the same name in
// another section, else the list of valid keys.
std::string UnknownKeyHint(const std::string& prefix, const std::string& key, const std::vector<std::string>& valid) {
  const std::string full = prefix + key;
  if (const std::optional<std::string> nearest = NearestName(key, valid)) {
    return "did you mean \"" + prefix + *nearest + "\"?";
  }
  std::string elsewhere;
  for (const auto& dotted : AllDottedKeys()) {
    const std::size_t dot = dotted.rfind('.');
    const std::string leaf = dot == std::string::npos ? dotted : dotted.substr(dot + 1);
    if (leaf == key && dotted != full) elsewhere += (elsewhere.empty() ? "\"" : " or \"") + dotted + "\"";
  }
  if (!elsewhere.empty()) return "did you mean " + elsewhere + "?";
  std::string list;
  for (const auto& name : valid) list += (list.empty() ? "" : ", ") + name;
  const std::string where = prefix.empty() ? "at the top level" : "in \"" + prefix.substr(0, prefix.size() - 1) + "\"";
  return "remove it or use one of the keys valid " + where + ": " + list;
}

// The keys of a JSON config that no field list names, each with its hint, found before any value is read so that
// one message names all of them (a config with three typos is fixed in one go, not three runs).
class UnknownKeyFinder {
 public:
  struct Found {
    std::string key;   // dotted
    std::string hint;  // UnknownKeyHint
  };

  UnknownKeyFinder(const json& in, std::string prefix, std::vector<Found>& found)
      : in_(in), prefix_(std::move(prefix)), found_(found) {}

  template <typename T>
  void operator()(std::string_view name, T&, const Rule&, std::string_view) {
    known_.emplace_back(name);
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    known_.emplace_back(name);
    const auto it = in_.find(std::string(name));
    if (it == in_.end() || !it->is_object()) return;  // JsonReader says what is wrong with a section that is not one
    UnknownKeyFinder inner(*it, prefix_ + std::string(name) + ".", found_);
    VisitFields(section, inner);
    inner.Finish();
  }

  void Finish() {
    for (const auto& [key, value] : in_.items()) {
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        found_.push_back({prefix_ + key, UnknownKeyHint(prefix_, key, known_)});
      }
    }
  }

 private:
  const json& in_;
  std::string prefix_;
  std::vector<Found>& found_;
  std::vector<std::string> known_;
};

// UserError naming every unknown key of `j` (the first kMaxUnknownKeysListed, then how many more), if it has any.
void RejectUnknownKeys(const json& j) {
  std::vector<UnknownKeyFinder::Found> found;
  Config config;
  UnknownKeyFinder finder(j, "", found);
  VisitFields(config, finder);
  finder.Finish();
  if (found.empty()) return;
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  if (found.size() == 1) {
    throw UserError("unknown key \"" + EscapeControlChars(found[0].key) + "\": " + found[0].hint);
  }
  constexpr std::size_t kMaxUnknownKeysListed = 20;
  std::string message = std::to_string(found.size()) + " unknown keys: ";
  for (std::size_t k = 0; k < std::min(found.size(), kMaxUnknownKeysListed); ++k) {
    message += (k == 0 ? "\"" : "; \"") + EscapeControlChars(found[k].key) + "\": " + found[k].hint;
  }
  if (found.size() > kMaxUnknownKeysListed) {
    message += "; and " + std::to_string(found.size() - kMaxUnknownKeysListed) + " more";
  }
  throw UserError(message);
}

// Reads the fields a JSON object has into a struct that starts out holding the defaults (unknown keys were
// refused before, RejectUnknownKeys).
class JsonReader {
 public:
  // `set_keys`: the dotted keys --set gave, whose examples are written as --set KEY=VALUE.
  JsonReader(const json& in, std::string prefix, const std::vector<std::string>& set_keys)
      : in_(in), prefix_(std::move(prefix)), set_keys_(set_keys) {}

  template <typename T>
  void operator()(std::string_view name, T& field, const Rule& rule, std::string_view meaning) {
    const std::string key = prefix_ + std::string(name);
    const auto it = in_.find(std::string(name));
    if (it == in_.end()) {
      if (rule.required) {
        throw UserError(key + " is required but missing (" + std::string(meaning) +
                        "): add it to the config or pass --set " + key + "=VALUE");
      }
      return;
    }
    const bool from_set = std::find(set_keys_.begin(), set_keys_.end(), key) != set_keys_.end();
    Read(*it, key, rule, Example(from_set ? key : std::string(name), field, from_set), field);
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    const std::string key = prefix_ + std::string(name);
    static const json kEmptySection = json::object();
    const auto it = in_.find(std::string(name));
    const json& inner_json = it == in_.end() ? kEmptySection : *it;
    if (!inner_json.is_object()) {
      throw UserError(key + ": expected a section (a JSON object of keys), got " + Shown(inner_json) +
                      "; write e.g. \"" + std::string(name) + "\": {...}");
    }
    JsonReader inner(inner_json, key + ".", set_keys_);
    VisitFields(section, inner);
  }

 private:
  // `field` still holds its default here, which makes the example in the message: as the value was given, in the
  // config's JSON or on the command line (a string needs no quotes there).
  template <typename T>
  static std::string Example(const std::string& name, const T& field, bool from_set) {
    const json example = ToJsonValue(field);
    if (example.is_string() && example.get<std::string>().empty()) return "";
    if (from_set) return "; write e.g. --set " + name + "=" + (example.is_string() ? example.get<std::string>() : Dumped(example));
    return "; write e.g. \"" + name + "\": " + Dumped(example);
  }

  template <typename T>
  static void Read(const json& value, const std::string& key, const Rule& rule, const std::string& example, T& field) {
    if constexpr (EnumField<T>) {
      const auto parsed = value.is_string() ? ParseEnum<T>(value.get<std::string>()) : std::nullopt;
      if (!parsed) {
        // A misspelt value ("lsmt") gets the same did-you-mean as a misspelt key.
        throw UserError(key + ": expected one of " + EnumChoices<T>() + ", got " + Shown(value) +
                        (value.is_string() ? EnumSuggestion<T>(value.get<std::string>()) : ""));
      }
      field = *parsed;
    } else if constexpr (std::same_as<T, bool>) {
      if (!value.is_boolean()) {
        throw UserError(key + ": expected true or false (a JSON boolean, unquoted), got " + Shown(value));
      }
      field = value.get<bool>();
    } else if constexpr (IntegerField<T>) {
      field = ReadInteger<T>(value, key, rule, example);
    } else if constexpr (std::same_as<T, double>) {
      if (!value.is_number()) throw UserError(key + ": expected a number, got " + Shown(value) + example);
      field = value.get<double>();
    } else if constexpr (std::same_as<T, std::string>) {
      if (!value.is_string()) throw UserError(key + ": expected a string, got " + Shown(value) + example);
      field = value.get<std::string>();
    } else if constexpr (std::same_as<T, CorpusPaths>) {
      std::vector<std::string> paths;
      Read(value, key, rule, example, paths);
      field.paths = std::move(paths);
    } else if constexpr (std::same_as<T, std::vector<std::string>>) {
      // A lone string is accepted as a list of one, which keeps "--set generate.prefixes=爱" short.
      if (value.is_string()) {
        field = {value.get<std::string>()};
        return;
      }
      if (!value.is_array()) {
        throw UserError(key + ": expected a list of strings, got " + Shown(value) + example);
      }
      std::vector<std::string> items;
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) {
          throw UserError(key + "[" + std::to_string(i) + "]: expected a string, got " + Shown(value[i]) +
                          example);
        }
        items.push_back(value[i].get<std::string>());
      }
      field = std::move(items);
    } else {
      static_assert(sizeof(T) == 0, "a field type the config reader does not know");
    }
  }

  // Integral JSON numbers within Int's range, including integral floats such as 1e3 or 32.0.
  // "1 to 2147483647": the integers the key accepts, its rule's bounds within the type's, for the message.
  template <typename Int>
  static std::string IntegerRange(const Rule& rule) {
    using Limits = std::numeric_limits<Int>;
    std::string low = std::to_string(Limits::min()), high = std::to_string(Limits::max());
    if (rule.low != -kInf) {
      const double first = rule.low_inclusive ? std::ceil(rule.low) : std::floor(rule.low) + 1;
      if (first > static_cast<double>(Limits::min()) && first < static_cast<double>(Limits::max())) {
        low = std::to_string(static_cast<Int>(first));
      }
    }
    if (rule.high != kInf) {
      const double last = rule.high_inclusive ? std::floor(rule.high) : std::ceil(rule.high) - 1;
      if (last > static_cast<double>(Limits::min()) && last < static_cast<double>(Limits::max())) {
        high = std::to_string(static_cast<Int>(last));
      }
    }
    return low + " to " + high;
  }

  template <typename Int>
  static Int ReadInteger(const json& value, const std::string& key, const Rule& rule, const std::string& example) {
    const std::string kind = std::is_signed_v<Int> ? "an integer" : "a non-negative integer";
    if (value.is_number_integer()) {
      if (const std::optional<Int> number = ExactInteger<Int>(value)) return *number;
    } else if (value.is_number_float()) {
      const double number = value.get<double>();
      if (number != std::trunc(number)) throw UserError(key + ": expected " + kind + ", got " + Shown(value) + example);
      // Powers of two are exact in double, so these bounds do not round.
      const double limit = std::ldexp(1.0, std::numeric_limits<Int>::digits);
      const double lowest = std::is_signed_v<Int> ? -limit : 0.0;
      if (number >= lowest && number < limit) return static_cast<Int>(number);
    } else {
      throw UserError(key + ": expected " + kind + ", got " + Shown(value) + example);
    }
    throw UserError(key + ": expected " + kind + " from " + IntegerRange<Int>(rule) + ", got " + Shown(value) +
                    example);
  }

  const json& in_;
  std::string prefix_;
  const std::vector<std::string>& set_keys_;
};

// Checks each field against its rule; the defaults (always valid, except the required corpus) make the example fix.
class RangeChecker {
 public:
  explicit RangeChecker(std::string prefix = "") : prefix_(std::move(prefix)) {}

  template <typename T>
  void operator()(std::string_view name, T& field, const Rule& rule, std::string_view meaning) {
    const std::string key = prefix_ + std::string(name);
    if constexpr (IntegerField<T> || std::same_as<T, double>) {
      const auto number = static_cast<double>(field);
      // Written so that NaN fails too.
      const bool low_ok = rule.low_inclusive ? number >= rule.low : number > rule.low;
      const bool high_ok = rule.high_inclusive ? number <= rule.high : number < rule.high;
      if (!(low_ok && high_ok)) {
        const std::string kind = std::same_as<T, double> ? "a number " : "an integer ";
        throw UserError(key + " = " + Dumped(json(field)) + " is out of range: expected " + kind +
                        DescribeBounds(rule) + "; set it within that range, e.g. the default " +
                        Dumped(DefaultOf(name)));
      }
      if (rule.float32 && number != 0 &&
          !(std::fabs(number) >= std::numeric_limits<float>::min() && std::fabs(number) <= std::numeric_limits<float>::max())) {
        const bool tiny = std::fabs(number) < std::numeric_limits<float>::min();
        throw UserError(key + " = " + Dumped(json(field)) + " is " + (tiny ? "below" : "above") +
                        " what float32 holds (magnitudes from 1.18e-38 to 3.4e38), and training computes in float32, "
                        "where it would become " + (tiny ? "0" : "infinite") + ": set it within that range, e.g. the "
                        "default " + Dumped(DefaultOf(name)));
      }
    } else if constexpr (std::same_as<T, std::string>) {
      RejectNul(key, field);
      if (rule.non_empty && field.empty()) {
        throw UserError(key + " is empty: expected the " + std::string(meaning) +
                        "; set it in the config or with --set " + key + "=VALUE");
      }
    } else if constexpr (std::same_as<T, CorpusPaths>) {
      if (rule.non_empty && (field.empty() || (field.paths.size() == 1 && field.paths[0].empty()))) {
        throw UserError(key + " is empty: expected the " + std::string(meaning) +
                        "; set it in the config or with --set " + key + "=PATH");
      }
      for (std::size_t i = 0; i < field.paths.size(); ++i) {
        RejectNul(field.paths.size() == 1 ? key : key + "[" + std::to_string(i) + "]", field.paths[i]);
        if (field.paths[i].empty()) {
          throw UserError(key + "[" + std::to_string(i) + "] is empty: expected the path of a file or folder; remove it");
        }
      }
    } else if constexpr (std::same_as<T, std::vector<std::string>>) {
      // An empty prefix is a request to sample from the start (EncodePrefix); an empty glob matches nothing.
      for (std::size_t i = 0; i < field.size(); ++i) RejectNul(key + "[" + std::to_string(i) + "]", field[i]);
      for (std::size_t i = 0; i < field.size() && key != "generate.prefixes"; ++i) {
        if (field[i].empty()) {
          throw UserError(key + "[" + std::to_string(i) + "] is empty: expected a glob pattern such as \"*.txt\"; "
                          "remove it");
        }
      }
    }
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    RangeChecker inner(prefix_ + std::string(name) + ".");
    VisitFields(section, inner);
  }

 private:
  // Every string key is refused with a NUL byte: the OS reads a path only up to it ("a.txt\u0000.evil" would open
  // a.txt, and messages would be cut there), and no corpus text, prefix or pattern can hold one either (a document
  // with a NUL byte is not text).
  static void RejectNul(const std::string& key, const std::string& value) {
    const std::size_t at = value.find('\0');
    if (at == std::string::npos) return;
    throw UserError(key + " = " + Dumped(json(value)) + " holds a NUL byte (\\u0000, at byte " + std::to_string(at) +
                    "), which no path or text can hold: remove it");
  }

  // The default of this key, found by visiting a default Config for the same dotted key.
  json DefaultOf(std::string_view name) const {
    const json defaults = ConfigToJson(Config{});
    std::string path = "/" + prefix_ + std::string(name);
    std::replace(path.begin(), path.end(), '.', '/');
    return defaults.at(json::json_pointer(path));
  }

  std::string prefix_;
};

// One Markdown row per value field, showing the defaults of a default-constructed Config.
// Collects every key's documentation (ConfigKeyDocs), in VisitFields order.
class KeyDocCollector {
 public:
  explicit KeyDocCollector(std::vector<ConfigKeyDoc>& docs, std::string prefix = "") : docs_(docs), prefix_(std::move(prefix)) {}

  template <typename T>
  void operator()(std::string_view name, T& field, const Rule& rule, std::string_view meaning) {
    assert(meaning.find('|') == std::string_view::npos && "a '|' would split the Markdown cell");
    ConfigKeyDoc doc;
    doc.key = prefix_ + std::string(name);
    if constexpr (EnumField<T>) {
      for (auto spelling : EnumNames<T>::kNames) {
        doc.type += (doc.type.empty() ? "`" : ", `") + std::string(spelling) + "`";
        doc.choices.emplace_back(spelling);
      }
      doc.type = "one of " + doc.type;
    } else if constexpr (std::same_as<T, bool>) {
      doc.type = "boolean";
      doc.choices = {"true", "false"};
    } else if constexpr (IntegerField<T>) {
      doc.type = "integer";
      if constexpr (std::is_unsigned_v<T>) {
        if (rule.low == -kInf) doc.type += " >= 0";
      }
    } else if constexpr (std::same_as<T, double>) {
      doc.type = "number";
    } else if constexpr (std::same_as<T, std::string>) {
      doc.type = rule.required ? "string, required" : rule.non_empty ? "non-empty string" : "string";
      doc.is_path = doc.key == "train.out_dir";
    } else if constexpr (std::same_as<T, CorpusPaths>) {
      doc.type = "path or list of paths, required";
      doc.is_path = true;
    } else {
      doc.type = "list of strings";
    }
    const std::string bounds = DescribeBounds(rule);
    if (!bounds.empty()) doc.type += " " + bounds;
    doc.default_json = rule.required ? "" : ToJsonValue(field).dump();
    doc.meaning = std::string(meaning);
    doc.resumable = rule.resumable;
    docs_.push_back(std::move(doc));
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    KeyDocCollector inner(docs_, prefix_ + std::string(name) + ".");
    VisitFields(section, inner);
  }

 private:
  std::vector<ConfigKeyDoc>& docs_;
  std::string prefix_;
};

// Every key's value in a config, as JSON, by dotted key.
class ValueCollector {
 public:
  explicit ValueCollector(std::map<std::string, json>& values, std::string prefix = "")
      : values_(values), prefix_(std::move(prefix)) {}

  template <typename T>
  void operator()(std::string_view name, T& field, const Rule&, std::string_view) {
    values_[prefix_ + std::string(name)] = ToJsonValue(field);
  }

  template <typename S>
  void Section(std::string_view name, S& section) {
    ValueCollector inner(values_, prefix_ + std::string(name) + ".");
    VisitFields(section, inner);
  }

 private:
  std::map<std::string, json>& values_;
  std::string prefix_;
};

// --- text and file entry points ---------------------------------------------------------------------

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

json ParseJsonText(std::string_view text, std::string_view source_name) {
  try {
    return ParseJsonWithDepthLimit(text, source_name);
  } catch (const json::parse_error& e) {
    // nlohmann counts bytes read including the offending one; report the character before which it
    // stopped, counting columns in characters so that lines with Chinese text point at the right place.
    const std::size_t stop = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < stop; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    std::string reason = e.what();
    const auto after_position = reason.find(": ");
    if (after_position != std::string::npos) reason = reason.substr(after_position + 2);
    throw UserError(std::string(source_name) + ":" + std::to_string(line) + ":" + std::to_string(column) +
                    ": malformed JSON: " + EscapeControlChars(reason));
  } catch (const json::exception& e) {
    // A number too large for a double (e.g. 1e999) is out_of_range, not parse_error, and carries no position.
    std::string reason = e.what();
    const auto after_position = reason.find("] ");
    if (after_position != std::string::npos) reason = reason.substr(after_position + 2);
    throw UserError(std::string(source_name) + ": malformed JSON: " + EscapeControlChars(reason) +
                    "; write numbers that fit in a double (below about 1.8e308)");
  }
}

// Types and validates, naming where the config came from in every message.
Config TypedConfig(const json& j, const std::string& origin, const std::vector<std::string>& overrides = {}) {
  try {
    Config config = ConfigFromJson(j, overrides);
    ValidateConfig(config);
    return config;
  } catch (const UserError& e) {
    throw UserError(origin + ": " + e.what());
  }
}

}  // namespace

nlohmann::json ConfigToJson(const Config& config) {
  // The field lists take mutable references so one list serves readers and writers; work on a copy.
  Config copy = config;
  json out;
  JsonWriter writer(out);
  VisitFields(copy, writer);
  return out;
}

std::string CorpusPaths::Label() const {
  if (paths.empty()) return "(no corpus)";
  if (paths.size() == 1) return paths[0];
  return paths[0] + " + " + paths[1] + (paths.size() > 2 ? " + ..." : "") + " (" + std::to_string(paths.size()) +
         " paths)";
}

std::string OverrideKey(std::string_view assignment) {
  return std::string(Trim(assignment.substr(0, assignment.find('='))));
}

Config ConfigFromJson(const nlohmann::json& j, const std::vector<std::string>& overrides) {
  if (!j.is_object()) {
    throw UserError("expected a JSON object with the sections data, model, train and generate at the top level, got " +
                    Shown(j));
  }
  RejectUnknownKeys(j);  // first, all of them: a misspelt key may be why another value looks wrong
  std::vector<std::string> set_keys;
  for (const std::string& assignment : overrides) {
    set_keys.push_back(OverrideKey(assignment));
  }
  Config config;
  JsonReader reader(j, "", set_keys);
  VisitFields(config, reader);
  return config;
}

void ValidateConfig(const Config& config) {
  Config copy = config;
  RangeChecker checker;
  VisitFields(copy, checker);
  if (config.data.unknown != "error" && config.data.unknown != "skip") {
    throw UserError("data.unknown = " + Dumped(json(config.data.unknown)) +
                    " is not a policy: expected \"error\" (the default) or \"skip\" (leave such characters out)");
  }
  const double log_seconds = config.train.log_every_seconds;
  if (log_seconds < 0 && log_seconds != kLogEverySecondsAuto) {
    throw UserError("train.log_every_seconds = " + Dumped(json(log_seconds)) +
                    " is out of range: expected -1 (the default: 30 when stdout is not a terminal) or a number >= 0; "
                    "set it to 0 for no progress lines or to the seconds between them, e.g. 30");
  }
  const double min_lr = config.train.lr_schedule.min_lr, lr = config.train.optimizer.lr;
  if (min_lr > lr) {
    throw UserError("train.lr_schedule.min_lr = " + Dumped(json(min_lr)) +
                    " is out of range: expected at most train.optimizer.lr (" + Dumped(json(lr)) +
                    ") so that the cosine schedule anneals down to it; lower train.lr_schedule.min_lr, e.g. to 0");
  }
  const ModelConfig& model = config.model;
  if (model.tie_embeddings && model.embedding_size != model.hidden_size) {
    throw UserError("model.tie_embeddings = true needs model.embedding_size == model.hidden_size, got " +
                    std::to_string(model.embedding_size) + " and " + std::to_string(model.hidden_size) +
                    ": set model.embedding_size to " + std::to_string(model.hidden_size) +
                    ", or model.tie_embeddings to false");
  }
  const double held_out = config.data.val_fraction + config.data.test_fraction;
  if (held_out >= 1.0) {
    throw UserError("data.val_fraction + data.test_fraction = " + Dumped(json(held_out)) +
                    ": expected less than 1 so that text is left for training; lower one of them");
  }
}

Config ParseConfigText(std::string_view text, std::string_view source_name) {
  return TypedConfig(ParseJsonText(text, source_name), std::string(source_name));
}

Config LoadConfigFile(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code error;
  const bool exists = std::filesystem::exists(path, error);
  CheckPathLookup(path, error, "config file");
  if (!exists) {
    // Naming the folder it was looked for in: the demo's relative configs/default.json is missed by a binary
    // started elsewhere, and repeating the same path as the example fixed nothing.
    throw UserError("config file \"" + path + "\" not found in " + std::filesystem::current_path(error).string() +
                    ": check the path (relative to that folder), or train without a config: charlm train --corpus "
                    "FILE (the built-in defaults)");
  }
  if (std::filesystem::is_directory(path, error)) {
    throw UserError("config file \"" + path + "\" is a directory: expected a JSON file, e.g. configs/default.json");
  }
  const std::string text = ReadRegularFile(
      path, FileRole{"config file", "check its permissions", kMaxConfigBytes,
                     "a config is a small JSON file; check that the path names the config"});

  json j = ParseJsonText(text, path);
  // A file that is not an object gets its own message from TypedConfig, not a confusing one from an override.
  if (j.is_object()) {
    for (const auto& assignment : overrides) ApplyOverride(j, assignment);
  }
  return TypedConfig(j, overrides.empty() ? path : path + " with --set overrides", overrides);
}

void ApplyOverride(nlohmann::json& j, std::string_view assignment) {
  const std::string example = "e.g. --set train.optimizer.lr=0.01 or --set model.cell=gru";
  const auto equals = assignment.find('=');
  const std::string_view key = Trim(assignment.substr(0, equals));
  if (equals == std::string_view::npos || key.empty()) {
    throw UserError("malformed override \"" + EscapeControlChars(assignment) + "\": expected KEY=VALUE with a dotted key, " +
                    example);
  }
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (parts.back().empty()) {
      throw UserError("malformed override \"" + EscapeControlChars(assignment) + "\": the key \"" + EscapeControlChars(key) +
                      "\" has an empty part; " + example);
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }

  json* node = &j;
  std::string walked;
  for (const auto& part : parts) {
    if (node->is_null()) *node = json::object();
    if (!node->is_object()) {
      throw UserError("override \"" + EscapeControlChars(assignment) + "\": \"" + EscapeControlChars(walked) +
                      "\" is a value, not a section; set it whole, e.g. --set " + EscapeControlChars(walked) + "=VALUE");
    }
    node = &(*node)[part];
    walked += (walked.empty() ? "" : ".") + part;
  }
  const std::string_view value = Trim(assignment.substr(equals + 1));
  if (!json::accept(value.begin(), value.end())) {
    // A number JSON cannot hold (1e400) would otherwise become the string "1e400" and a misleading type error.
    const std::string text(value);
    char* end = nullptr;
    errno = 0;
    std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size() && errno == ERANGE) {
      throw UserError("--set " + EscapeControlChars(assignment) + ": " + EscapeControlChars(text) +
                      " is beyond the range of a number (a double holds magnitudes from about 2.2e-308 to 1.8e308): "
                      "give a value within it");
    }
  }
  *node = json::accept(value.begin(), value.end())
              ? ParseJsonWithDepthLimit(value, "--set " + EscapeControlChars(assignment))
              : json(std::string(value));
}

double ResolvedLogSeconds(double log_every_seconds, bool stdout_is_terminal) {
  if (log_every_seconds != kLogEverySecondsAuto) return log_every_seconds;
  return stdout_is_terminal ? 0 : kLogEverySecondsWhenRedirected;
}

const std::vector<ConfigKeyDoc>& ConfigKeyDocs() {
  static const std::vector<ConfigKeyDoc> docs = [] {
    std::vector<ConfigKeyDoc> collected;
    Config defaults;
    KeyDocCollector collector(collected);
    VisitFields(defaults, collector);
    return collected;
  }();
  return docs;
}

std::map<std::string, nlohmann::json> ConfigValues(const Config& config) {
  std::map<std::string, json> values;
  Config copy = config;
  ValueCollector collector(values);
  VisitFields(copy, collector);
  return values;
}

std::string ConfigKeysMarkdownTable() {
  std::string rows;
  for (const ConfigKeyDoc& doc : ConfigKeyDocs()) {
    const std::string default_text = doc.default_json.empty() ? "" : "`" + doc.default_json + "`";
    rows += "| `" + doc.key + "` | " + doc.type + " | " + default_text + " | " + doc.meaning + " |\n";
  }
  return "| key | type | default | meaning |\n|---|---|---|---|\n" + rows;
}

const std::vector<std::string>& ResumableConfigKeys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> resumable;
    for (const ConfigKeyDoc& doc : ConfigKeyDocs()) {
      if (doc.resumable) resumable.push_back(doc.key);
    }
    return resumable;
  }();
  return keys;
}

}  // namespace charlm
