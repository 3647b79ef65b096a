// ParseCommandLine and RunChosenCommand: CLI11's errors in charlm's one-line form, and the last word on failures.
#include "cli/command_line.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "parallel/workers.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/suggest.h"

namespace charlm {
namespace {

// The command being run, for the out-of-memory line outside every allocation scope.
std::string& ChosenCommandName() {
  static std::string name;
  return name;
}

// The one line for std::bad_alloc and std::length_error: what was being allocated (lib/util/errors.h) and its fix.
void PrintAllocationError(const char* problem) {
  const std::string& what = AllocationScope::What();
  if (!what.empty()) {
    std::fprintf(stderr, "charlm: error: %s while allocating %s: %s\n", problem, what.c_str(),
                 AllocationScope::Fix().c_str());
  } else if (ChosenCommandName() == "train") {
    std::fprintf(stderr, "charlm: error: %s: free memory, or make the model, train.batch_size or train.num_steps "
                         "smaller\n", problem);
  } else {
    std::fprintf(stderr, "charlm: error: %s in charlm %s: give it a smaller input, free memory, or raise this "
                         "process's memory limit (ulimit -v)\n", problem, ChosenCommandName().c_str());
  }
}

// An allocation that fails where no exception may leave (a destructor such as nlohmann::json's, which allocates
// while it frees; a thread's function) ends in std::terminate: still the one line and exit 1, never an abort.
[[noreturn]] void TerminateOnAllocationFailure() {
  if (const std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::bad_alloc&) {
      PrintAllocationError("out of memory");
      std::fflush(stderr);
      std::_Exit(1);
    } catch (const std::length_error&) {
      PrintAllocationError("a size beyond what this machine can allocate");
      std::fflush(stderr);
      std::_Exit(1);
    } catch (...) {
    }
  }
  std::abort();
}

// Prints an error and gives the exit code. In a job of several processes it then ends all of them (MPI_Abort), so
// that none waits forever in a collective. An error every process meets alike (a config each of them reads) is
// printed once, by rank 0: the others wait a moment before printing, and rank 0's abort ends them first.
int Fail(const std::function<void()>& print) {
  const std::unique_ptr<Workers>& workers = ProcessWorkers();
  const bool job = workers != nullptr && workers->size() > 1;
  if (job && workers->rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
  print();
  std::fflush(stderr);
  if (job) workers->Abort(1);
  return 1;
}

// An unknown command or option as one line with the nearest known name (lib/util/suggest.h); empty for other parse
// errors, which keep CLI11's wording.
std::string UnknownNameMessage(CLI::App& app, int argc, char** argv) {
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty()) {
    if (argc < 2 || argv[1][0] == '-') return "";
    std::vector<std::string> commands;
    for (const CLI::App* command : app.get_subcommands([](CLI::App* c) { return !c->get_group().empty(); })) {
      commands.push_back(command->get_name());
    }
    return UnknownCommandMessage(argv[1], commands);
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
    const std::optional<std::string> option = OptionWord(argv[i]);
    if (option && std::find(extras.begin(), extras.end(), argv[i]) != extras.end()) {
      return UnknownOptionMessage(command.get_name(), *option, options);
    }
  }
  return "";
}

// A numeric option given a value CLI11 cannot convert ("Could not convert: --threads = abc"), as the project's one
// line with the option's kind and description (lib/util/suggest.h); empty for other errors. One place for every
// numeric option of every command: the option is found by its name among the parsed command's, its kind by its type.
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
                                    type.starts_with("FLOAT") ? NumberKind::kNumber : NumberKind::kInteger,
                                    option->get_description(), option->get_default_str());
  }
  return "";
}

}  // namespace

std::unique_ptr<Workers>& ProcessWorkers() {
  static std::unique_ptr<Workers> workers;
  return workers;
}

void LogToStderr() {
  // Idempotent: RunChosenCommand calls it for every command but train, and some commands again.
  std::shared_ptr<spdlog::logger> logger = spdlog::get("stderr");
  spdlog::set_default_logger(logger != nullptr ? logger : spdlog::stderr_color_mt("stderr"));
  spdlog::set_pattern("charlm: %l: %v");
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
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
  return std::nullopt;
}

int RunChosenCommand(const CommandRegistry& registry, CommandContext& context) {
  spdlog::set_pattern("[%H:%M:%S] %v");
  try {
    const CommandSpec* chosen = registry.Chosen();
    if (chosen != nullptr) ChosenCommandName() = chosen->name;
    std::set_terminate(TerminateOnAllocationFailure);
    // Only `train`'s log is its output; every other command's stdout carries what was asked for (text, a table,
    // JSON that must parse), so what it logs, warnings about the corpus included, goes to stderr.
    if (chosen != nullptr && chosen->name != "train") LogToStderr();
    if (chosen != nullptr) {
      for (const auto& check : chosen->checks) check();
    }
    const int exit_code = chosen != nullptr && chosen->run ? chosen->run(context) : 0;
    ProcessWorkers().reset();  // MPI_Finalize here, not among the static destructors after main
    try {
      CheckStandardOutput();
    } catch (const UserError& e) {
      std::fprintf(stderr, "charlm: error: %s\n", e.what());
      return exit_code != 0 ? exit_code : 1;
    }
    return exit_code;
  } catch (const UserError& e) {
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

}  // namespace charlm
