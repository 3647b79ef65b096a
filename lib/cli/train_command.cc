// The `train` command: its options, the run (one process or one of a job's), and the lines that end it.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "cli/command_line.h"
#include "format/checkpoint.h"
#include "model/restore.h"
#include "util/file_io.h"
#include "util/errors.h"
#include "cli/commands.h"
#include "report/run_verdict.h"
#include "cli/stop_signals.h"
#include "parallel/train_job.h"
#include "parallel/workers.h"
#include "util/shell_quote.h"

namespace charlm {

Config ResolveTrainConfig(const std::string& config_path, const std::vector<std::string>& overrides,
                          const std::string& resume_path) {
  if (!config_path.empty()) return LoadConfigFile(config_path, overrides);
  if (resume_path.empty()) {
    throw UserError("train needs --config FILE (or --resume CKPT to continue a run): e.g. charlm train --config configs/default.json");
  }
  nlohmann::json j = LoadCheckpoint(resume_path).config;
  // A checkpoint copied to another folder continues there, beside itself, unless --set says otherwise: writing
  // into the folder it was saved from could overwrite whatever run lives there now.
  const bool out_dir_set = std::any_of(overrides.begin(), overrides.end(),
                                       [](const std::string& a) { return a.starts_with("train.out_dir="); });
  if (!out_dir_set && j.contains("train") && j["train"].is_object()) {
    const std::string folder = std::filesystem::path(resume_path).parent_path().string();
    const std::string here = folder.empty() ? "." : folder;
    j["train"]["out_dir"] = here;  // said by OutDirGuard once the folder is locked
  }
  for (const std::string& assignment : overrides) ApplyOverride(j, assignment);
  Config config = ConfigFromJson(j, overrides);
  ValidateConfig(config);
  return config;
}

namespace {

// The keys that make a checkpoint's weights and vocabulary what they are: a fine-tuning run keeps them.
constexpr const char* kArchitectureKeys[] = {"model.cell",           "model.hidden_size",  "model.num_layers",
                                             "model.embedding_size", "model.tie_embeddings", "model.activation",
                                             "model.reset_after",    "data.newline"};

// Kept from the checkpoint unless the user gives them: how strongly its model was regularized.
constexpr const char* kRegularizationKeys[] = {"model.dropout", "model.recurrent_dropout", "model.locked_dropout",
                                               "model.weight_drop", "model.embedding_dropout"};

// The dotted keys the user gave: by --set, and in the --config file.
std::set<std::string> KeysGivenByUser(const TrainCommand& command) {
  std::set<std::string> given;
  for (const std::string& assignment : command.overrides) given.insert(OverrideKey(assignment));
  if (command.config.empty()) return given;
  // LoadConfigFile has read and checked the file already: this second parse cannot fail on what it accepted.
  const nlohmann::json raw = nlohmann::json::parse(
      ReadRegularFile(command.config, FileRole{"config file", "check its permissions", kMaxConfigBytes, ""}), nullptr,
      /*allow_exceptions=*/false);
  if (!raw.is_object()) return given;
  for (const auto& [section, keys] : raw.items()) {
    if (!keys.is_object()) continue;
    for (const auto& [name, value] : keys.items()) given.insert(section + "." + name);
  }
  return given;
}

// The checkpoint's weights and vocabulary for a new run of `config`, whose architecture keys become the
// checkpoint's; one the user gave a different value is an error naming it.
InitialWeights FineTuningStart(const TrainCommand& command, Config& config) {
  RestoredModel restored = RestoreModel(command.init_from);
  const std::map<std::string, nlohmann::json> theirs = ConfigValues(restored.config);
  std::map<std::string, nlohmann::json> ours = ConfigValues(config);
  nlohmann::json j = ConfigToJson(config);
  const std::set<std::string> given = KeysGivenByUser(command);
  // Sets the dotted key ("model.dropout") to the checkpoint's value.
  const auto take_theirs = [&](const std::string& key) {
    j[key.substr(0, key.find('.'))][key.substr(key.find('.') + 1)] = theirs.at(key);
  };
  for (const char* key : kArchitectureKeys) {
    if (ours[key] == theirs.at(key)) continue;
    if (given.contains(key)) {
      throw UserError(std::string(key) + " = " + ours[key].dump() + " differs from " + command.init_from + "'s " +
                      theirs.at(key).dump() + ": fine-tuning keeps the checkpoint's model and vocabulary; remove " +
                      key + " from the config and --set, or train a new model without --init-from");
    }
    take_theirs(key);
  }
  // The regularization the checkpoint was trained with suits its model more than the built-in set: keys the user
  // did not give keep the checkpoint's values, said on the log (a walkthrough saw a --minutes model's locked dropout
  // silently reset to the defaults).
  std::string kept;  // "model.dropout=0.35, model.locked_dropout=true"
  for (const char* key : kRegularizationKeys) {
    if (given.contains(key) || ours[key] == theirs.at(key)) continue;
    take_theirs(key);
    kept += (kept.empty() ? "" : ", ") + std::string(key) + "=" + theirs.at(key).dump();
  }
  if (!kept.empty()) {
    spdlog::info("fine-tuning keeps {}'s regularization: {} (--set KEY=VALUE to change it)", command.init_from, kept);
  }
  config = ConfigFromJson(j, {});
  ValidateConfig(config);
  InitialWeights init;
  init.path = command.init_from;
  init.vocab = std::move(restored.vocab);
  init.params = std::move(restored.model.params());
  return init;
}

}  // namespace

TrainEndLines EndOfTrainLines(const TrainOutcome& outcome, const Config& config, const TrainEndContext& context) {
  TrainEndLines lines;
  const std::string program = context.program;
  // Under mpirun a resume hint starts the same number of processes (any divisor of train.batch_size would do).
  const std::string launcher =
      context.processes > 1 ? "mpirun -np " + std::to_string(context.processes) + " " : std::string();
  if (outcome.interrupted) {
    // No --config in the hint: the checkpoint holds the resolved config, --set values included, and a config
    // file without them would not match it.
    lines.notices.push_back("charlm: stopped by " + std::string(StopSignalName(context.stop_signal)) + "; saved " +
                            outcome.last_checkpoint + ". Resume with: " + launcher + program + " train --resume " +
                            ShellQuote(outcome.last_checkpoint));
    lines.exit_code = 128 + context.stop_signal;
    return lines;
  }
  if (outcome.budget_reached) {
    // train.max_steps counts the whole run, so going on needs a higher one; train.max_minutes is per invocation.
    const bool steps = outcome.budget.starts_with("train.max_steps");
    // The budget is stored in the checkpoint, so going on needs a new one (issue: a resumed run got 15 s more).
    // A number, not a placeholder, so that the hint runs as pasted (a walkthrough pasted "=M"): twice the steps,
    // or as many minutes again, rounded up to a whole one.
    const std::string more =
        steps ? " --set train.max_steps=" + std::to_string(2 * config.train.max_steps) +
                    " (the whole run's steps: any number above the steps taken; 0 for no limit)"
              : " --set train.max_minutes=" + std::to_string(static_cast<long long>(std::max(1.0, std::ceil(config.train.max_minutes)))) +
                    " (minutes more; the run's epochs and patience still apply)";
    lines.notices.push_back("charlm: stopped at " + outcome.budget + "; saved " + outcome.last_checkpoint +
                            ". Resume with: " + launcher + program + " train --resume " + ShellQuote(outcome.last_checkpoint) +
                            more);
    // Then what a finished run says: a budget is how a `train --minutes` run ends, with a validated best model.
  }
  // Where the model went and what to do with it, as the last lines a new user sees: only files on disk are
  // named (a resumed run can lack best.ckpt, TrainOutcome), and the commands use the best model there is.
  const std::string epochs = std::to_string(outcome.epochs_completed) + (outcome.epochs_completed == 1 ? " epoch" : " epochs");
  const std::string model = outcome.best_checkpoint.empty() ? outcome.last_checkpoint : outcome.best_checkpoint;
  const std::string missing = config.train.out_dir + " has no best.ckpt of it (see the warning at the start), so "
                              "the commands below use " + model;
  char figures[160];
  if (outcome.best_val_perplexity) {
    std::snprintf(figures, sizeof figures, "best validation perplexity %.3f (%.3f bits per character)",
                  *outcome.best_val_perplexity, std::log2(*outcome.best_val_perplexity));
    lines.logs.push_back("done after " + epochs + ": " + figures + ", " +
                         (outcome.best_checkpoint.empty() ? "reached before the resumed checkpoint; " + missing
                                                          : "saved in " + outcome.best_checkpoint));
  } else {
    std::snprintf(figures, sizeof figures, "training perplexity %.3f (%.3f bits per character)",
                  outcome.train_perplexity, std::log2(outcome.train_perplexity));
    lines.logs.push_back("done after " + epochs + ": " + figures + "; " +
                         (outcome.best_checkpoint.empty() ? "the best model came before the resumed checkpoint and " + missing
                                                          : "best model in " + outcome.best_checkpoint));
  }
  // What the figure means, as a user of the run most needs to know (the report's headline says the same).
  RunVerdictFacts facts;
  facts.best_val_perplexity = outcome.best_val_perplexity;
  facts.baseline_val_perplexity = outcome.baseline_val_perplexity;
  facts.best_epoch = outcome.best_epoch;
  facts.validations_since_best = outcome.validations_since_best;
  facts.budgeted = config.train.max_minutes > 0;
  facts.fine_tuned = context.fine_tuned;
  facts.dynamic_eval_command = program + " eval --checkpoint " + ShellQuote(model) + " --split val --dynamic --mix-ngram";
  const RunVerdict verdict = JudgeRun(facts);
  if (!verdict.against_baseline.empty()) lines.logs.push_back(verdict.against_baseline);
  if (!verdict.trend.empty()) lines.logs.push_back(verdict.trend);
  const std::string best = ShellQuote(model);
  if (!outcome.sample_prefix.empty()) {
    lines.logs.push_back("next: " + program + " generate --checkpoint " + best + " --prefix " +
                         ShellQuote(outcome.sample_prefix) + " --length 100");
  }
  if (config.data.val_fraction > 0) lines.logs.push_back("      " + program + " eval --checkpoint " + best + " --split val");
  if (!outcome.report_page.empty()) {
    lines.logs.push_back("report: " + outcome.report_page + " (learning curves and samples; open it in a browser)");
  }
  return lines;
}

int RunTrain(const TrainCommand& command, int* argc, char*** argv) {
  // Under mpirun, one of N processes training one model (lib/parallel/); rank 0 alone logs and writes files.
  std::unique_ptr<Workers>& workers = ProcessWorkers();
  workers = JoinWorkers(argc, argv);
  const bool speaks = workers->rank() == 0;
  if (!speaks) spdlog::set_level(spdlog::level::off);
  SetStopAcknowledgement(speaks, workers->size() > 1);
  if (!command.resume.empty() && (command.minutes || !command.corpus.empty())) {
    throw UserError(std::string(command.minutes ? "--minutes" : "--corpus") +
                    " starts a new run, and --resume " + command.resume +
                    " continues one; to give a resumed run more time use --set train.max_minutes=M");
  }
  if (!command.init_from.empty()) {
    if (!command.resume.empty()) {
      throw UserError("--init-from " + command.init_from + " starts a new run from a checkpoint's weights, and --resume " +
                      command.resume + " continues a run: give one of them");
    }
    if (command.minutes) {
      throw UserError("--minutes picks a model for the text, and --init-from keeps " + command.init_from +
                      "'s: give fine-tuning a time limit with --set train.max_minutes=M");
    }
    if (workers->size() > 1) {
      throw UserError("--init-from runs in one process for now: start it without mpirun");
    }
  }
  std::vector<std::string> resume_overrides = command.overrides;
  if (!command.out.empty()) resume_overrides.push_back("train.out_dir=" + command.out);  // --out wins, as --set would
  TrainEnvironment environment;
  Config config = command.resume.empty() ? ResolveNewRunConfig(command, workers.get(), &environment)
                                         : ResolveTrainConfig(command.config, resume_overrides, command.resume);
  std::optional<InitialWeights> init;
  if (!command.init_from.empty()) init = FineTuningStart(command, config);
  InstallStopHandlers();
  environment.stop_requested = [] { return StopSignal() != 0; };
  environment.progress_bar = speaks && isatty(STDERR_FILENO) != 0;
  // Open MPI hands each process a pseudo-terminal of its own as stdout, whatever mpirun's stdout is (a file,
  // a batch job's log): under a launcher the progress lines are printed as for a file.
  environment.stdout_is_terminal = isatty(STDOUT_FILENO) != 0 && !StartedByLauncher();
  environment.workers = workers.get();
  environment.loop_started = [] { MarkLoopStarted(); };
  environment.init = init ? &*init : nullptr;
  const TrainOutcome outcome = Train(config, command.resume, environment);
  if (!speaks) return outcome.interrupted ? 128 + StopSignal() : 0;
  const TrainEndLines lines = EndOfTrainLines(outcome, config, {(*argv)[0], workers->size(), StopSignal(), init.has_value()});
  for (const std::string& line : lines.notices) std::fprintf(stderr, "%s\n", line.c_str());
  for (const std::string& line : lines.logs) spdlog::info("{}", line);
  return lines.exit_code;
}

void RegisterTrain(CommandRegistry& registry) {
  registry.Add("train", "Train a model on a text (for a time budget) or from a JSON config; prints perplexity and samples", [](CommandBuilder& command) {
    auto options = std::make_shared<TrainCommand>();
    command.Text("--corpus", options->corpus, "UTF-8 text file, folder, compressed file or archive to train on "
                 "(data.corpus); without --config the built-in defaults, out_dir runs/<its name> (notes for notes.txt.gz)",
                 {.kind = OptionKind::kFile, .config_key = "data.corpus"});
    command.Number("--minutes", options->minutes, "time budget of the whole run, final validation included: "
                   "picks the model for this machine and text (without --config) and anneals the learning rate "
                   "over the time");
    command.Text("--out", options->out, "folder for the run's files (train.out_dir)",
                 {.kind = OptionKind::kFolder, .config_key = "train.out_dir"});
    command.Text("--config", options->config, "JSON config file (see docs/config.md)", {.kind = OptionKind::kFile});
    command.ConfigSettings(options->overrides, "override a config key: --set train.epochs=20 (repeatable)");
    command.Text("--resume", options->resume, "continue the run saved in this checkpoint (e.g. runs/x/last.ckpt)",
                 {.kind = OptionKind::kFile});
    command.Text("--init-from", options->init_from, "fine-tune: a new run on --corpus/--config starting from this "
                 "checkpoint's weights and vocabulary (fresh optimizer)", {.kind = OptionKind::kFile});
    command.Run([options](CommandContext& context) { return RunTrain(*options, context.argc, context.argv); });
  });
}

}  // namespace charlm
