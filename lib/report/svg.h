// Line charts as inline SVG: linear and log scales with "nice" ticks, polylines, markers, a legend, axis labels and
// horizontal reference lines; NaN, infinite and (on a log axis) non-positive values are gaps, never garbage.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace charlm::svg {

enum class ScaleKind { kLinear, kLog };

struct Tick {
  double value = 0;
  std::string label;
};

// Ticks inside [lo, hi] (lo <= hi, both finite; positive for kLog), about `target` of them.
// Linear: multiples of 1, 2 or 5 x 10^k. Log: powers of ten, with 2 and 5 (or every digit) in between when the
// range spans few decades, and linear ticks when it spans less than one step of those.
std::vector<Tick> NiceTicks(double lo, double hi, int target, ScaleKind kind);

// A tick label: as few digits as `step` (the distance between ticks) needs, with k/M for thousands and millions.
std::string FormatTickLabel(double value, double step);

// Maps data values to pixels.
struct Scale {
  ScaleKind kind = ScaleKind::kLinear;
  double lo = 0, hi = 1;          // data domain
  double px_lo = 0, px_hi = 100;  // pixels lo and hi map to
  double Map(double value) const;
};

struct Series {
  std::string name;  // legend text
  std::vector<double> x, y;
  std::string color;      // empty = the palette's next colour
  bool dashed = false;
  bool markers = false;  // a dot at every point (an isolated point always gets one)
};

// A horizontal line across the plot at y, labelled at its right end (a baseline, a target).
struct ReferenceLine {
  std::string label;
  double y = 0;
  std::string color = "#555";
};

// A labelled point (the best checkpoint).
struct PointMark {
  std::string label;
  double x = 0, y = 0;
  std::string color = "#d62728";
};

struct Chart {
  std::string title, x_label, y_label;
  ScaleKind x_scale = ScaleKind::kLinear;
  ScaleKind y_scale = ScaleKind::kLinear;
  std::vector<Series> series;
  std::vector<ReferenceLine> references;
  std::vector<PointMark> marks;
};

// Whether a value can be drawn on a scale of this kind.
bool Drawable(double value, ScaleKind kind);

// One <svg> element sized by its viewBox and 100% of the width it is given; all text escaped. A chart with nothing
// drawable says "no data yet" inside its frame.
std::string RenderChart(const Chart& chart);

// Text for HTML or XML content and attribute values: & < > " ' escaped, invalid UTF-8 and control characters other
// than tab and newline replaced by U+FFFD.
std::string EscapeXml(std::string_view text);

}  // namespace charlm::svg
