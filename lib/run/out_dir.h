// The training run's claim on train.out_dir: one run at a time (a lock file), no stale temporary files of killed
// saves, and an earlier run's files moved aside rather than overwritten.
#pragma once

#include <string>
#include <vector>

#include "format/output_guard.h"
#include "run/handler.h"

namespace charlm {

// An exclusive flock on out_dir/train.lock, held for the object's life (the kernel drops it when the process
// dies, even by SIGKILL, so a crashed run never leaves a stale lock). The file holds the holder's process id, so
// a second run can say which process has the folder:
//   "train.out_dir \"run\" is in use by another training run (process 1234; lock file run/train.lock): ..."
class OutDirLock {
 public:
  explicit OutDirLock(const std::string& out_dir);
  ~OutDirLock();
  OutDirLock(const OutDirLock&) = delete;
  OutDirLock& operator=(const OutDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes out_dir's "NAME.tmp.PID" files (what an atomic write leaves when its process is killed mid-save) whose
// process is gone; returns their names. Only called under the lock, so no live run of this folder owns one.
std::vector<std::string> RemoveStaleTempFiles(const std::string& out_dir);

// RunFileNames(), the files a run writes into out_dir, are in format/output_guard.h, which refuses other commands'
// writes onto them.

// UserError when the run would move aside or overwrite its own corpus, i.e. data.corpus is one of out_dir's run
// files or its lock file (however either is spelt), or a folder holding out_dir:
//   "data.corpus run/metrics.jsonl is the metrics.jsonl of train.out_dir run, which the run moves aside and
//    rewrites: move the corpus out of the run's folder, or choose another folder with --set train.out_dir=PATH"
void CheckCorpusOutsideRunFiles(const std::string& corpus, const std::string& out_dir);

// Moves an earlier run's files (RunFileNames) from out_dir into out_dir/previous/ (previous.2/, previous.3/ if
// taken), so a new run never destroys one; returns that folder, or "" when out_dir held none. With copy, they are
// copied instead, for a run that goes on from them (a resume from an earlier checkpoint of the same folder).
std::string MoveEarlierRunAside(const std::string& out_dir, bool copy = false);

// Whether a resumed run goes on in the folder of the checkpoint it resumed from, i.e. that folder is out_dir
// however each is spelt ("runs/x/last.ckpt" and "./runs/x/", a symbolic link); false for a fresh run (an empty
// resume_path) and when either folder is missing. Such a run's earlier files are its own, to keep and go on with;
// any other run's out_dir is a new folder, whose earlier files are moved aside.
bool ResumedInPlace(const std::string& resume_path, const std::string& out_dir);
bool ResumedInPlace(const TrainingRun& run);

// The first handler of a run: takes the lock before any file is written, cleans stale temporary files, moves an
// earlier run aside (a fresh run, or fine-tuning an imported checkpoint), and says so when a resumed run writes
// somewhere other than the folder of the checkpoint it resumed from, and where a fine-tuning run writes.
class OutDirGuard : public TrainHandler {
 public:
  // Takes the lock at once (UserError naming the holder), so a run that cannot have the folder says so before it
  // logs or writes anything. The run refused a corpus among its files before (CheckCorpusOutsideRunFiles, when
  // TrainingRun reads the corpus), so the lock never truncates a corpus named train.lock.
  explicit OutDirGuard(const std::string& out_dir);
  void OnTrainBegin(TrainingRun& run) override;

 private:
  std::unique_ptr<OutDirLock> lock_;
};

}  // namespace charlm
