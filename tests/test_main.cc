// Entry point of the single doctest test executable; keeps the library's progress logging out of test output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include "ops/blas.h"

int main(int argc, char** argv) {
  charlm::PrepareRuntimeEnvironment(argv);  // the kernel tables the charlm executable runs on, for equal bits
  spdlog::set_level(spdlog::level::warn);
  return doctest::Context(argc, argv).run();
}
