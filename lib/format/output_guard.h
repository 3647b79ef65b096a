// The one check before a command writes a file the user named: never onto its own inputs, never onto a training
// run's files, never onto an existing file of another kind (unless --force).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace charlm {

// The kinds of file charlm writes on request, told apart by their first bytes.
enum class OutputKind { kCheckpoint, kSafetensors, kHtml };

// "a charlm checkpoint", "a safetensors file", "an HTML page": for messages.
std::string DescribeOutputKind(OutputKind kind);

// The kind of the regular file at `path`, judged by its first bytes: a checkpoint starts with "CHARLMCK", a
// safetensors file with an 8-byte little-endian header length then a JSON object, an HTML page with "<!DOCTYPE
// html" or "<html" (case-insensitive, after blanks). nullopt for anything else, or a file that cannot be read.
std::optional<OutputKind> SniffOutputKind(const std::string& path);

// The files a training run writes into its train.out_dir (checkpoints, metrics, samples, config, report,
// baseline, run info); the run moves an earlier run's set of them aside (MoveEarlierRunAside).
const std::vector<std::string>& RunFileNames();

// The lock file a training run keeps in its train.out_dir (OutDirLock): it marks the folder as a run's.
inline constexpr std::string_view kRunLockFileName = "train.lock";

// The path of out_dir's run file or lock file that `path` is (compared by identity: ./x, ../ forms and symbolic
// links are the same file), or "" when it is none of them or either is missing.
std::string RunFileAt(const std::string& path, const std::string& out_dir);

// The paths of a run folder's config.json data.corpus (none when it has no readable config): a run's files too.
std::vector<std::string> RunCorpusPaths(const std::filesystem::path& run_folder);

// One input of a command, for the refusal to write onto it: its path and what it is, e.g. {"x.ckpt",
// "--checkpoint input"} or {"runs/x/metrics.jsonl", "input (the metrics of run runs/x)"}.
struct CommandInput {
  std::string path;
  std::string what;
};

// Throws UserError (one line naming `option`, `out` and the fix) when the file at `out` exists and
//   - is one of `inputs` (same device and inode, however it is spelt; --force does not allow it):
//       "--out self.ckpt is this command's own --checkpoint input: give another file name"
//   - is a training run's file (RunFileNames, train.lock) in a folder that holds a run (its train.lock or its
//     metrics.jsonl), save a run's report.html for an HTML page (report's own file; --force does not allow it):
//       "--out runs/x/best.ckpt is the best.ckpt of the training run in runs/x: give a file outside the run's folder"
//   - is a non-empty file that is not of `kind` (allowed with force):
//       "--out notes.txt exists and is not a safetensors file (it is not a file charlm writes): give another file
//        name, or --force to replace it"
// A missing file, an empty one, or one of `kind` passes.
void CheckOutputPath(const std::string& out, std::string_view option, const std::vector<CommandInput>& inputs,
                     OutputKind kind, bool force);

}  // namespace charlm
