// The `report` command: an HTML page of a run's curves and samples, or several runs' curves overlaid.
#include <memory>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "report/report.h"

namespace charlm {

void RegisterReport(CommandRegistry& registry) {
  registry.Add("report", "Write an HTML page of a run's learning curves and samples (several runs: overlaid)",
               [](CommandBuilder& command) {
    auto options = std::make_shared<ReportCommand>();
    command.Positionals("RUN_DIR", options->run_dirs, "train.out_dir of one run, or of several to compare",
                        {.required = true, .kind = OptionKind::kFolder});
    command.Text("--out", options->out, "the HTML file (default RUN_DIR/report.html; required for several)",
                 {.kind = OptionKind::kFile});
    command.Flag("--force", options->force,
                 "replace an existing --out file that is not an HTML page (never a run's own files)");
    command.Run([options](CommandContext& context) {
      LogToStderr();
      RunReport(*options, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
