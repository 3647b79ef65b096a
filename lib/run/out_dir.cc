// The training run's claim on train.out_dir: lock file, stale temporary files, an earlier run moved aside.
#include "run/out_dir.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "format/checkpoint.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "util/json_parse.h"

namespace charlm {

namespace fs = std::filesystem;

OutDirLock::OutDirLock(const std::string& out_dir) {
  const std::string path = (fs::path(out_dir) / kRunLockFileName).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int error = errno;
    throw UserError(path + ": cannot create the lock file of train.out_dir (" + std::strerror(error) +
                    "): choose a writable folder with --set train.out_dir=PATH");
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error != EWOULDBLOCK) {
      // A file system without locks (some network mounts): run unprotected rather than not at all.
      spdlog::warn("{}: cannot lock train.out_dir ({}); make sure no other run writes into {}", path,
                   std::strerror(error), out_dir);
      return;
    }
    char holder[32] = {};
    const ssize_t count = ::pread(fd_, holder, sizeof holder - 1, 0);
    std::string pid = count > 0 ? std::string(holder, static_cast<std::size_t>(count)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd_);
    fd_ = -1;
    throw UserError("train.out_dir \"" + out_dir + "\" is in use by another training run (process " +
                    (pid.empty() ? std::string("unknown") : pid) + "; lock file " + path +
                    "): wait for it to end or stop it, or choose another folder with --set train.out_dir=PATH");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    throw UserError(path + ": cannot write the lock file of train.out_dir (" + std::strerror(error) +
                    "): check free space, or choose another folder with --set train.out_dir=PATH");
  }
}

OutDirLock::~OutDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays, so no other run can lock a deleted copy of it
}

std::vector<std::string> RemoveStaleTempFiles(const std::string& out_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const long owner = AtomicTempFileOwner(name);
    if (owner == 0 || owner == ::getpid() || ProcessAlive(owner) || !entry.is_regular_file(ec)) continue;
    if (fs::remove(entry.path(), ec)) removed.push_back(name);
  }
  return removed;
}

void CheckCorpusOutsideRunFiles(const std::string& corpus, const std::string& out_dir) {
  if (corpus.empty()) return;
  std::error_code ec;
  if (fs::is_directory(corpus, ec)) {
    // A folder holding the run's folder would read the run's own files (and earlier runs') as its text.
    const fs::path folder = fs::weakly_canonical(corpus, ec);
    for (fs::path at = fs::weakly_canonical(out_dir, ec); !at.empty(); at = at.parent_path()) {
      if (at == folder) {
        throw UserError("data.corpus folder " + corpus + " holds train.out_dir " + out_dir +
                        ", whose run files would be read as text: choose a folder outside it with --set "
                        "train.out_dir=PATH, or name the text's own folder");
      }
      if (at == at.parent_path()) break;
    }
    return;
  }
  const std::string run_file = RunFileAt(corpus, out_dir);
  if (run_file.empty()) return;
  throw UserError("data.corpus " + corpus + " is the " + std::filesystem::path(run_file).filename().string() +
                  " of train.out_dir " + out_dir + ", which the run moves aside or rewrites: move the corpus out of the "
                  "run's folder, or choose another folder with --set train.out_dir=PATH");
}

namespace {

// Whether the checkpoint at `path` is past `step`; one that cannot be read counts as later (it is kept, not lost).
// Only its trainer state is needed, so its parameters are never held in memory.
bool LastCheckpointIsLater(const std::string& path, std::int64_t step) {
  try {
    const CheckpointMetadata last = LoadCheckpointMetadata(path);
    const auto it = last.trainer_state.find("global_step");
    const std::optional<std::int64_t> saved =
        it == last.trainer_state.end() ? std::nullopt : ExactInteger<std::int64_t>(*it);
    return !saved || *saved > step;
  } catch (const UserError&) {
    return true;
  }
}

}  // namespace

std::string MoveEarlierRunAside(const std::string& out_dir, bool copy) {
  std::vector<std::string> present;
  for (const std::string& name : RunFileNames()) {
    if (fs::exists(fs::path(out_dir) / name)) present.push_back(name);
  }
  if (present.empty()) return "";
  fs::path destination = fs::path(out_dir) / "previous";
  for (int n = 2; fs::exists(destination); ++n) destination = fs::path(out_dir) / ("previous." + std::to_string(n));
  std::error_code ec;
  fs::create_directory(destination, ec);
  for (const std::string& name : present) {
    if (ec) break;
    if (copy) {
      fs::copy_file(fs::path(out_dir) / name, destination / name, ec);
    } else {
      fs::rename(fs::path(out_dir) / name, destination / name, ec);
    }
  }
  if (ec) {
    throw UserError("train.out_dir \"" + out_dir + "\" holds an earlier run, which cannot be " + (copy ? "copied" : "moved") + " to " +
                    destination.string() + " (" + ec.message() +
                    "): move it yourself, or choose another folder with --set train.out_dir=PATH");
  }
  return destination.string();
}

bool ResumedInPlace(const std::string& resume_path, const std::string& out_dir) {
  if (resume_path.empty()) return false;
  std::error_code ec;  // a folder that is not there is not the other one
  return fs::equivalent(fs::absolute(fs::path(resume_path)).parent_path(), out_dir, ec);
}

bool ResumedInPlace(const TrainingRun& run) { return ResumedInPlace(run.resume_path(), run.config().train.out_dir); }

OutDirGuard::OutDirGuard(const std::string& out_dir) {
  lock_ = std::make_unique<OutDirLock>(out_dir);
}

void OutDirGuard::OnTrainBegin(TrainingRun& run) {
  const std::string& out_dir = run.config().train.out_dir;
  const std::vector<std::string> removed = RemoveStaleTempFiles(out_dir);
  if (!removed.empty()) {
    std::string names;
    for (const std::string& name : removed) names += (names.empty() ? "" : ", ") + name;
    spdlog::info("removed {} temporary file{} of a save that was killed: {}", removed.size(),
                 removed.size() == 1 ? "" : "s", names);
  }
  std::error_code ec;
  const bool resumed_here = ResumedInPlace(run);
  if (run.resumed() && !run.imported_from().empty()) {
    // Its config's out_dir is that of whoever trained the weights: the run goes beside the checkpoint (unless told
    // otherwise), said as an absolute path, since "." is easy to miss. Nothing to continue there: a new run.
    spdlog::info("fine-tuning {}: the run writes into {} ({}; --set train.out_dir=PATH to choose another)",
                 run.resume_path(), fs::weakly_canonical(fs::absolute(out_dir), ec).string(),
                 resumed_here ? "the checkpoint's folder" : "train.out_dir");
  } else if (run.resumed() && !resumed_here) {
    spdlog::warn("resuming {}: this run writes into train.out_dir {}, not into the checkpoint's folder {}",
                 run.resume_path(), out_dir, fs::absolute(fs::path(run.resume_path())).parent_path().string());
  }
  if (resumed_here && run.imported_from().empty() && !run.saved_out_dir().empty() && !fs::equivalent(run.saved_out_dir(), out_dir, ec)) {
    // A checkpoint copied elsewhere goes on beside itself (ResolveTrainConfig), leaving its old folder alone.
    spdlog::info("resuming {}: writing into its folder {} (it was saved into {}; --set train.out_dir=PATH to "
                 "choose another)", run.resume_path(), out_dir, run.saved_out_dir());
  }
  if (resumed_here && run.imported_from().empty()) {
    // Resumed from a checkpoint other than the folder's last.ckpt (best.ckpt, or a copy): the run goes on from an
    // earlier point and would overwrite last.ckpt and the metrics and samples past that point. Kept first.
    const fs::path last = fs::path(out_dir) / "last.ckpt";
    if (fs::is_regular_file(last, ec) && !fs::equivalent(last, run.resume_path(), ec) &&
        LastCheckpointIsLater(last.string(), run.progress().global_step)) {
      const std::string kept = MoveEarlierRunAside(out_dir, /*copy=*/true);
      spdlog::warn("resuming {}, not {}: the run goes on from there and rewrites last.ckpt, metrics.jsonl and "
                   "samples.jsonl, so the folder's files as they were are copied to {} first",
                   run.resume_path(), last.string(), kept);
    }
    return;
  }
  const std::string moved = MoveEarlierRunAside(out_dir);
  if (!moved.empty()) {
    run.set_earlier_run_folder(moved);
    spdlog::warn("{} held an earlier run; its files are now in {} (set train.out_dir to another folder to keep "
                 "runs apart)", out_dir, moved);
  }
}

}  // namespace charlm
