// The SVG chart module: tick placement on linear and log axes, gaps for NaN, one-point and empty series, escaping.
#include "report/svg.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

namespace charlm::svg {
namespace {

std::vector<double> Values(const std::vector<Tick>& ticks) {
  std::vector<double> v;
  for (const auto& t : ticks) v.push_back(t.value);
  return v;
}
std::vector<std::string> Labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> v;
  for (const auto& t : ticks) v.push_back(t.label);
  return v;
}
int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("svg: linear ticks are multiples of 1, 2 or 5 x 10^k inside the range") {
  CHECK(Values(NiceTicks(0, 10, 5, ScaleKind::kLinear)) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(Labels(NiceTicks(0, 1, 5, ScaleKind::kLinear)) ==
        std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"});
  CHECK(Values(NiceTicks(3, 97, 5, ScaleKind::kLinear)) == std::vector<double>{20, 40, 60, 80});
  CHECK(Labels(NiceTicks(0, 40000, 4, ScaleKind::kLinear)) == std::vector<std::string>{"0", "10k", "20k", "30k", "40k"});
  CHECK(Labels(NiceTicks(-0.3, 0.3, 6, ScaleKind::kLinear)) ==
        std::vector<std::string>{"-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"});
  CHECK(Values(NiceTicks(5, 5, 5, ScaleKind::kLinear)) == std::vector<double>{5});
}

TEST_CASE("svg: log ticks are powers of ten, with 2 and 5 or every digit when the range spans few decades") {
  CHECK(Values(NiceTicks(1, 10000, 5, ScaleKind::kLog)) == std::vector<double>{1, 10, 100, 1000, 10000});
  CHECK(Labels(NiceTicks(1, 10000, 5, ScaleKind::kLog)) == std::vector<std::string>{"1", "10", "100", "1000", "10k"});
  CHECK(Values(NiceTicks(3, 600, 5, ScaleKind::kLog)) == std::vector<double>{5, 10, 20, 50, 100, 200, 500});
  // Perplexity from 300 to 900: within one decade, every hundred.
  CHECK(Values(NiceTicks(300, 900, 5, ScaleKind::kLog)) == std::vector<double>{300, 400, 500, 600, 700, 800, 900});
  // Learning rates.
  CHECK(Labels(NiceTicks(0.0004, 0.003, 5, ScaleKind::kLog)) == std::vector<std::string>{"0.0005", "0.001", "0.002"});
  // Narrower than one step of the 1..9 ladder: linear ticks within it.
  const auto narrow = NiceTicks(1.31, 1.36, 5, ScaleKind::kLog);
  REQUIRE(narrow.size() >= 2);
  for (const auto& t : narrow) {
    CHECK(t.value >= 1.31);
    CHECK(t.value <= 1.36);
  }
}

TEST_CASE("svg: log scale maps decades to equal distances") {
  const Scale s{ScaleKind::kLog, 1, 100, 0, 200};
  CHECK(s.Map(1) == doctest::Approx(0));
  CHECK(s.Map(10) == doctest::Approx(100));
  CHECK(s.Map(100) == doctest::Approx(200));
  const Scale lin{ScaleKind::kLinear, 0, 10, 300, 100};
  CHECK(lin.Map(5) == doctest::Approx(200));
}

TEST_CASE("svg: a NaN splits a series into two polylines, a lone point is a dot") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Chart chart;
  chart.series.push_back({"a", {1, 2, 3, 4, 5, 6}, {1, 2, nan, 4, 5, 6}, "", false, false});
  std::string svg = RenderChart(chart);
  CHECK(Count(svg, "<polyline") == 2);
  CHECK(Count(svg, "<circle") == 0);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);

  chart.series[0] = {"one", {3}, {7}, "", false, false};
  svg = RenderChart(chart);
  CHECK(Count(svg, "<polyline") == 0);
  CHECK(Count(svg, "<circle") == 1);
  CHECK(svg.find("no data yet") == std::string::npos);

  // On a log axis, zero and negative values are gaps too.
  chart.y_scale = ScaleKind::kLog;
  chart.series[0] = {"log", {1, 2, 3, 4}, {10, 0, -1, 20}, "", false, false};
  svg = RenderChart(chart);
  CHECK(Count(svg, "<polyline") == 0);
  CHECK(Count(svg, "<circle") == 2);
  CHECK(svg.find("nan") == std::string::npos);
}

TEST_CASE("svg: an empty chart, or one of only NaN, draws its frame and says so") {
  for (const bool with_nan : {false, true}) {
    Chart chart;
    chart.title = "perplexity";
    chart.y_scale = ScaleKind::kLog;
    if (with_nan) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      chart.series.push_back({"val", {1, 2}, {nan, std::numeric_limits<double>::infinity()}, "", false, false});
    } else {
      chart.series.push_back({"val", {}, {}, "", false, false});
    }
    const std::string svg = RenderChart(chart);
    CHECK(svg.find("no data yet") != std::string::npos);
    CHECK(svg.find("<rect") != std::string::npos);
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.ends_with("</svg>\n"));
  }
}

TEST_CASE("svg: reference lines, marks and the legend, viewBox and width 100%") {
  Chart chart;
  chart.title = "validation";
  chart.series.push_back({"val", {1, 2, 3}, {500, 400, 450}, "", false, false});
  chart.references.push_back({"5-gram 410", 410, "#555"});
  chart.marks.push_back({"best", 2, 400, "#d62728"});
  const std::string svg = RenderChart(chart);
  CHECK(svg.find("viewBox=\"0 0 ") != std::string::npos);
  CHECK(svg.find("width=\"100%\"") != std::string::npos);
  CHECK(svg.find(">5-gram 410</text>") != std::string::npos);
  CHECK(svg.find(">best</text>") != std::string::npos);
  CHECK(svg.find(">val</text>") != std::string::npos);
  CHECK(Count(svg, "stroke-dasharray") == 2);  // the reference line and its legend entry
}

TEST_CASE("svg: text is escaped, non-ASCII kept, invalid UTF-8 and control characters replaced") {
  CHECK(EscapeXml("</svg><script>alert('x')</script>&\"") ==
        "&lt;/svg&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
  CHECK(EscapeXml("分开 é\n") == "分开 é\n");
  CHECK(EscapeXml(std::string("a\x01" "b\xff" "c\xe5\x88", 7)) == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(EscapeXml("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a UTF-16 surrogate
  Chart chart;
  chart.title = "</svg><script>";
  chart.series.push_back({"<b>", {1, 2}, {1, 2}, "\"><script>", false, false});
  const std::string svg = RenderChart(chart);
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.find("<b>") == std::string::npos);
}

}  // namespace charlm::svg
