// Checks that the test executable and the charlm binary are built and wired together.
#include <doctest/doctest.h>

#include <filesystem>

#include "test_util.h"

TEST_CASE("the charlm binary is built beside the tests") {
  CHECK(std::filesystem::exists(charlm::testing::CharlmBinary()));
}
