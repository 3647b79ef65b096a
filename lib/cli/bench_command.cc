// The `bench` command: training, evaluation and generation throughput, the machine's matrix-product peaks and MFU,
// and memory (lib/speed/).
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "parallel/workers.h"
#include "speed/speed_bench.h"

namespace charlm {

void RegisterBench(CommandRegistry& registry) {
  registry.Add("bench", "Measure training/evaluation/generation speed, the fp32/bf16 GEMM peaks (MFU) and memory",
               [](CommandBuilder& command) {
    auto options = std::make_shared<BenchCommand>();
    command.Text("--config", options->config, "JSON config file (default: a preset on random tokens)",
                 {.kind = OptionKind::kFile});
    command.Text("--preset", options->preset, "when no --config is given",
                 {.show_default = true, .choices = {"d2l", "char-rnn"}});
    command.ConfigSettings(options->overrides, "override a config key (repeatable)");
    command.Number("--seconds", options->seconds, "time budget per measurement (each GEMM peak: up to 1 s)",
                   {.show_default = true});
    command.Flag("--json", options->json, "print one JSON object");
    command.Flag("--breakdown", options->breakdown,
                 "also time the training step's elementwise phases (cell kernels, softmax, optimizer)");
    command.Integer("--np", options->processes,
                    "train data-parallel over N processes, 1 to 4096 (train.batch_size is the global batch); starts "
                    "mpirun itself, with --allow-run-as-root when run as root",
                    {.show_default = true});
    command.Flag("--no-overlap", [options] { options->overlap = false; },
                 "with --np: sum the gradients after the backward pass instead of during it");
    command.Run([options](CommandContext& context) {
      CheckBenchProcesses(options->processes);
      if (options->processes > 1 && !StartedByLauncher()) ExecUnderMpirun(options->processes, *context.argc, *context.argv);
      std::unique_ptr<Workers>& workers = ProcessWorkers();
      workers = JoinWorkers(context.argc, context.argv);
      if (workers->rank() != 0) spdlog::set_level(spdlog::level::off);
      RunBench(*options, *workers, *context.out);
      return 0;
    });
  });
}

}  // namespace charlm
