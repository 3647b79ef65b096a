// The files a run's handlers keep in out_dir: an earlier run's rows read back on resume, and files written whole.
#include "run/run_files.h"

#include <fstream>

#include "util/errors.h"

namespace charlm {

namespace fs = std::filesystem;

fs::path EarlierRunFile(const TrainingRun& run, const std::string& name) {
  const fs::path folder = fs::path(run.resume_path()).parent_path();
  return (folder.empty() ? fs::path(".") : folder) / name;
}

std::optional<std::vector<std::string>> KeptLines(const fs::path& path,
                                                  const std::function<bool(const nlohmann::json&)>& keep) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && keep(j)) kept.push_back(line);
  }
  return kept;
}

void WriteOutDirFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw UserError(path.string() + " cannot be written: check the folder's permissions and free space");
}

void WriteLines(const fs::path& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + '\n';
  WriteOutDirFile(path, text);
}

}  // namespace charlm
