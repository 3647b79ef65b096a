// Line charts as inline SVG: linear and log scales with "nice" ticks, polylines, markers, a legend, axis labels, an
// optional second y axis and horizontal reference lines; NaN, infinite and (on a log axis) non-positive values are
// gaps, never garbage. Labels inside the plot are placed clear of the lines and of each other.
#pragma once

#include <optional>
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

// A second y axis, at the right, that reads the same curves in other units (bits per character beside perplexity).
// Its ticks are linear in its own units.
struct RightAxis {
  std::string label;
  double (*from_left)(double) = nullptr;  // a left-axis value in this axis' units: increasing
  double (*to_left)(double) = nullptr;    // its inverse
};

struct Chart {
  std::string title, x_label, y_label;
  ScaleKind x_scale = ScaleKind::kLinear;
  ScaleKind y_scale = ScaleKind::kLinear;
  std::vector<Series> series;
  std::vector<ReferenceLine> references;
  std::vector<PointMark> marks;
  std::optional<RightAxis> right_axis;
};

// Whether a value can be drawn on a scale of this kind.
bool Drawable(double value, ScaleKind kind);

struct Point {
  double x = 0, y = 0;
};

// A rectangle in the chart's coordinates (y grows downwards).
struct Box {
  double left = 0, top = 0, right = 0, bottom = 0;
  bool Overlaps(const Box& other) const;           // they share some area (touching edges do not)
  bool CrossedBy(Point from, Point to) const;      // the segment touches the box or passes through it
  bool Contains(const Box& inner) const;
};

// The box a text of kFontSize fills, padded by a pixel or two, when its left end and baseline are at `at`; text
// widths are estimated from the characters, on the wide side (no font metrics without a browser).
Box TextBox(std::string_view text, Point at);

// A line drawn as a polyline (a series' run of drawable points, or a reference line across the plot).
struct DrawnLine {
  std::vector<Point> points;
  std::string color;
  bool dashed = false;
  double stroke_width = 2;
};

// A dot (a series' marker or lone point: filled) or a ring (a PointMark).
struct DrawnDot {
  Point center;
  double radius = 3;
  std::string color;
  bool ring = false;
};

enum class Anchor { kStart, kMiddle, kEnd };

// A text whose baseline is at at.y and whose start, middle or end (`anchor`) is at at.x. `box` is TextBox's for
// the estimated width: a text drawn narrower stays inside it, at the side of the box `anchor` names (the side
// towards what it labels).
struct PlacedText {
  std::string text, color;
  Point at;
  Anchor anchor = Anchor::kStart;
  Box box;
};

enum class LegendSymbol { kLine, kDashedLine, kRing };

struct LegendEntry {
  std::string text, color;
  LegendSymbol symbol = LegendSymbol::kLine;
  Point at;  // the symbol's left end, on the row's middle line
};

struct AxisTick {
  double pixel = 0;  // x for the bottom axis, y for the left and right ones
  std::string label;
};

// Everything RenderChart draws, in the chart's coordinates (its viewBox). Laid out before anything is written, so
// that the labels of marks and reference lines go where they cross no line and no other label, and a mark's label
// that fits nowhere inside the plot goes to the legend (a reference line's is always in the legend).
struct ChartLayout {
  double width = 0, height = 0;
  Box plot;  // the frame
  std::vector<LegendEntry> legend;
  std::vector<AxisTick> left_ticks, right_ticks, bottom_ticks;
  std::vector<DrawnLine> curves, references;
  std::vector<DrawnDot> dots;      // markers, lone points and the marks' rings
  std::vector<PlacedText> labels;  // the marks' and reference lines' labels inside the plot
  bool empty = false;              // nothing drawable: "no data yet"
};

ChartLayout LayoutChart(const Chart& chart);

// One <svg> element sized by its viewBox and 100% of the width it is given; all text escaped. A chart with nothing
// drawable says "no data yet" inside its frame. The texts of `labels` carry class="label", curves class="curve"
// and reference lines class="reference", so that a test in a browser can find them.
std::string RenderChart(const Chart& chart);

// Text for HTML or XML content and attribute values: & < > " ' escaped, invalid UTF-8 and control characters other
// than tab and newline replaced by U+FFFD.
std::string EscapeXml(std::string_view text);

}  // namespace charlm::svg
