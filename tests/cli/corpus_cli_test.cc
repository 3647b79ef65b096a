// Corpora as users have them, from the command line: vocab --json on a folder, a resumed run whose corpus
// changed, a corpus folder that holds the run's folder, a gzip file trained on directly.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::RunResult;
using testing::TempDir;

// A folder of three texts of words and a binary file.
void WriteTexts(const TempDir& dir) {
  fs::create_directories(dir / "texts" / "more");
  const std::string words = testing::WordText(120);
  testing::WriteFile(dir / "texts" / "one.txt", words.substr(0, 1500));
  testing::WriteFile(dir / "texts" / "more" / "two.txt", words.substr(1500, 1500));
  testing::WriteFile(dir / "texts" / "three.txt", words.substr(3000));
  testing::WriteFile(dir / "texts" / "image.bin", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11));
}

const std::vector<std::string> kTinyRun = {"--set", "model.hidden_size=8",  "--set", "train.batch_size=4",
                                           "--set", "train.num_steps=8",    "--set", "generate.every=0",
                                           "--set", "train.threads=1",      "--set", "train.report=false"};

std::vector<std::string> Train(std::vector<std::string> args) {
  args.insert(args.begin(), "train");
  args.insert(args.end(), kTinyRun.begin(), kTinyRun.end());
  return args;
}

}  // namespace

TEST_CASE("corpus cli: vocab --json on a folder counts its documents, and stdout is the JSON alone") {
  TempDir dir;
  WriteTexts(dir);
  const RunResult result = testing::RunStdout(dir, {"vocab", "--corpus", "texts", "--json", "--top", "3"});
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  const nlohmann::json report = nlohmann::json::parse(result.output);
  CHECK(report["documents"] == 4);
  CHECK(report["skipped"] == 1);
  CHECK(report["characters"].get<int>() == static_cast<int>(testing::WordText(120).size()) + 2);  // two separators
  CHECK(report["vocabulary"].get<int>() > 10);
  CHECK(report["bytes"].get<std::size_t>() == testing::WordText(120).size());
  CHECK(report["top"].size() == 3);
  const RunResult filtered =
      testing::RunStdout(dir, {"vocab", "--corpus", "texts", "--json", "--exclude", "more/*", "--set", "data.separator="});
  REQUIRE_MESSAGE(filtered.exit_code == 0, filtered.output);
  CHECK(nlohmann::json::parse(filtered.output)["characters"] == 1500 + testing::WordText(120).size() - 3000);
}

TEST_CASE("corpus cli: resuming on a folder whose document changed names it, unless data.allow_changed_corpus") {
  TempDir dir;
  WriteTexts(dir);
  const RunResult first = testing::Run(dir, Train({"--corpus", "texts", "--set", "train.epochs=1", "--out", "run"}));
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  // The same characters, counted alike, in another order: only the manifest can tell.
  std::string two = testing::ReadFile(dir / "texts" / "more" / "two.txt");
  std::reverse(two.begin(), two.end());
  testing::WriteFile(dir / "texts" / "more" / "two.txt", two);
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=2"}),
                   "--resume run/last.ckpt: the corpus texts changed since the checkpoint was written (document "
                   "'more/two.txt' has other contents of the same size): resume on the text the run trained on, or go "
                   "on with this one with --set data.allow_changed_corpus=true");
  const RunResult allowed = testing::Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=2", "--set",
                                               "data.allow_changed_corpus=true"});
  CHECK_MESSAGE(allowed.exit_code == 0, allowed.output);
  CHECK(allowed.output.find("going on with it (data.allow_changed_corpus)") != std::string::npos);

  // A single file is checked the same way.
  testing::WriteFile(dir / "one.txt", testing::WordText(60));
  REQUIRE(testing::Run(dir, Train({"--corpus", "one.txt", "--set", "train.epochs=1", "--out", "single"})).exit_code == 0);
  std::string one = testing::ReadFile(dir / "one.txt");
  std::reverse(one.begin(), one.end());
  testing::WriteFile(dir / "one.txt", one);
  CHECK_USER_ERROR(testing::Run(dir, {"train", "--resume", "single/last.ckpt", "--set", "train.epochs=2"}),
                   "(file 'one.txt' has other contents of the same size)");
  // eval --split would score another text under the split's name.
  CHECK_USER_ERROR(testing::Run(dir, {"eval", "--checkpoint", "single/last.ckpt", "--split", "val"}),
                   "the corpus one.txt changed since the checkpoint was written (file 'one.txt' has other contents of "
                   "the same size), so its val split is not the one the run held out");
}

TEST_CASE("corpus cli: a corpus folder holding out_dir is refused; a .gz trains as its text") {
  TempDir dir;
  WriteTexts(dir);
  CHECK_USER_ERROR(testing::Run(dir, Train({"--corpus", "texts", "--out", "texts/run"})),
                   "data.corpus folder texts holds train.out_dir texts/run");
  CHECK(!fs::exists(dir / "texts" / "run"));
  REQUIRE(testing::RunShell("gzip -c " + (dir / "texts" / "one.txt").string() + " > " +
                            (dir / "one.txt.gz").string()).exit_code == 0);
  const RunResult gz = testing::Run(dir, Train({"--corpus", "one.txt.gz", "--set", "data.val_fraction=0.2",
                                                "--set", "train.epochs=1", "--out", "gz"}));
  CHECK_MESSAGE(gz.exit_code == 0, gz.output);
  CHECK(gz.output.find("1500 characters") != std::string::npos);
}

TEST_CASE("corpus cli: eval and score --text on a folder read it with the checkpoint's include, exclude and separator") {
  TempDir dir;
  WriteTexts(dir);
  const RunResult trained = testing::Run(dir, Train({"--corpus", "texts", "--out", "run", "--set", "train.epochs=1",
                                                     "--set", "data.exclude=[\"more/*\"]"}));
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);
  // one.txt and three.txt with one separator between them: every character but the first is scored.
  const std::size_t expected = testing::WordText(120).size() - 1500 + 1 - 1;
  const RunResult eval = testing::RunStdout(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "texts", "--json"});
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  CHECK(nlohmann::json::parse(eval.output)["tokens"].get<std::size_t>() == expected);
  const RunResult score = testing::RunStdout(dir, {"score", "--checkpoint", "run/best.ckpt", "--text", "texts", "--json"});
  REQUIRE_MESSAGE(score.exit_code == 0, score.output);
  CHECK(nlohmann::json::parse(score.output)["predicted"].get<std::size_t>() == expected);
}

}  // namespace charlm
