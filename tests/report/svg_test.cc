// The SVG chart module: tick placement on linear and log axes, gaps for NaN, one-point and empty series, escaping,
// the second axis, and labels placed clear of the lines and of each other.
#include "report/svg.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

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

// Whether the segment passes through the box's inside, by points every 0.25 units along it: a check that does not
// share Box::CrossedBy's arithmetic.
bool SampledCrossing(const Box& box, Point from, Point to) {
  const double length = std::hypot(to.x - from.x, to.y - from.y);
  const int steps = std::max(1, static_cast<int>(std::ceil(length / 0.25)));
  for (int i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / steps;
    const double x = from.x + t * (to.x - from.x), y = from.y + t * (to.y - from.y);
    if (x > box.left && x < box.right && y > box.top && y < box.bottom) return true;
  }
  return false;
}

// Every label inside the plot lies inside the frame, crosses no curve and no reference line, covers no dot or
// ring and no other label; each mark's label is either inside the plot or in the legend, once.
void CheckLabelsClear(const Chart& chart, const ChartLayout& layout) {
  for (std::size_t i = 0; i < layout.labels.size(); ++i) {
    const PlacedText& label = layout.labels[i];
    INFO("label ", label.text);
    CHECK(label.box.left >= layout.plot.left);
    CHECK(label.box.right <= layout.plot.right);
    CHECK(label.box.top >= layout.plot.top);
    CHECK(label.box.bottom <= layout.plot.bottom);
    for (const auto* lines : {&layout.curves, &layout.references}) {
      for (const DrawnLine& line : *lines) {
        for (std::size_t p = 1; p < line.points.size(); ++p) {
          CHECK_FALSE(SampledCrossing(label.box, line.points[p - 1], line.points[p]));
        }
      }
    }
    for (const DrawnDot& dot : layout.dots) {
      const double r = dot.radius + (dot.ring ? 1 : 0);
      CHECK_FALSE(label.box.Overlaps({dot.center.x - r, dot.center.y - r, dot.center.x + r, dot.center.y + r}));
    }
    for (std::size_t j = i + 1; j < layout.labels.size(); ++j) CHECK_FALSE(label.box.Overlaps(layout.labels[j].box));
  }
  for (const PointMark& mark : chart.marks) {
    const auto placed = std::count_if(layout.labels.begin(), layout.labels.end(),
                                      [&](const PlacedText& label) { return label.text == mark.label; });
    const auto in_legend = std::count_if(layout.legend.begin(), layout.legend.end(), [&](const LegendEntry& entry) {
      return entry.symbol == LegendSymbol::kRing && entry.text == mark.label;
    });
    CHECK_MESSAGE(placed + in_legend == 1, mark.label);
  }
}

double Log2(double v) { return std::log2(v); }
double Exp2(double v) { return std::exp2(v); }

// The run: validation falls to 2.511 at its last epoch, the 5-gram scored 2.395 just under it.
Chart LastEpochBestNearBaseline() {
  Chart chart;
  chart.y_scale = ScaleKind::kLog;
  chart.right_axis = RightAxis{"bits per character", Log2, Exp2};
  Series train{"training", {}, {}, "", false, true}, val{"validation", {}, {}, "", false, true};
  for (int epoch = 1; epoch <= 20; ++epoch) {
    train.x.push_back(epoch);
    train.y.push_back(2.2 + 6.0 / epoch);
    val.x.push_back(epoch);
    val.y.push_back(2.511 + 3.5 / epoch - 3.5 / 20);
  }
  chart.series = {train, val};
  chart.marks.push_back({"best.ckpt 2.51 (1.33 bpc)", 20, 2.511, "#d62728"});
  chart.references.push_back({"5-gram baseline 2.40 (1.26 bpc)", 2.395, "#555"});
  return chart;
}

}  // namespace

TEST_CASE("svg: a segment crosses a box when any part of it is inside") {
  const Box box{10, 10, 20, 20};
  CHECK(box.CrossedBy({0, 15}, {30, 15}));   // straight through
  CHECK(box.CrossedBy({12, 12}, {13, 13}));  // wholly inside
  CHECK(box.CrossedBy({0, 0}, {30, 30}));    // the diagonal
  CHECK_FALSE(box.CrossedBy({0, 0}, {30, 5}));
  CHECK_FALSE(box.CrossedBy({0, 25}, {25, 40}));  // passes the corner outside
  CHECK_FALSE(box.CrossedBy({21, 0}, {21, 30}));
  CHECK(box.Overlaps({19, 19, 25, 25}));
  CHECK_FALSE(box.Overlaps({20, 10, 25, 20}));  // touching edges
}

TEST_CASE("svg: the best checkpoint's and the baseline's labels overlap neither each other nor the curves") {
  const Chart chart = LastEpochBestNearBaseline();
  const ChartLayout layout = LayoutChart(chart);
  REQUIRE(layout.labels.size() == 2);  // both fit inside the plot
  CheckLabelsClear(chart, layout);
  const std::string svg = RenderChart(chart);
  CHECK(svg.find("class=\"label\"") != std::string::npos);
}

TEST_CASE("svg: labels stay clear of the curves in charts of every shape, or go to the legend") {
  std::mt19937 rng(2024);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int trial = 0; trial < 300; ++trial) {
    Chart chart;
    chart.y_scale = trial % 2 ? ScaleKind::kLog : ScaleKind::kLinear;
    if (trial % 3 == 0) chart.right_axis = RightAxis{"bits per character", Log2, Exp2};
    const int series_count = 1 + static_cast<int>(unit(rng) * 3);
    for (int s = 0; s < series_count; ++s) {
      Series series;
      series.name = "series " + std::to_string(s);
      const int n = 2 + static_cast<int>(unit(rng) * (trial % 4 == 0 ? 400 : 30));
      series.markers = n <= 30;
      double y = 2 + unit(rng) * 8;
      for (int i = 0; i < n; ++i) {
        series.x.push_back(i + 1);
        y = std::max(1.05, y * (0.9 + 0.18 * unit(rng)));  // a noisy fall, as loss curves go
        series.y.push_back(y);
      }
      chart.series.push_back(std::move(series));
    }
    for (int m = 0; m < static_cast<int>(unit(rng) * 3); ++m) {
      const Series& on = chart.series[static_cast<std::size_t>(unit(rng) * series_count)];
      const std::size_t i = static_cast<std::size_t>(unit(rng) * static_cast<double>(on.x.size()));
      chart.marks.push_back({"best.ckpt " + std::to_string(m), on.x[i], on.y[i], "#d62728"});
    }
    for (int r = 0; r < static_cast<int>(unit(rng) * 3); ++r) {
      const Series& near = chart.series[0];
      chart.references.push_back({"5-gram baseline " + std::to_string(r), near.y.back() * (0.9 + 0.2 * unit(rng)), "#555"});
    }
    INFO("trial ", trial);
    CheckLabelsClear(chart, LayoutChart(chart));
  }
}

TEST_CASE("svg: a mark whose label fits nowhere in the plot is listed in the legend, with a ring") {
  Chart chart;
  for (int s = 0; s < 60; ++s) {  // zigzags across the whole plot, a few pixels apart
    Series series;
    series.name = s == 0 ? "zigzag" : "";
    for (int i = 0; i <= 40; ++i) {
      series.x.push_back(i);
      series.y.push_back(s + ((i % 2) ? 0.9 : 0.0));
    }
    chart.series.push_back(std::move(series));
  }
  chart.marks.push_back({"best.ckpt 2.51", 20, 30, "#d62728"});
  chart.references.push_back({"5-gram baseline", 30.5, "#555"});
  const ChartLayout layout = LayoutChart(chart);
  CHECK(layout.labels.empty());
  CheckLabelsClear(chart, layout);
  const std::string svg = RenderChart(chart);
  CHECK(Count(svg, ">best.ckpt 2.51</text>") == 1);
  CHECK(Count(svg, ">5-gram baseline</text>") == 1);  // the legend's
}

TEST_CASE("svg: tick labels that would touch are left off, powers of ten keeping theirs") {
  Chart chart;
  chart.y_scale = ScaleKind::kLog;
  chart.series.push_back({"gradient norm", {1, 2, 3}, {0.25, 0.8, 1.5}, "", false, true});  // ticks 0.3 ... 0.9, 1
  const ChartLayout layout = LayoutChart(chart);
  std::vector<const AxisTick*> labelled;
  for (const AxisTick& t : layout.left_ticks) {
    if (!t.label.empty()) labelled.push_back(&t);
  }
  REQUIRE(labelled.size() >= 3);
  CHECK(labelled.size() < layout.left_ticks.size());  // the ladder crowds towards 1: some are left off
  CHECK(std::any_of(labelled.begin(), labelled.end(), [](const AxisTick* t) { return t->label == "1"; }));
  for (std::size_t i = 0; i < labelled.size(); ++i) {
    for (std::size_t j = i + 1; j < labelled.size(); ++j) {
      CHECK(std::abs(labelled[i]->pixel - labelled[j]->pixel) >= 15);  // a line of 13-unit text and a gap
    }
  }
  CHECK(Count(RenderChart(chart), "stroke=\"#e4e4e4\"") ==
        static_cast<int>(layout.left_ticks.size() + layout.bottom_ticks.size()));  // every grid line stays
}

TEST_CASE("svg: a second axis at the right reads the same curve in other units") {
  Chart chart;
  chart.y_scale = ScaleKind::kLog;
  chart.right_axis = RightAxis{"bits per character", Log2, Exp2};
  chart.series.push_back({"validation", {1, 2, 3}, {16, 4, 2}, "", false, true});
  const ChartLayout layout = LayoutChart(chart);
  const auto pixel_of = [](const std::vector<AxisTick>& ticks, const std::string& label) {
    const auto it = std::find_if(ticks.begin(), ticks.end(), [&](const AxisTick& t) { return t.label == label; });
    REQUIRE(it != ticks.end());
    return it->pixel;
  };
  CHECK(pixel_of(layout.right_ticks, "1.0") == doctest::Approx(pixel_of(layout.left_ticks, "2")));  // 2 = 2^1
  // 3 bits per character is perplexity 8: log2(8) - log2(2) of the way that log2(10) - log2(2) takes.
  const double two = pixel_of(layout.left_ticks, "2"), ten = pixel_of(layout.left_ticks, "10");
  CHECK(pixel_of(layout.right_ticks, "3.0") == doctest::Approx(two + (ten - two) * 2 / (std::log2(10) - 1)));
  CHECK(RenderChart(chart).find(">bits per character</text>") != std::string::npos);
  CHECK(LayoutChart(Chart{}).right_ticks.empty());
}

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
