// Checks that the test executable and the charlm binary are built and wired together.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "test_util.h"

TEST_CASE("the charlm binary is built beside the tests") {
  CHECK(std::filesystem::exists(charlm::testing::CharlmBinary()));
}

// CTest gets each test's name through a CMake list, where ';' separates items: a name holding one is cut there,
// matches no test, and CTest reports a pass without running anything.
TEST_CASE("no test name holds a semicolon, which would make CTest run nothing for it") {
  for (const auto& entry : std::filesystem::directory_iterator(charlm::testing::SourceDir() / "tests")) {
    if (entry.path().extension() != ".cc") continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t at = text.find("TEST_CASE(\""); at != std::string::npos; at = text.find("TEST_CASE(\"", at + 1)) {
      const std::size_t end = text.find("\")", at);
      const std::string name = text.substr(at, end - at);
      CHECK_MESSAGE(name.find(';') == std::string::npos, (entry.path().filename().string() + ": " + name));
    }
  }
}
