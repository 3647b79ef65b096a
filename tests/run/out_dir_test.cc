// ResumedInPlace: the one answer to "does this resumed run go on in its checkpoint's folder?" that OutDirGuard
// and Checkpointer both act on, whatever the spelling of the two paths.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "run/out_dir.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// Runs in `folder` for the object's life, so relative paths mean what they mean to a user there.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const fs::path& folder) : previous_(fs::current_path()) { fs::current_path(folder); }
  ~WorkingDirectory() { fs::current_path(previous_); }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  fs::path previous_;
};

TEST_CASE("out_dir: ResumedInPlace is true whenever the checkpoint's folder is out_dir, however each is spelt") {
  testing::TempDir dir;
  fs::create_directories(dir / "runs" / "x");
  fs::create_directories(dir / "runs" / "y");
  fs::create_directory_symlink(dir / "runs" / "x", dir / "link");
  const WorkingDirectory inside(dir.path());

  CHECK(ResumedInPlace("runs/x/last.ckpt", "runs/x"));
  CHECK(ResumedInPlace("runs/x/best.ckpt", "./runs/x/"));
  CHECK(ResumedInPlace((dir / "runs" / "x" / "last.ckpt").string(), "runs/x"));
  CHECK(ResumedInPlace("runs/x/last.ckpt", (dir / "runs" / "x").string()));
  CHECK(ResumedInPlace("link/last.ckpt", "runs/x"));
  CHECK(ResumedInPlace("runs/y/../x/last.ckpt", "runs/x"));
  {
    const WorkingDirectory in_run(dir / "runs" / "x");
    CHECK(ResumedInPlace("last.ckpt", "."));  // a bare file name is in the current folder
    CHECK(ResumedInPlace("last.ckpt", (dir / "runs" / "x").string()));
  }

  CHECK_FALSE(ResumedInPlace("", "runs/x"));  // a fresh run
  CHECK_FALSE(ResumedInPlace("runs/x/last.ckpt", "runs/y"));
  CHECK_FALSE(ResumedInPlace("runs/x/last.ckpt", "runs"));
  CHECK_FALSE(ResumedInPlace("runs/x/last.ckpt", "runs/missing"));  // not created yet: another folder
  CHECK_FALSE(ResumedInPlace("missing/last.ckpt", "missing"));
}

}  // namespace
}  // namespace charlm
