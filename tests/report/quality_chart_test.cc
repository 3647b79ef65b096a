// docs/quality.md's chart: the results file is parsed strictly, and the chart draws each side, curve and 5-gram.
#include "report/quality_chart.h"

#include <doctest/doctest.h>

#include <string>

#include "util/errors.h"

namespace charlm {
namespace {

const char* kResults =
    R"({"corpus": "corpus/bench/a.txt", "side": "5-gram", "minutes": 0, "val_loss": 1.5})" "\n"
    R"({"corpus": "corpus/bench/a.txt", "side": "charlm auto", "minutes": 5, "val_loss": 1.2, "curve": [[1, 1.9], [4.9, 1.2]]})" "\n"
    R"({"corpus": "corpus/bench/a.txt", "side": "gpt 4x4x128", "minutes": 15, "val_loss": 1.3})" "\n"
    R"({"corpus": "corpus/bench/a.txt", "side": "5-gram", "minutes": 0, "val_loss": 1.5})" "\n"
    R"({"corpus": "corpus/bench/a.txt", "side": "gpt 4x4x128", "minutes": 5, "val_loss": 1.45})" "\n"
    "\n"
    R"({"corpus": "other/b.txt", "side": "charlm auto", "minutes": 5, "val_loss": 9.0})" "\n";

TEST_CASE("quality chart: each side's budgets, charlm's curve and the 5-gram line, for one text only") {
  const std::vector<QualityResult> results = ParseQualityResults(kResults, "results.jsonl");
  REQUIRE(results.size() == 6);
  CHECK(results[1].curve.size() == 2);
  const std::string svg = QualityChartSvg(results, "a.txt");
  CHECK(svg.starts_with("<svg xmlns="));
  CHECK(svg.find("a.txt") != std::string::npos);
  CHECK(svg.find("charlm auto (end of budget)") != std::string::npos);
  CHECK(svg.find("gpt 4x4x128 (end of budget)") != std::string::npos);
  CHECK(svg.find("charlm auto, 5-minute run") != std::string::npos);
  // The 5-gram is drawn once, though the file measured it twice: as often as from a file with one measurement.
  const auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  REQUIRE(results[3].side == "5-gram");
  std::vector<QualityResult> measured_once = results;
  measured_once.erase(measured_once.begin() + 3);
  const std::string once = QualityChartSvg(measured_once, "a.txt");
  CHECK(count(once, "5-gram 1.500") > 0);
  CHECK(count(svg, "5-gram 1.500") == count(once, "5-gram 1.500"));
  CHECK(svg.find("b.txt") == std::string::npos);
}

TEST_CASE("quality chart: a malformed line or an unknown text is a user error naming it") {
  CHECK_THROWS_WITH_AS(ParseQualityResults("{\"corpus\": \"a\"}\n", "r.jsonl"),
                       doctest::Contains("r.jsonl:1: expected a JSON object"), UserError);
  CHECK_THROWS_WITH_AS(ParseQualityResults("\nnot json\n", "r.jsonl"), doctest::Contains("r.jsonl:2:"), UserError);
  CHECK_THROWS_WITH_AS(
      ParseQualityResults(R"({"corpus": "a", "side": "x", "minutes": "5", "val_loss": 1})", "r.jsonl"),
      doctest::Contains("\"minutes\" is missing or not a finite number"), UserError);
  const std::vector<QualityResult> results = ParseQualityResults(kResults, "results.jsonl");
  CHECK_THROWS_WITH_AS(QualityChartSvg(results, "c.txt"), doctest::Contains("no results for c.txt"), UserError);
}

}  // namespace
}  // namespace charlm
