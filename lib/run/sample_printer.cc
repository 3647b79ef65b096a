// Text generated at epoch ends, printed and kept in out_dir/samples.jsonl.
#include "run/sample_printer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "generate/generate.h"
#include "report/report.h"
#include "run/run_files.h"
#include "util/errors.h"
#include "util/json_parse.h"
#include "util/rng.h"

namespace charlm {

namespace fs = std::filesystem;

// Keeps the samples of the epochs before the resumed position, from the checkpoint's folder as MetricsWriter does
// (a run that never sampled has no samples.jsonl: nothing to say); starts the file afresh otherwise.
void SamplePrinter::OnTrainBegin(TrainingRun& run) {
  const GenerateConfig& generate = run.config().generate;
  if (generate.every > 0) {
    // The samples of an epoch are held until they print (their text twice: as ids and decoded): refused now, not
    // after the first epoch's training.
    const auto prefixes = static_cast<std::int64_t>(std::max<std::size_t>(generate.prefixes.size(), 1));
    const AllocationScope check("an epoch's samples (" + std::to_string(prefixes) + " x generate.length " +
                                    std::to_string(generate.length) + " characters)",
                                "give a smaller generate.length, or set generate.every=0",
                                2 * GenerationBytes(generate.length, 1, false) * static_cast<std::uint64_t>(prefixes));
  }
  const fs::path path = fs::path(run.config().train.out_dir) / "samples.jsonl";
  std::vector<std::string> kept;
  if (run.progress().epochs_completed > 0) {
    kept = KeptLines(EarlierRunFile(run, "samples.jsonl"), [&](const nlohmann::json& j) {
             const std::optional<int> epoch = j.contains("epoch") ? ExactInteger<int>(j["epoch"]) : std::nullopt;
             return epoch && *epoch <= run.progress().epochs_completed;
           }).value_or(std::vector<std::string>());
  }
  WriteLines(path, kept);
}

void SamplePrinter::OnEpochEnd(TrainingRun& run, const EpochSummary& summary) {
  const Config& config = run.config();
  if (config.generate.every <= 0 || summary.epoch % config.generate.every != 0) return;
  if (run.stop_reason() == StopReason::kSignal) return;  // the user wants out, not samples
  const StopRequested stop = [&] { return run.PollStopSignal(stop_requested_); };
  Rng rng(MixSeed(MixSeed(config.train.seed, kGenerateStream), static_cast<std::uint64_t>(summary.epoch - 1)));
  const SamplingOptions sampling = SamplingFromConfig(config.generate);
  // All samples first, then the lines: a progress bar says "sampling" meanwhile and is gone before they print.
  run.Announce("sampling");
  const std::vector<std::string> prefixes = SamplePrefixes(config.generate.prefixes, run.data());
  std::vector<GeneratedParts> samples;
  for (const std::string& prefix : prefixes) {
    samples.push_back(GenerateParts(run.model(), run.data().vocab, prefix, sampling, rng, UnknownPolicy::kError,
                                    config.data.newline, stop));
    if (stop()) break;
  }
  run.Announce("");
  if (stop()) return;  // cut short: a partial sample is not the epoch's sample
  const fs::path path = fs::path(config.train.out_dir) / "samples.jsonl";
  std::ofstream log(path, std::ios::app);
  for (std::size_t k = 0; k < samples.size(); ++k) {
    spdlog::info(" - {}{}", samples[k].prefix, samples[k].continuation);  // as the book prints it
    log << nlohmann::json{{"format", kSamplesFormat},
                          {"epoch", summary.epoch},
                          {"prefix", prefixes[k]},
                          {"text", samples[k].continuation}}.dump()
        << '\n';
  }
  log.flush();
  if (!log) throw UserError(path.string() + " cannot be written: check free space");
}

}  // namespace charlm
