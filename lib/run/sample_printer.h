// Text generated at epoch ends, printed and kept in out_dir/samples.jsonl.
#pragma once

#include <functional>
#include <utility>

#include "run/handler.h"

namespace charlm {

// Text generated from each of generate.prefixes every generate.every epochs, printed (prefix and continuation, as
// the book prints them) and appended to out_dir/samples.jsonl as {"format": kSamplesFormat, "epoch", "prefix",
// "text"}, text being the continuation alone as in `charlm generate --json` (kept up to the resumed epoch on start).
// A stop request (stop_requested true) ends a sample at once: the epoch is saved before, the samples are dropped.
class SamplePrinter : public TrainHandler {
 public:
  explicit SamplePrinter(std::function<bool()> stop_requested = {}) : stop_requested_(std::move(stop_requested)) {}
  void OnTrainBegin(TrainingRun& run) override;
  void OnEpochEnd(TrainingRun& run, const EpochSummary& summary) override;

 private:
  std::function<bool()> stop_requested_;
};

}  // namespace charlm
