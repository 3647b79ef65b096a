// SniffOutputKind and CheckOutputPath: kinds told by their first bytes, and a file judged by identity, not spelling.
#include "format/output_guard.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "test_util.h"
#include "util/errors.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The message of the UserError CheckOutputPath throws, or "" when it passes.
std::string Refusal(const std::string& out, const std::vector<CommandInput>& inputs, OutputKind kind, bool force) {
  try {
    CheckOutputPath(out, "--out", inputs, kind, force);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST_CASE("output guard: the kinds are told by their first bytes") {
  TempDir dir;
  testing::WriteFile(dir / "a.ckpt", std::string("CHARLMCK") + std::string(8, '\0'));
  const std::string header = R"({"__metadata__":{}})";
  std::string safetensors(8, '\0');
  safetensors[0] = static_cast<char>(header.size());
  testing::WriteFile(dir / "a.safetensors", safetensors + header);
  testing::WriteFile(dir / "a.html", "\n  <!doctype HTML>\n<html></html>\n");
  testing::WriteFile(dir / "a.txt", "{\"not\": \"safetensors\"}\n");
  CHECK(SniffOutputKind((dir / "a.ckpt").string()) == OutputKind::kCheckpoint);
  CHECK(SniffOutputKind((dir / "a.safetensors").string()) == OutputKind::kSafetensors);
  CHECK(SniffOutputKind((dir / "a.html").string()) == OutputKind::kHtml);
  CHECK(SniffOutputKind((dir / "a.txt").string()) == std::nullopt);
  CHECK(SniffOutputKind((dir / "missing").string()) == std::nullopt);
}

TEST_CASE("output guard: an input is the same file through ./, ../ and a symbolic link, even with force") {
  TempDir dir;
  testing::WriteFile(dir / "in.ckpt", "CHARLMCK");
  fs::create_symlink(dir / "in.ckpt", dir / "link.ckpt");
  const std::vector<CommandInput> inputs = {{(dir / "in.ckpt").string(), "--checkpoint input"}};
  for (const fs::path& spelling : {dir / "." / "in.ckpt", dir / ".." / dir.path().filename() / "in.ckpt",
                                   dir / "link.ckpt"}) {
    CHECK(Refusal(spelling.string(), inputs, OutputKind::kCheckpoint, true) ==
          "--out " + spelling.string() + " is this command's own --checkpoint input: give another file name");
  }
  // Missing, empty and same-kind files pass; a foreign kind only with force.
  CHECK(Refusal((dir / "new.ckpt").string(), inputs, OutputKind::kCheckpoint, false).empty());
  testing::WriteFile(dir / "empty", "");
  CHECK(Refusal((dir / "empty").string(), inputs, OutputKind::kHtml, false).empty());
  CHECK(Refusal((dir / "link.ckpt").string(), {}, OutputKind::kCheckpoint, false).empty());
  CHECK(Refusal((dir / "in.ckpt").string(), {}, OutputKind::kHtml, false).find("is not an HTML page (it is a charlm "
                                                                              "checkpoint)") != std::string::npos);
  CHECK(Refusal((dir / "in.ckpt").string(), {}, OutputKind::kHtml, true).empty());
}

TEST_CASE("output guard: a run's files are refused even with force, its report.html is an HTML page's to replace") {
  TempDir dir;
  fs::create_directory(dir / "run");
  testing::WriteFile(dir / "run" / "metrics.jsonl", "{}\n");
  testing::WriteFile(dir / "run" / "best.ckpt", "CHARLMCK");
  testing::WriteFile(dir / "run" / "report.html", "<!DOCTYPE html>\n");
  fs::create_symlink(dir / "run" / "best.ckpt", dir / "elsewhere.ckpt");
  CHECK(Refusal((dir / "elsewhere.ckpt").string(), {}, OutputKind::kCheckpoint, true)
            .find("is the best.ckpt of the training run in ") != std::string::npos);
  CHECK(Refusal((dir / "run" / "report.html").string(), {}, OutputKind::kHtml, false).empty());
  CHECK(!Refusal((dir / "run" / "report.html").string(), {}, OutputKind::kSafetensors, true).empty());
  CHECK(RunFileAt((dir / "run" / "." / "metrics.jsonl").string(), (dir / "run").string()) ==
        (dir / "run" / "metrics.jsonl").string());
  CHECK(RunFileAt((dir / "run" / "notes.txt").string(), (dir / "run").string()).empty());
}

TEST_CASE("output guard: a run's corpus, named by its config.json, is refused even with force") {
  TempDir dir;
  fs::create_directory(dir / "run");
  testing::WriteFile(dir / "run" / "metrics.jsonl", "{}\n");
  testing::WriteFile(dir / "run" / "corpus.txt", "some text\n");
  testing::WriteFile(dir / "run" / "config.json",
                     "{\"data\":{\"corpus\":[\"" + (dir / "run" / "corpus.txt").string() + "\"]}}");
  CHECK(Refusal((dir / "run" / "corpus.txt").string(), {}, OutputKind::kHtml, true)
            .find("is the corpus of the training run in ") != std::string::npos);
  CHECK(RunCorpusPaths(dir / "run") == std::vector<std::string>{(dir / "run" / "corpus.txt").string()});
  // A text beside the run that is not its corpus stays the user's to replace with --force.
  testing::WriteFile(dir / "run" / "notes.txt", "other text\n");
  CHECK(Refusal((dir / "run" / "notes.txt").string(), {}, OutputKind::kHtml, true).empty());
}

}  // namespace
}  // namespace charlm
