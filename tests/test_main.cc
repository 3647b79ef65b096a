// Entry point of the single doctest test executable; keeps the library's progress logging out of test output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  return doctest::Context(argc, argv).run();
}
