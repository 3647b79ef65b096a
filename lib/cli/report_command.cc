// The `report` command: an HTML page of a run's curves and samples, or several runs' curves overlaid.
#include <memory>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "report/quality_chart.h"
#include "util/file_io.h"
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
  registry.Add(
      "quality-chart", "Write docs/quality.md's chart of validation loss against minutes for one text",
      [](CommandBuilder& command) {
        struct Options {
          std::string results, corpus, out;
        };
        auto options = std::make_shared<Options>();
        command.Text("--results", options->results, "bench/quality_per_minute.py's JSON lines",
                     {.required = true, .kind = OptionKind::kFile});
        command.Text("--corpus", options->corpus, "the text whose results to draw (matched by file name)",
                     {.required = true});
        command.Text("--out", options->out, "the SVG file to write", {.required = true, .kind = OptionKind::kFile});
        command.Run([options](CommandContext&) {
          const std::vector<QualityResult> results = ParseQualityResults(
              ReadRegularFile(options->results, FileRole{"results file", "check the path", std::uint64_t{64} << 20,
                                                         "keep one benchmark's results per file"}),
              options->results);
          WriteFileAtomically(options->out, QualityChartSvg(results, options->corpus) + "\n", "SVG chart");
          return 0;
        });
      },
      /*hidden=*/true);
}

}  // namespace charlm
