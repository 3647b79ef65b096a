// Helpers shared by the tests: temporary directories, file writing, paths to the source tree.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace charlm::testing {

inline std::filesystem::path SourceDir() { return CHARLM_SOURCE_DIR; }
inline std::filesystem::path CharlmBinary() { return CHARLM_BINARY; }
inline std::filesystem::path LyricsPath() { return SourceDir() / "corpus" / "jaychou_lyrics.txt"; }

// A fresh directory under the system temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("charlm_test_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace charlm::testing
