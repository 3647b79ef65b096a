// The charlm executable: parses the command line, sets up logging and signals, and calls into the library.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <algorithm>
#include <functional>
#include <memory>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "speed/speed_bench.h"
#include "util/shell_quote.h"
#include "ops/bf16_gemm.h"
#include "ops/blas.h"
#include "cli/commands.h"
#include "text/corpus.h"
#include "parallel/workers.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "interop/interop.h"
#include "report/report.h"
#include "util/suggest.h"
#include "parallel/train_job.h"
#include "text/vocab_report.h"

namespace {

// First SIGINT/SIGTERM/SIGHUP (a closed terminal or a dropped ssh session) or SIGPIPE (standard output's reader
// went away: `charlm train | head`): finish the step, save last.ckpt, exit 128+signal. Second: exit at once,
// touching nothing.
std::atomic<int> g_stop_signal{0};
// Whether this process speaks (rank 0 of a data-parallel job: the others' acknowledgements would repeat it), and
// whether the loop has started, so that the acknowledgement promises a save only when one will come: a signal
// during the start-up checks (or mpirun's SIGTERM after another rank's error) ends the run with nothing to save.
std::atomic<bool> g_acknowledges{true};
std::atomic<bool> g_loop_started{false};
// In a job of several processes, a SIGTERM before the loop starts is, but for a Ctrl-C in the first second, Open
// MPI ending the job after another process's error (MPI_Abort): that process prints why, and a "stopping" line
// from this one would announce a stop nobody asked for.
std::atomic<bool> g_in_job{false};

const char* StopSignalName(int signal_number) {
  switch (signal_number) {
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE (standard output closed)";
    default: return "SIGTERM";
  }
}

// Said at once (write(2) is async-signal-safe), so a user never wonders whether the Ctrl-C arrived.
void AcknowledgeStopSignal(int signal_number) {
  if (!g_acknowledges.load() || (g_in_job.load() && !g_loop_started.load())) return;
  const char* name = StopSignalName(signal_number);
  const char* rest = g_loop_started.load()
                         ? ": stopping; last.ckpt is saved first (a second signal quits at once without saving)\n"
                         : ": stopping (a second signal quits at once)\n";
  const char* parts[] = {"\ncharlm: ", name, rest};
  for (const char* part : parts) {
    if (::write(STDERR_FILENO, part, std::strlen(part)) < 0) return;  // nothing better to do in a handler
  }
}

void OnStopSignal(int signal_number) {
  if (signal_number == SIGPIPE) {
    // Every later write to the closed output raises it again: those must not count as a second signal. The
    // writes then fail with EPIPE instead, and the save goes on.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
    int expected = 0;
    if (g_stop_signal.compare_exchange_strong(expected, signal_number)) AcknowledgeStopSignal(signal_number);
    return;
  }
  int expected = 0;
  if (!g_stop_signal.compare_exchange_strong(expected, signal_number)) _exit(128 + signal_number);
  AcknowledgeStopSignal(signal_number);
}

void InstallStopHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  sigaction(SIGPIPE, &action, nullptr);
}

// The one line for std::bad_alloc and std::length_error: what was being allocated (lib/errors.h) and its fix.
void PrintAllocationError(const char* problem) {
  const std::string& what = charlm::AllocationScope::What();
  if (what.empty()) {
    std::fprintf(stderr, "charlm: error: %s: free memory, or make the model, train.batch_size or train.num_steps "
                         "smaller\n", problem);
  } else {
    std::fprintf(stderr, "charlm: error: %s while allocating %s: %s\n", problem, what.c_str(),
                 charlm::AllocationScope::Fix().c_str());
  }
}

// For commands whose standard output is their result (generated text, JSON): warnings go to stderr, so that
// `charlm generate ... > out.txt` keeps only the text.
void LogToStderr() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("stderr"));
  spdlog::set_pattern("charlm: %l: %v");
}

// The processes of this job (`train` under mpirun); null until a command joins them.
std::unique_ptr<charlm::Workers> g_workers;

// Prints an error and gives the exit code. In a job of several processes it then ends all of them (MPI_Abort), so
// that none waits forever in a collective. An error every process meets alike (a config each of them reads) is
// printed once, by rank 0: the others wait a moment before printing, and rank 0's abort ends them first.
int Fail(const std::function<void()>& print) {
  const bool job = g_workers != nullptr && g_workers->size() > 1;
  if (job && g_workers->rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
  print();
  std::fflush(stderr);
  if (job) g_workers->Abort(1);
  return 1;
}

// An unknown command or option as one line with the nearest known name (lib/suggest.h); empty for other parse
// errors, which keep CLI11's wording.
std::string UnknownNameMessage(CLI::App& app, int argc, char** argv) {
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty()) {
    if (argc < 2 || argv[1][0] == '-') return "";
    std::vector<std::string> commands;
    for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) commands.push_back(command->get_name());
    return charlm::UnknownCommandMessage(argv[1], commands);
  }
  const CLI::App& command = *parsed.back();
  const std::vector<std::string> extras = command.remaining();
  std::vector<std::string> options;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames()) options.push_back("--" + name);
    for (const std::string& name : option->get_snames()) options.push_back("-" + name);
  }
  // The first unknown option as typed, not as CLI11 lists its leftovers (in another order).
  for (int i = 1; i < argc; ++i) {
    const std::optional<std::string> option = charlm::OptionWord(argv[i]);
    if (option && std::find(extras.begin(), extras.end(), argv[i]) != extras.end()) {
      return charlm::UnknownOptionMessage(command.get_name(), *option, options);
    }
  }
  return "";
}

// A numeric option given a value CLI11 cannot convert ("Could not convert: --threads = abc"), as the project's one
// line with the option's kind and description (lib/suggest.h); empty for other errors. One place for every numeric
// option of every command: the option is found by its name among the parsed command's, its kind by its type.
std::string BadNumberMessage(CLI::App& app, const std::string& what) {
  const std::string lead = "Could not convert: ";
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty() || !what.starts_with(lead)) return "";
  const CLI::App& command = *parsed.back();
  for (const CLI::Option* option : command.get_options()) {
    const std::string head = lead + option->get_name() + " = ";
    if (!what.starts_with(head)) continue;
    const std::string type = option->get_type_name();
    if (!type.starts_with("INT") && !type.starts_with("UINT") && !type.starts_with("FLOAT")) return "";
    return charlm::BadNumberMessage(command.get_name(), option->get_name(), what.substr(head.size()),
                                    type.starts_with("FLOAT") ? charlm::NumberKind::kNumber : charlm::NumberKind::kInteger,
                                    option->get_description(), option->get_default_str());
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  charlm::PrepareRuntimeEnvironment(argv);  // before anything else: it may re-execute the program
  CLI::App app{"charlm: train, sample and evaluate character-level RNN/GRU/LSTM language models"};
  app.set_version_flag("--version", "charlm " CHARLM_VERSION "\n" + charlm::MpiDescription() +
                                        "\nOpenBLAS: " + charlm::BlasCoreDescription());
  app.require_subcommand(1);
  // Each subcommand registers its options here and sets `run` to the library call it makes.
  std::function<int()> run;

  // vocab: corpus statistics and the character table (lib/text/vocab_report.h).
  charlm::VocabReportOptions vocab_options;
  std::string vocab_newline = "keep";
  auto* vocab_command = app.add_subcommand("vocab", "Print corpus length, vocabulary size and most frequent characters");
  vocab_command->add_option("--corpus", vocab_options.corpus, "UTF-8 text file")->required();
  vocab_command->add_option("--newline", vocab_newline, "keep | space | drop")->capture_default_str();
  vocab_command->add_option("--max-chars", vocab_options.max_chars, "keep only the first N characters (0 = all)")
      ->capture_default_str();
  vocab_command->add_option("--top", vocab_options.top, "how many of the most frequent characters to list")
      ->capture_default_str();
  vocab_command->callback([&] {
    run = [&] {
      vocab_options.newline = charlm::ParseNewlinePolicy(vocab_newline, "--newline");
      charlm::PrintVocabReport(vocab_options, std::cout);
      return 0;
    };
  });

  // train: the training loop (lib/trainer.h).
  std::string train_config, resume_path;
  std::vector<std::string> train_overrides;
  auto* train_command = app.add_subcommand("train", "Train a model from a JSON config; prints perplexity and samples");
  train_command->add_option("--config", train_config, "JSON config file (see docs/config.md)");
  train_command->add_option("--set", train_overrides, "override a config key: --set train.epochs=20 (repeatable)");
  train_command->add_option("--resume", resume_path, "continue the run saved in this checkpoint (e.g. runs/x/last.ckpt)");
  train_command->callback([&] {
    run = [&] {
      // Under mpirun, one of N processes training one model (lib/dist/); rank 0 alone logs and writes files.
      g_workers = charlm::JoinWorkers(&argc, &argv);
      const bool speaks = g_workers->rank() == 0;
      if (!speaks) spdlog::set_level(spdlog::level::off);
      g_acknowledges.store(speaks);
      g_in_job.store(g_workers->size() > 1);
      const charlm::Config config = charlm::ResolveTrainConfig(train_config, train_overrides, resume_path);
      InstallStopHandlers();
      charlm::TrainEnvironment hooks;
      hooks.stop_requested = [] { return g_stop_signal.load() != 0; };
      hooks.progress_bar = speaks && isatty(STDERR_FILENO) != 0;
      // Open MPI hands each process a pseudo-terminal of its own as stdout, whatever mpirun's stdout is (a file,
      // a batch job's log): under a launcher the progress lines are printed as for a file.
      hooks.stdout_is_terminal = isatty(STDOUT_FILENO) != 0 && !charlm::StartedByLauncher();
      hooks.workers = g_workers.get();
      hooks.loop_started = [] { g_loop_started.store(true); };
      const charlm::TrainOutcome outcome = charlm::Train(config, resume_path, hooks);
      if (!speaks) return outcome.interrupted ? 128 + g_stop_signal.load() : 0;
      if (outcome.interrupted) {
        // No --config in the hint: the checkpoint holds the resolved config, --set values included, and a config
        // file without them would not match it.
        const int sig = g_stop_signal.load();
        // Under mpirun the hint starts the same number of processes (any divisor of train.batch_size would do).
        const std::string launcher =
            g_workers->size() > 1 ? "mpirun -np " + std::to_string(g_workers->size()) + " " : std::string();
        std::fprintf(stderr, "charlm: stopped by %s; saved %s. Resume with: %s%s train --resume %s\n",
                     StopSignalName(sig), outcome.last_checkpoint.c_str(), launcher.c_str(), argv[0],
                     charlm::ShellQuote(outcome.last_checkpoint).c_str());
        return 128 + sig;
      }
      if (outcome.budget_reached) {
        // train.max_steps counts the whole run, so going on needs a higher one; train.max_minutes is per invocation.
        const bool steps = outcome.budget.starts_with("train.max_steps");
        std::fprintf(stderr, "charlm: stopped at %s; saved %s. Resume with: %s train --resume %s%s\n",
                     outcome.budget.c_str(), outcome.last_checkpoint.c_str(), argv[0],
                     charlm::ShellQuote(outcome.last_checkpoint).c_str(),
                     steps ? " --set train.max_steps=N (N above the steps taken, or 0 for no limit)" : "");
        return 0;
      }
      // Where the model went and what to do with it, as the last lines a new user sees: only files on disk are
      // named (a resumed run can lack best.ckpt, TrainOutcome), and the commands use the best model there is.
      const std::string epochs = std::to_string(outcome.epochs_completed) + (outcome.epochs_completed == 1 ? " epoch" : " epochs");
      const std::string model = outcome.best_checkpoint.empty() ? outcome.last_checkpoint : outcome.best_checkpoint;
      const std::string missing = config.train.out_dir + " has no best.ckpt of it (see the warning at the start), so "
                                  "the commands below use " + model;
      if (outcome.best_val_perplexity) {
        spdlog::info("done after {}: best validation perplexity {:.3f} ({:.3f} bits per character), {}", epochs,
                     *outcome.best_val_perplexity, std::log2(*outcome.best_val_perplexity),
                     outcome.best_checkpoint.empty() ? "reached before the resumed checkpoint; " + missing
                                                     : "saved in " + outcome.best_checkpoint);
      } else {
        spdlog::info("done after {}: training perplexity {:.3f} ({:.3f} bits per character); {}", epochs,
                     outcome.train_perplexity, std::log2(outcome.train_perplexity),
                     outcome.best_checkpoint.empty() ? "the best model came before the resumed checkpoint and " + missing
                                                     : "best model in " + outcome.best_checkpoint);
      }
      const std::string best = charlm::ShellQuote(model);
      if (!outcome.sample_prefix.empty()) {
        spdlog::info("next: {} generate --checkpoint {} --prefix {} --length 100", argv[0], best,
                     charlm::ShellQuote(outcome.sample_prefix));
      }
      if (config.data.val_fraction > 0) spdlog::info("      {} eval --checkpoint {} --split val", argv[0], best);
      if (config.train.report) {
        spdlog::info("report: {} (learning curves and samples; open it in a browser)",
                     (std::filesystem::path(config.train.out_dir) / "report.html").string());
      }
      return 0;
    };
  });

  // generate: sample text from a checkpoint.
  charlm::GenerateCommand generate;
  // Whole-number options are read wide, so a value past int is refused with its range (NarrowIntOption).
  std::int64_t generate_length = 0, generate_top_k = 0;
  double generate_temperature = 1, generate_top_p = 1;
  auto* generate_command = app.add_subcommand("generate", "Generate text from a checkpoint, starting from prefixes");
  generate_command->add_option("--checkpoint", generate.checkpoint, "checkpoint file (last.ckpt or best.ckpt)")->required();
  generate_command->add_option("--prefix", generate.prefixes, "text to start from (repeatable)");
  generate_command->add_option("--prefix-file", generate.prefix_files,
                               "a file whose whole content is one prefix; - reads standard input (repeatable)");
  generate_command->add_flag("--interactive", generate.interactive,
                             "then read prefixes and :set commands from standard input, one per line");
  generate_command->add_flag("--json", generate.json, "one JSON object per prefix: text, log_prob, log_probs, options, seed");
  std::int64_t generate_beam = 0, generate_repetition_window = 0, generate_no_repeat_ngram = 0;
  double generate_length_penalty = 1, generate_repetition_penalty = 1;
  auto* beam_option = generate_command->add_option("--beam", generate_beam, "beam search with N beams (0 = none)");
  auto* length_penalty_option = generate_command->add_option(
      "--length-penalty", generate_length_penalty, "beam: rank by log-probability / length^P, 0 to 10 (default 1)");
  auto* repetition_penalty_option = generate_command->add_option(
      "--repetition-penalty", generate_repetition_penalty, "divide the logits of recent characters by R (1 = off)");
  auto* repetition_window_option = generate_command->add_option(
      "--repetition-window", generate_repetition_window, "characters the repetition penalty looks back (default 32)");
  auto* no_repeat_ngram_option = generate_command->add_option(
      "--no-repeat-ngram", generate_no_repeat_ngram, "never repeat a K-character sequence (0 = off)");
  generate_command->add_option("--stop", generate.stop, "stop when the continuation ends with this; \\n is a newline (repeatable)");
  auto* length_option = generate_command->add_option("--length", generate_length, "characters to generate");
  auto* temperature_option = generate_command->add_option("--temperature", generate_temperature, "softmax temperature");
  auto* top_k_option = generate_command->add_option("--top-k", generate_top_k, "sample among the K most likely (0 = all)");
  auto* top_p_option = generate_command->add_option("--top-p", generate_top_p, "sample within probability mass P");
  generate_command->add_flag("--greedy", generate.greedy, "always take the most likely character (the book's choice)");
  generate_command->add_flag("--sample", generate.sample,
                             "draw from the softmax even if the checkpoint's config says greedy");
  generate_command->add_option("--seed", generate.seed, "random seed, 0 to 2^64-1 (default 0); the same seed gives the same text");
  generate_command->add_option("--unknown", generate.unknown, "prefix characters outside the vocabulary: error | skip")
      ->capture_default_str();
  generate_command->add_option("--precision", generate.precision, "matrix products: fp32 | bf16 (oneDNN, avx512_bf16)")
      ->capture_default_str();
  generate_command->callback([&] {
    run = [&] {
      if (length_option->count() > 0) generate.length = generate_length;
      if (temperature_option->count() > 0) generate.temperature = generate_temperature;
      if (top_k_option->count() > 0) generate.top_k = generate_top_k;
      if (top_p_option->count() > 0) generate.top_p = generate_top_p;
      if (beam_option->count() > 0) generate.beam = generate_beam;
      if (length_penalty_option->count() > 0) generate.length_penalty = generate_length_penalty;
      if (repetition_penalty_option->count() > 0) generate.repetition_penalty = generate_repetition_penalty;
      if (repetition_window_option->count() > 0) generate.repetition_window = generate_repetition_window;
      if (no_repeat_ngram_option->count() > 0) generate.no_repeat_ngram = generate_no_repeat_ngram;
      LogToStderr();
      return charlm::RunGenerate(generate, charlm::GenerateIo{std::cin, std::cout, std::cerr, isatty(STDIN_FILENO) != 0});
    };
  });

  // eval: perplexity of a checkpoint on a text or a split.
  charlm::EvalCommand eval;
  auto* eval_command = app.add_subcommand("eval", "Perplexity and bits per character of a checkpoint on a text");
  eval_command->add_option("--checkpoint", eval.checkpoint, "checkpoint file")->required();
  eval_command->add_option("--text", eval.text, "UTF-8 text file to score");
  eval_command->add_option("--split", eval.split, "val | test: a split of the checkpoint's own corpus");
  eval_command->add_flag("--json", eval.json, "print one JSON object");
  eval_command->add_option("--streams", eval.streams, "pieces scored side by side, 1 to 4096 (default train.batch_size; 1 = one stream)");
  eval_command->add_option("--burn-in", eval.burn_in, "characters each stream is warmed up on before its piece (default 256)");
  eval_command->add_option("--unknown", eval.unknown, "characters outside the vocabulary: error | skip")
      ->capture_default_str();
  eval_command->add_option("--precision", eval.precision, "matrix products: fp32 | bf16 (oneDNN, avx512_bf16)")
      ->capture_default_str();
  eval_command->add_option("--threads", eval.threads, "threads, 0 = all cores (default: the checkpoint's train.threads)");
  eval_command->callback([&] {
    run = [&] {
      LogToStderr();
      charlm::RunEval(eval, std::cout);
      return 0;
    };
  });

  // baseline: the Kneser-Ney character n-gram yardstick (lib/model/ngram.h).
  charlm::BaselineCommand baseline;
  auto* baseline_command =
      app.add_subcommand("baseline", "Validation perplexity of a Kneser-Ney character n-gram fitted on the training split");
  baseline_command->add_option("--corpus", baseline.corpus, "UTF-8 text file (data.corpus)");
  baseline_command->add_option("--order", baseline.order, "n-gram order, 1 (add-one unigram) to 10")->capture_default_str();
  baseline_command->add_option("--config", baseline.config, "take the data settings (split, newline, ...) from this config");
  baseline_command->add_option("--set", baseline.overrides, "override a config key: --set data.newline=space (repeatable)");
  baseline_command->add_flag("--json", baseline.json, "print {\"order\", \"val_perplexity\", \"val_bpc\"}");
  baseline_command->callback([&] {
    run = [&] {
      charlm::RunBaseline(baseline, std::cout);
      return 0;
    };
  });

  // score: how likely a text is under a checkpoint, character by character.
  charlm::ScoreCommand score;
  auto* score_command = app.add_subcommand("score", "Log-probability, perplexity and per-character surprisal of a text");
  score_command->add_option("--checkpoint", score.checkpoint, "checkpoint file")->required();
  score_command->add_option("--text", score.text, "UTF-8 text file to score");
  auto* score_prefix_option = score_command->add_option("--prefix", score.prefix, "the text to score itself");
  score_command->add_flag("--json", score.json, "print one JSON object with every character's surprisal");
  score_command->add_flag("--tsv", score.tsv, "print one tab-separated row per character");
  score_command->add_flag("--color", score.colour, "print the text coloured by surprisal (ANSI colours)");
  score_command->add_option("--unknown", score.unknown, "characters outside the vocabulary: error | skip")
      ->capture_default_str();
  score_command->callback([&] {
    run = [&] {
      score.prefix_given = score_prefix_option->count() > 0;
      LogToStderr();
      charlm::RunScore(score, std::cout);
      return 0;
    };
  });

  // summary: the model's layers and parameter counts.
  charlm::SummaryCommand summary;
  auto* summary_command = app.add_subcommand("summary", "Print a Keras-like table of layers and parameter counts");
  summary_command->add_option("--config", summary.config, "JSON config file")->required();
  summary_command->add_option("--set", summary.overrides, "override a config key (repeatable)");
  summary_command->callback([&] {
    run = [&] {
      charlm::RunSummary(summary, std::cout);
      return 0;
    };
  });

  // export / import: the weights as safetensors under PyTorch's state_dict names (lib/interop/interop.h).
  charlm::ExportCommand export_options;
  auto* export_command =
      app.add_subcommand("export", "Write a checkpoint's weights as safetensors under PyTorch's state_dict names");
  export_command->add_option("--checkpoint", export_options.checkpoint, "checkpoint file")->required();
  export_command->add_option("--out", export_options.out, "safetensors file to write, e.g. model.safetensors")
      ->required();
  export_command->callback([&] {
    run = [&] {
      charlm::RunExport(export_options, std::cout);
      return 0;
    };
  });
  charlm::ImportCommand import_options;
  auto* import_command =
      app.add_subcommand("import", "Build a checkpoint from a safetensors file with PyTorch's state_dict names");
  import_command->add_option("--safetensors", import_options.safetensors, "safetensors file to read")->required();
  import_command->add_option("--out", import_options.out, "checkpoint file to write, e.g. model.ckpt")->required();
  import_command->add_option("--vocab", import_options.vocab, "vocabulary JSON, for a file whose metadata has none");
  import_command->add_option("--config", import_options.config, "charlm config, for a file whose metadata has none");
  import_command->callback([&] {
    run = [&] {
      charlm::RunImport(import_options, std::cout);
      return 0;
    };
  });

  // report: an HTML page of a run's curves and samples, or several runs' validation curves (lib/report/).
  charlm::ReportCommand report;
  auto* report_command =
      app.add_subcommand("report", "Write an HTML page of a run's learning curves and samples (several runs: overlaid)");
  report_command->add_option("run_dirs", report.run_dirs, "train.out_dir of one run, or of several to compare")
      ->required();
  report_command->add_option("--out", report.out, "the HTML file (default RUN_DIR/report.html; required for several)");
  report_command->callback([&] {
    run = [&] {
      LogToStderr();
      charlm::RunReport(report, std::cout);
      return 0;
    };
  });

  // bench: training, evaluation and generation throughput (lib/bench.h).
  charlm::BenchCommand bench;
  auto* bench_command = app.add_subcommand("bench", "Measure training/evaluation/generation speed and memory");
  bench_command->add_option("--config", bench.config, "JSON config file (default: a preset on random tokens)");
  bench_command->add_option("--preset", bench.preset, "d2l | char-rnn, when no --config is given")->capture_default_str();
  bench_command->add_option("--set", bench.overrides, "override a config key (repeatable)");
  bench_command->add_option("--seconds", bench.seconds, "time budget per measurement")->capture_default_str();
  bench_command->add_flag("--json", bench.json, "print one JSON object");
  bench_command->add_flag("--breakdown", bench.breakdown,
                          "also time the training step's elementwise phases (cell kernels, softmax, optimizer)");
  bench_command
      ->add_option("--np", bench.processes,
                   "train data-parallel over N processes, 1 to 4096 (train.batch_size is the global batch); starts "
                   "mpirun itself, with --allow-run-as-root when run as root")
      ->capture_default_str();
  bench_command->add_flag("--no-overlap", [&](std::int64_t) { bench.overlap = false; },
                          "with --np: sum the gradients after the backward pass instead of during it");
  bench_command->callback([&] {
    run = [&] {
      charlm::CheckBenchProcesses(bench.processes);
      if (bench.processes > 1 && !charlm::StartedByLauncher()) charlm::ExecUnderMpirun(bench.processes, argc, argv);
      g_workers = charlm::JoinWorkers(&argc, &argv);
      if (g_workers->rank() != 0) spdlog::set_level(spdlog::level::off);
      charlm::RunBench(bench, *g_workers, std::cout);
      return 0;
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (const std::string number = BadNumberMessage(app, e.what()); !number.empty()) {
      std::fprintf(stderr, "charlm: error: %s\n", number.c_str());
      return 2;
    }
    if (const std::string unknown = UnknownNameMessage(app, argc, argv); !unknown.empty()) {
      std::fprintf(stderr, "charlm: error: %s\n", unknown.c_str());
      return 2;
    }
    std::fprintf(stderr, "charlm: error: %s: see charlm --help, or charlm COMMAND --help\n", e.what());
    return 2;
  }
  spdlog::set_pattern("[%H:%M:%S] %v");
  try {
    const int exit_code = run ? run() : 0;
    g_workers.reset();  // MPI_Finalize here, not among the static destructors after main
    try {
      charlm::CheckStandardOutput();
    } catch (const charlm::UserError& e) {
      std::fprintf(stderr, "charlm: error: %s\n", e.what());
      return exit_code != 0 ? exit_code : 1;
    }
    return exit_code;
  } catch (const charlm::UserError& e) {
    return Fail([&] { std::fprintf(stderr, "charlm: error: %s\n", e.what()); });
  } catch (const std::bad_alloc&) {
    return Fail([] { PrintAllocationError("out of memory"); });
  } catch (const std::length_error&) {
    // A size beyond what a container can hold: a size that should have been checked earlier, worded the same way.
    return Fail([] { PrintAllocationError("a size beyond what this machine can allocate"); });
  } catch (const std::exception& e) {
    return Fail([&] {
      std::fprintf(stderr, "charlm: error: internal error: %s; please report it with the command that caused it\n",
                   e.what());
    });
  }
}
