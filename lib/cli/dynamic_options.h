// What eval --dynamic and score --dynamic share: the options' checks, the gradient statistics' source, the JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "eval/dynamic.h"
#include "model/restore.h"
#include "text/dataset.h"

namespace charlm {

struct DynamicRun {
  DynamicOptions options;
  DynamicResult result;
  std::string stats_source;    // "training split" or "scored text"
  std::int64_t stats_chars = 0;  // characters the statistics came from (0 for the scored text's own past)
};

// The settings, checked (a one-line UserError naming the value otherwise); --dynamic-* without --dynamic is an error.
DynamicOptions CheckDynamicOptions(const DynamicCommandOptions& given);

// Adapts a copy of the restored model along `ids`, with statistics from the tail of the checkpoint's training split
// (`corpus` when already loaded, else loaded here) or, when that split cannot be had, from the scored text's own
// past; says which on stderr.
DynamicRun RunDynamic(const RestoredModel& restored, IdView ids, const DynamicOptions& options, const Dataset* corpus,
                      std::function<bool(std::int64_t, std::int64_t)> progress);

// method, dynamic_segment, dynamic_lr, dynamic_decay, stats_source, stats_chars.
nlohmann::json DynamicSettingsJson(const DynamicRun& run);

}  // namespace charlm
