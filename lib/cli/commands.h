// Every command of charlm as a library call with a plain option struct, callable from a test, and the function
// that registers it on the command line (lib/cli/registry.h); one file per command in lib/cli/.
#pragma once

#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "cli/registry.h"
#include "parallel/train_job.h"
#include "util/shell_quote.h"
#include "parallel/workers.h"
#include "generate/generate.h"
#include "model/ngram.h"
#include "text/corpus.h"

namespace charlm {

// The config a `train` run uses: the file plus --set overrides; or, resuming without --config, the checkpoint's
// own config plus the overrides.
Config ResolveTrainConfig(const std::string& config_path, const std::vector<std::string>& overrides,
                          const std::string& resume_path);

struct TrainCommand {
  std::string config;                  // --config FILE
  std::vector<std::string> overrides;  // --set KEY=VALUE
  std::string resume;                  // --resume CKPT
  std::string corpus;                  // --corpus FILE: data.corpus (without --config: the built-in defaults)
  std::optional<double> minutes;       // --minutes M: the whole run's time budget, final validation included
  std::string out;                     // --out DIR: train.out_dir
  std::string init_from;               // --init-from CKPT: a new run from that checkpoint's weights (fine-tuning)
};

// The config of a new run from --corpus/--config, --minutes, --out and --set, in this order of precedence (--set
// last, so a user's assignment always wins). With --minutes and no --config, the model and schedule come from
// the budget plan (lib/speed/budget_plan.h), which times candidates here; its reasons are logged. `workers`
// (may be null) make every process of a job take rank 0's timings, so they all train the same model.
// `read`, when given, receives the corpus the budget plan read and the data section it read it with (Train can
// take it instead of reading the text again).
Config ResolveNewRunConfig(const TrainCommand& command, Workers* workers, TrainEnvironment* read = nullptr);
// Trains as `charlm train` does (under mpirun, as one process of the job); returns the exit code.
int RunTrain(const TrainCommand& command, int* argc, char*** argv);

// The lines that end a training run: notices (plain lines on stderr: a stop and how to resume) and logs (the
// result and what to do next), with the exit code.
struct TrainEndLines {
  std::vector<std::string> notices;
  std::vector<std::string> logs;
  int exit_code = 0;
};
struct TrainEndContext {
  std::string program;  // argv[0], as the user typed it
  int processes = 1;    // of the job (a resume hint under mpirun starts as many)
  int stop_signal = 0;  // the signal that stopped it, if one did
  bool fine_tuned = false;  // train --init-from: --minutes is not a way on
};
TrainEndLines EndOfTrainLines(const TrainOutcome& outcome, const Config& config, const TrainEndContext& context);

UnknownPolicy ParseUnknownPolicy(const std::string& text);  // "skip" | "error"
// --precision's value for eval and generate; bf16 is checked against this build and CPU before it is used.
void SetPrecision(const std::string& text, CharModel<float>& model);
// What --unknown skip left out of a text file (EncodeText says it for a prefix): never silent, as the figures
// cover only the rest.
void WarnSkippedText(const TextIds& text, const std::string& path);

struct GenerateCommand {
  std::string checkpoint;
  std::vector<std::string> prefixes;
  // Unset options take the checkpoint's generate section.
  std::optional<std::int64_t> length;  // whole numbers as typed: NarrowIntOption says when one is past int
  std::optional<double> temperature;
  std::optional<std::int64_t> top_k;
  std::optional<double> top_p;
  bool greedy = false;  // --greedy: argmax, whatever the checkpoint says
  bool sample = false;  // --sample: draw from the softmax even if the checkpoint's config says greedy
  std::string seed;     // --seed as typed (ParseSeed); empty = 0
  std::string unknown = "error";
  // Each file (or "-" for standard input), whole and unchanged, is one more prefix after the --prefix ones.
  std::vector<std::string> prefix_files;
  bool interactive = false;  // then read prefixes and :set commands from standard input, line by line
  bool json = false;         // one JSON object per prefix instead of the text
  std::optional<std::int64_t> beam;
  std::optional<double> length_penalty;
  std::optional<double> repetition_penalty;
  std::optional<std::int64_t> repetition_window;
  std::optional<std::int64_t> no_repeat_ngram;
  std::vector<std::string> stop;  // --stop as typed, escapes undecoded (ParseStopString)
  std::string precision = "fp32";  // --precision: fp32 | bf16 (whatever the checkpoint was trained in)
};


// Where `generate` reads and writes: prompt = standard input is a terminal (the interactive session then shows a
// prompt on err).
struct GenerateIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  bool prompt = false;
};
// Prints one answer per prefix (the prefix followed by the generated characters, or a JSON line), prefix i (from
// 0) drawing with seed --seed + i; then, with --interactive, runs the session (lib/generate/generate_session.h). Returns
// the exit code: 0, or 1 when the session refused a line.
int RunGenerate(const GenerateCommand& command, const GenerateIo& io);
// RunGenerate with no input and warnings as logs.
void RunGenerate(const GenerateCommand& command, std::ostream& out);

// A prefix file's whole content ("-": standard input), at most kMaxPrefixFileBytes.
std::string ReadPrefixFile(const std::string& path);
inline constexpr std::uint64_t kMaxPrefixFileBytes = std::uint64_t{16} << 20;

// --dynamic and its settings, and --mix-ngram, which eval and score share (lib/cli/dynamic_options.cc defines
// them once).
struct DynamicCommandOptions {
  bool dynamic = false;
  bool mix_ngram = false;  // mix in the Kneser-Ney 5-gram of the checkpoint's training split
  std::optional<std::int64_t> segment;  // --dynamic-segment: 1 to kMaxDynamicSegment characters
  std::optional<double> lr;             // --dynamic-lr: 0 to kMaxDynamicLr
  std::optional<double> decay;          // --dynamic-decay: 0 to kMaxDynamicDecay
};
void AddDynamicOptions(CommandBuilder& command, DynamicCommandOptions& options);

struct ScoreCommand {
  std::string checkpoint;
  std::string text;    // a UTF-8 file, read with the checkpoint's newline policy
  std::string prefix;  // or the text itself
  bool prefix_given = false;
  bool json = false;
  bool tsv = false;     // one row per character
  bool colour = false;  // the text coloured by surprisal
  std::string unknown = "error";
  DynamicCommandOptions dynamic;
};
void RunScore(const ScoreCommand& command, std::ostream& out);

struct EvalCommand {
  std::string checkpoint;
  std::string text;   // a UTF-8 file, read with the checkpoint's newline policy
  std::string split;  // or "val" | "test" of the checkpoint's corpus
  bool json = false;
  std::string unknown = "error";
  std::optional<std::int64_t> streams;  // 1 to kMaxEvalStreams; unset = the checkpoint's train.batch_size (capped)
  std::optional<std::int64_t> burn_in;  // unset = kDefaultBurnIn
  std::string precision = "fp32";  // --precision: fp32 | bf16 (whatever the checkpoint was trained in)
  std::optional<std::int64_t> threads;  // 0 = all cores, up to kMaxEvalThreads; unset = the checkpoint's train.threads
  DynamicCommandOptions dynamic;
};
inline constexpr int kMaxEvalThreads = kMaxThreads;
void RunEval(const EvalCommand& command, std::ostream& out);

struct BaselineCommand {
  std::string corpus;                  // sets data.corpus (required unless the config names one)
  std::vector<std::string> include, exclude;  // set data.include / data.exclude
  std::string config;                  // optional: the data settings of this config
  std::vector<std::string> overrides;  // --set data.key=value
  int order = kDefaultNgramOrder;
  bool json = false;
};
// Fits the Kneser-Ney baseline on the training split and prints its validation perplexity and bits per character.
void RunBaseline(const BaselineCommand& command, std::ostream& out);

struct SummaryCommand {
  std::string config;
  std::vector<std::string> overrides;
};
void RunSummary(const SummaryCommand& command, std::ostream& out);



// One registration function per command (lib/cli/NAME_command.cc), in the order of `charlm --help`.
void RegisterVocab(CommandRegistry& registry);
void RegisterTrain(CommandRegistry& registry);
void RegisterGenerate(CommandRegistry& registry);
void RegisterEval(CommandRegistry& registry);
void RegisterBaseline(CommandRegistry& registry);
void RegisterScore(CommandRegistry& registry);
void RegisterSummary(CommandRegistry& registry);
void RegisterExport(CommandRegistry& registry);
void RegisterImport(CommandRegistry& registry);
void RegisterReport(CommandRegistry& registry);
void RegisterBench(CommandRegistry& registry);
void RegisterDynamicGrid(CommandRegistry& registry);  // hidden: the grid --dynamic's defaults come from
void RegisterHelp(CommandRegistry& registry);
// Hidden: writes the man pages, the bash completion and docs/cli.md (the build runs it).
void RegisterWriteDocs(CommandRegistry& registry);

}  // namespace charlm
