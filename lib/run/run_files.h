// The files a run's handlers keep in out_dir: an earlier run's rows read back on resume, and files written whole.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "run/run_state.h"

namespace charlm {

// A resumed run's earlier rows are in the checkpoint's folder: out_dir itself when it resumes in place, else the
// folder it was resumed from (whose files are only read).
std::filesystem::path EarlierRunFile(const TrainingRun& run, const std::string& name);

// The lines of `path` that are JSON objects `keep` accepts; nullopt when there is no such file.
std::optional<std::vector<std::string>> KeptLines(const std::filesystem::path& path,
                                                  const std::function<bool(const nlohmann::json&)>& keep);

// Replaces out_dir's file `path` with `text`, checked after a flush (so a full disk is an error, not a short file).
void WriteOutDirFile(const std::filesystem::path& path, const std::string& text);

// Replaces out_dir's file `path` with `lines`, each ended by a newline (WriteOutDirFile).
void WriteLines(const std::filesystem::path& path, const std::vector<std::string>& lines);

}  // namespace charlm
