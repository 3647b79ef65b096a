// Parsing the command line into a chosen command, and running it with every failure as one line on stderr.
#pragma once

#include <memory>
#include <optional>

#include "cli/registry.h"

namespace charlm {

class Workers;

// Parses argv; on --help, --version or a parse error prints what CLI11 or charlm says and returns the exit code
// (0, or 2 for a wrong command line: an unknown name gets the nearest known one).
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

// Runs the chosen command. A UserError, an allocation failure or any other exception becomes one line on stderr
// and exit 1; in a job of several processes the job is then ended (MPI_Abort) so that none waits forever.
int RunChosenCommand(const CommandRegistry& registry, CommandContext& context);

// The processes of this job (`train` or `bench --np` under mpirun); null until a command joins them. The error
// path needs them to end the job.
std::unique_ptr<Workers>& ProcessWorkers();

// For commands whose standard output is their result (generated text, JSON): warnings go to stderr, so that
// `charlm generate ... > out.txt` keeps only the text.
void LogToStderr();

}  // namespace charlm
