// Refuses to write a named output onto a command's inputs, a training run's files, or a file of another kind.
#include "format/output_guard.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/errors.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// A run's config.json is a few kB; anything far larger is not one, and is not read.
constexpr std::uintmax_t kMaxRunConfigBytes = 1 << 20;

// Enough of a file's start to tell the kinds apart (a safetensors header's length and its first byte).
constexpr std::size_t kSniffBytes = 64;

std::string FirstBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(kSniffBytes, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return bytes;
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// Whether `a` and `b` are one file (same device and inode); false when either is missing.
bool SameFile(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

}  // namespace

std::string DescribeOutputKind(OutputKind kind) {
  switch (kind) {
    case OutputKind::kCheckpoint: return "a charlm checkpoint";
    case OutputKind::kSafetensors: return "a safetensors file";
    case OutputKind::kHtml: return "an HTML page";
  }
  return "a file";
}

std::optional<OutputKind> SniffOutputKind(const std::string& path) {
  const std::string bytes = FirstBytes(path);
  if (bytes.starts_with("CHARLMCK")) return OutputKind::kCheckpoint;
  if (bytes.size() >= 9) {
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(path, ec);
    if (!ec && bytes[8] == '{' && header_length >= 2 && header_length <= size - 8) return OutputKind::kSafetensors;
  }
  std::string_view text(bytes);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  if (StartsWithNoCase(text, "<!DOCTYPE html") || StartsWithNoCase(text, "<html")) return OutputKind::kHtml;
  return std::nullopt;
}

const std::vector<std::string>& RunFileNames() {
  static const std::vector<std::string> names = {"last.ckpt",      "best.ckpt",   "metrics.jsonl", "samples.jsonl",
                                                 "config.json",    "report.html", "run_info.json", "baseline.json"};
  return names;
}

std::string RunFileAt(const std::string& path, const std::string& out_dir) {
  std::vector<std::string> names = RunFileNames();
  names.emplace_back(kRunLockFileName);
  for (const std::string& name : names) {
    const fs::path run_file = fs::path(out_dir) / name;
    if (SameFile(path, run_file)) return run_file.string();
  }
  return "";
}

std::vector<std::string> RunCorpusPaths(const fs::path& run_folder) {
  std::vector<std::string> paths;
  std::error_code ec;
  const fs::path config = run_folder / "config.json";
  if (!fs::is_regular_file(config, ec) || fs::file_size(config, ec) > kMaxRunConfigBytes) return paths;
  std::ifstream in(config);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_object() || !j["data"].contains("corpus")) return paths;
  const nlohmann::json& corpus = j["data"]["corpus"];
  for (const nlohmann::json& path : corpus.is_array() ? corpus : nlohmann::json::array({corpus})) {
    if (path.is_string()) paths.push_back(path.get<std::string>());
  }
  return paths;
}

void CheckOutputPath(const std::string& out, std::string_view option, const std::vector<CommandInput>& inputs,
                     OutputKind kind, bool force) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;  // nothing there to lose
  const std::string named = std::string(option) + " " + out;
  for (const CommandInput& input : inputs) {
    if (!input.path.empty() && SameFile(out, input.path)) {
      throw UserError(named + " is this command's own " + input.what + ": give another file name");
    }
  }
  // The folder the file really is in: a symbolic link elsewhere to a run's best.ckpt is that run's best.ckpt.
  const fs::path folder = fs::canonical(fs::path(out), ec).parent_path();
  const bool in_run_folder = !ec && (fs::exists(folder / kRunLockFileName, ec) || fs::exists(folder / "metrics.jsonl", ec));
  if (in_run_folder) {
    const std::string run_file = RunFileAt(out, folder.string());
    // A run's report.html is report's own page, rewritten by `charlm report` as by the run itself.
    const bool own_page = kind == OutputKind::kHtml && SameFile(out, folder / "report.html");
    if (!run_file.empty() && !own_page) {
      const fs::path shown = fs::relative(folder, ec);  // as the user would spell it, where it can be
      throw UserError(named + " is the " + fs::path(run_file).filename().string() + " of the training run in " +
                      (ec || shown.empty() ? folder : shown).string() +
                      ": give a file outside the run's folder, or another name");
    }
    // The run's corpus is its file too, wherever it is (its paths are as the run read them, from this folder's
    // point of view as from the user's): --force replaced it (a hostile pass).
    for (const std::string& corpus : RunCorpusPaths(folder)) {
      if (SameFile(out, corpus)) {
        const fs::path shown = fs::relative(folder, ec);
        throw UserError(named + " is the corpus of the training run in " + (ec || shown.empty() ? folder : shown).string() +
                        " (its data.corpus): give another file name; --force does not allow it");
      }
    }
  }
  if (!fs::is_regular_file(out, ec) || fs::file_size(out, ec) == 0) return;  // a folder fails at the write itself
  const std::optional<OutputKind> found = SniffOutputKind(out);
  if (found == kind || force) return;
  throw UserError(named + " exists and is not " + DescribeOutputKind(kind) + " (it is " +
                  (found ? DescribeOutputKind(*found) : std::string("not a file charlm writes")) +
                  "): give another file name, or --force to replace it");
}

}  // namespace charlm
