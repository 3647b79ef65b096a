// docs/architecture.md's layer table is the graph the build enforces (build/layers.txt), and lib/ holds only layers.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "test_util.h"

namespace charlm {
namespace {

// "name" -> "below, below" (sorted, comma-joined), from lines "name:a;b" of build/layers.txt.
std::map<std::string, std::string> BuildGraph(const std::string& text) {
  std::map<std::string, std::string> graph;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string below = line.substr(colon + 1);
    std::map<std::string, int> names;
    std::istringstream parts(below);
    for (std::string part; std::getline(parts, part, ';');) names[part];
    std::string joined;
    for (const auto& [name, unused] : names) joined += (joined.empty() ? "" : ", ") + name;
    graph[line.substr(0, colon)] = joined;
  }
  return graph;
}

// The same from the rows "| name | a, b | ... |" of the document's layer table.
std::map<std::string, std::string> DocumentedGraph(const std::string& text) {
  std::map<std::string, std::string> graph;
  std::istringstream lines(text);
  bool in_table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("| layer | below it |")) { in_table = true; continue; }
    if (!in_table) continue;
    if (!line.starts_with("|")) break;
    if (line.starts_with("|---")) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) {
      while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      cells.push_back(cell);
    }
    std::map<std::string, int> names;
    std::istringstream parts(cells.at(1));
    for (std::string part; std::getline(parts, part, ',');) {
      while (!part.empty() && part.front() == ' ') part.erase(part.begin());
      if (!part.empty()) names[part];
    }
    std::string joined;
    for (const auto& [name, unused] : names) joined += (joined.empty() ? "" : ", ") + name;
    graph[cells.at(0)] = joined;
  }
  return graph;
}

TEST_CASE("architecture: docs/architecture.md draws the layers CMake enforces, and lib/ holds nothing else") {
  const std::filesystem::path layers = testing::CharlmBinary().parent_path() / "layers.txt";
  REQUIRE_MESSAGE(std::filesystem::exists(layers), layers.string());
  const auto built = BuildGraph(testing::ReadFile(layers));
  const auto documented = DocumentedGraph(testing::ReadFile(testing::SourceDir() / "docs" / "architecture.md"));
  CHECK(built.size() >= 10);
  for (const auto& [name, below] : built) {
    REQUIRE_MESSAGE(documented.count(name) == 1, "layer " << name << " is missing from docs/architecture.md");
    CHECK_MESSAGE(documented.at(name) == below, "layer " << name << ": CMake has below it '" << below
                                                         << "', docs/architecture.md '" << documented.at(name) << "'");
  }
  CHECK(documented.size() == built.size());
  for (const auto& entry : std::filesystem::directory_iterator(testing::SourceDir() / "lib")) {
    const std::string name = entry.path().filename().string();
    CHECK_MESSAGE(entry.is_directory(), "lib/" << name << " is a unit outside every layer");
    if (entry.is_directory()) CHECK_MESSAGE(built.count(name) == 1, "lib/" << name << " is no CMake layer");
  }
}

// Compiles `source` with only layer `layer`'s include folder, as the build compiles that layer; the compiler's
// exit status (0 = it compiled).
int CompileInLayer(const std::string& layer, const std::string& source) {
  testing::TempDir dir;
  testing::WriteFile(dir / "probe.cc", source);
  const std::filesystem::path include = testing::CharlmBinary().parent_path() / "layers" / layer;
  const std::string command = std::string(CHARLM_CXX_COMPILER) + " -std=c++20 -fsyntax-only -I '" + include.string() +
                              "' '" + (dir / "probe.cc").string() + "' 2>/dev/null";
  return std::system(command.c_str());
}

TEST_CASE("architecture: a layer that includes a higher layer does not build; one below it does") {
  // model/ sees util/ (below it) but not run/ (above it): the same include rule the build uses.
  CHECK(CompileInLayer("model", "#include \"util/errors.h\"\nint main() {}\n") == 0);
  CHECK(CompileInLayer("model", "#include \"run/loop.h\"\nint main() {}\n") != 0);
  CHECK(CompileInLayer("util", "#include \"config/config.h\"\nint main() {}\n") != 0);
}

}  // namespace
}  // namespace charlm
