// Runs the charlm executable with an output named onto work the user already has: a run's files, the command's
// own input, a file of another kind, a corpus among the run's files. Each is refused and leaves the file unchanged.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::Run;
using testing::RunResult;
using testing::TempDir;

// A trained tiny run in dir/run, and a copy of its best checkpoint as dir/model.ckpt.
void TrainTinyRun(const TempDir& dir) {
  testing::WriteTinyRun(dir);
  const RunResult trained = Run(dir, {"train", "--config", "tiny.json"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);
  REQUIRE(fs::exists(dir / "run" / "best.ckpt"));
  fs::copy_file(dir / "run" / "best.ckpt", dir / "model.ckpt");
}

// Runs charlm ARGS, which must fail with `phrase` in its one error line and leave `victim`'s bytes as they were.
void CheckRefusedAndUnchanged(const TempDir& dir, const std::vector<std::string>& args, const fs::path& victim,
                              const std::string& phrase) {
  const std::string before = ReadFile(victim);
  REQUIRE(!before.empty());
  const RunResult result = Run(dir, args);
  CHECK_USER_ERROR(result, phrase);
  const std::string changed = victim.string() + " was changed";
  CHECK_MESSAGE(ReadFile(victim) == before, changed);
}

TEST_CASE("cli: report --out naming a run's checkpoint or metrics is refused, the file unchanged") {
  TempDir dir;
  TrainTinyRun(dir);
  CheckRefusedAndUnchanged(dir, {"report", "run", "--out", "run/best.ckpt"}, dir / "run" / "best.ckpt",
                           "charlm: error: --out run/best.ckpt is this command's own input (run run's best.ckpt): "
                           "give another file name");
  CheckRefusedAndUnchanged(dir, {"report", "run", "--out", "run/metrics.jsonl"}, dir / "run" / "metrics.jsonl",
                           "--out run/metrics.jsonl is this command's own input (run run's metrics.jsonl)");
  // --force never allows it, and another run's files are refused too.
  CheckRefusedAndUnchanged(dir, {"report", "run", "--out", "./run/../run/last.ckpt", "--force"},
                           dir / "run" / "last.ckpt", "--out ./run/../run/last.ckpt is this command's own input");
  // The run's own page is report's to rewrite.
  const RunResult page = Run(dir, {"report", "run", "--out", "run/report.html"});
  CHECK_MESSAGE(page.exit_code == 0, page.output);
}

TEST_CASE("cli: report, export and import refuse a run's files that are not their inputs") {
  TempDir dir;
  TrainTinyRun(dir);
  fs::create_directory(dir / "other");
  fs::copy_file(dir / "run" / "metrics.jsonl", dir / "other" / "metrics.jsonl");
  CheckRefusedAndUnchanged(dir, {"report", "other", "--out", "run/best.ckpt", "--force"}, dir / "run" / "best.ckpt",
                           "charlm: error: --out run/best.ckpt is the best.ckpt of the training run in run: give a "
                           "file outside the run's folder, or another name");
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "model.ckpt", "--out", "run/last.ckpt", "--force"},
                           dir / "run" / "last.ckpt", "--out run/last.ckpt is the last.ckpt of the training run in run");
  REQUIRE(Run(dir, {"export", "--checkpoint", "model.ckpt", "--out", "model.safetensors"}).exit_code == 0);
  CheckRefusedAndUnchanged(dir, {"import", "--safetensors", "model.safetensors", "--out", "run/best.ckpt", "--force"},
                           dir / "run" / "best.ckpt", "--out run/best.ckpt is the best.ckpt of the training run in run");
}

TEST_CASE("cli: export and import never write onto their own input, however it is spelt, even with --force") {
  TempDir dir;
  TrainTinyRun(dir);
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "model.ckpt", "--out", "model.ckpt"}, dir / "model.ckpt",
                           "charlm: error: --out model.ckpt is this command's own --checkpoint input: give another "
                           "file name");
  fs::create_symlink("model.ckpt", dir / "link.ckpt");
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "model.ckpt", "--out", "link.ckpt", "--force"},
                           dir / "model.ckpt", "--out link.ckpt is this command's own --checkpoint input");
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "link.ckpt", "--out", "./model.ckpt", "--force"},
                           dir / "model.ckpt", "--out ./model.ckpt is this command's own --checkpoint input");

  REQUIRE(Run(dir, {"export", "--checkpoint", "model.ckpt", "--out", "model.safetensors"}).exit_code == 0);
  CheckRefusedAndUnchanged(dir, {"import", "--safetensors", "model.safetensors", "--out", "./model.safetensors", "--force"},
                           dir / "model.safetensors", "--out ./model.safetensors is this command's own --safetensors input");
  testing::WriteFile(dir / "vocab.json", R"({"tokens": ["a", "b"], "counts": [1, 1]})");
  CheckRefusedAndUnchanged(dir, {"import", "--safetensors", "model.safetensors", "--vocab", "vocab.json", "--out",
                                 "vocab.json", "--force"},
                           dir / "vocab.json", "--out vocab.json is this command's own --vocab input");
  CheckRefusedAndUnchanged(dir, {"import", "--safetensors", "model.safetensors", "--config", "tiny.json", "--out",
                                 "../" + dir.path().filename().string() + "/tiny.json"},
                           dir / "tiny.json", "is this command's own --config input");
}

TEST_CASE("cli: an existing file of another kind is replaced only with --force") {
  TempDir dir;
  TrainTinyRun(dir);
  testing::WriteFile(dir / "notes.txt", "my notes\n");
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "model.ckpt", "--out", "notes.txt"}, dir / "notes.txt",
                           "charlm: error: --out notes.txt exists and is not a safetensors file (it is not a file "
                           "charlm writes): give another file name, or --force to replace it");
  CheckRefusedAndUnchanged(dir, {"report", "run", "--out", "notes.txt"}, dir / "notes.txt",
                           "--out notes.txt exists and is not an HTML page (it is not a file charlm writes)");
  fs::copy_file(dir / "model.ckpt", dir / "keep.ckpt");
  CheckRefusedAndUnchanged(dir, {"export", "--checkpoint", "model.ckpt", "--out", "keep.ckpt"}, dir / "keep.ckpt",
                           "--out keep.ckpt exists and is not a safetensors file (it is a charlm checkpoint)");
  REQUIRE(Run(dir, {"export", "--checkpoint", "model.ckpt", "--out", "model.safetensors"}).exit_code == 0);
  CheckRefusedAndUnchanged(dir, {"import", "--safetensors", "model.safetensors", "--out", "notes.txt"},
                           dir / "notes.txt", "--out notes.txt exists and is not a charlm checkpoint");

  const RunResult forced = Run(dir, {"export", "--checkpoint", "model.ckpt", "--out", "notes.txt", "--force"});
  CHECK_MESSAGE(forced.exit_code == 0, forced.output);
  CHECK(ReadFile(dir / "notes.txt") != "my notes\n");
  // A file of the command's own kind is replaced as before.
  const RunResult again = Run(dir, {"export", "--checkpoint", "model.ckpt", "--out", "model.safetensors"});
  CHECK_MESSAGE(again.exit_code == 0, again.output);
  const RunResult reimport = Run(dir, {"import", "--safetensors", "model.safetensors", "--out", "keep.ckpt"});
  CHECK_MESSAGE(reimport.exit_code == 0, reimport.output);
}

TEST_CASE("cli: a corpus among the run's files is refused before the run moves it aside or overwrites it") {
  TempDir dir;
  TrainTinyRun(dir);
  // The earlier run's metrics as the corpus: enough text to train on, and it would be moved to previous/.
  std::string text;
  for (int i = 0; i < 3; ++i) text += ReadFile(dir / "text.txt");
  testing::WriteFile(dir / "run" / "metrics.jsonl", text);
  CheckRefusedAndUnchanged(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=run/metrics.jsonl"},
                           dir / "run" / "metrics.jsonl",
                           "charlm: error: data.corpus run/metrics.jsonl is the metrics.jsonl of train.out_dir run, "
                           "which the run moves aside or rewrites: move the corpus out of the run's folder, or "
                           "choose another folder with --set train.out_dir=PATH");
  CHECK(!fs::exists(dir / "run" / "previous"));
  fs::create_symlink("run/metrics.jsonl", dir / "corpus.txt");
  CheckRefusedAndUnchanged(dir, {"train", "--config", "tiny.json", "--set", "data.corpus=corpus.txt"},
                           dir / "run" / "metrics.jsonl", "data.corpus corpus.txt is the metrics.jsonl of train.out_dir run");
  CHECK(!fs::exists(dir / "run" / "previous"));
}

}  // namespace
}  // namespace charlm
