// Chart layout and SVG output: the domain from the drawable points, nice ticks, then frame, grid, lines and legend.
#include "report/svg.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

namespace charlm::svg {
namespace {

// The chart's own coordinate system; the browser scales it to the page (width 100%).
constexpr double kWidth = 640, kHeight = 340;
constexpr double kBottom = 46, kTitleHeight = 26, kLegendRow = 20;
constexpr double kFontSize = 13;
// Beside the plot: a column for the rotated axis label, then the tick labels, 5 units from the frame.
constexpr double kAxisLabelColumn = 26, kTickGap = 5, kMinLeft = 48, kRightWithoutAxis = 18;
constexpr double kLineWidth = 2, kReferenceWidth = 1.5, kDotRadius = 3, kRingRadius = 6, kRingStroke = 2;
constexpr double kTextPad = 1.5;  // around a label's box: the lines it keeps clear of have width
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Nice step of 1, 2 or 5 x 10^k near raw.
double NiceStep(double raw) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double nice = fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10;
  return nice * magnitude;
}

std::vector<Tick> LinearTicks(double lo, double hi, int target) {
  std::vector<Tick> ticks;
  if (!(hi > lo)) {
    ticks.push_back({lo, FormatTickLabel(lo, std::abs(lo) > 0 ? std::abs(lo) / 10 : 1)});
    return ticks;
  }
  const double step = NiceStep((hi - lo) / std::max(target, 1));
  const double first = std::ceil(lo / step - 1e-9);
  for (double k = first; k * step <= hi + step * 1e-9; k += 1) {
    const double value = std::abs(k) < 1e-9 ? 0.0 : k * step;
    ticks.push_back({value, FormatTickLabel(value, step)});
  }
  return ticks;
}

// Estimated width of text at kFontSize, on the wide side of the usual sans-serif fonts (DejaVu Sans, the widest of
// them, has digits of 0.64 em): a label placed by this width keeps clear of what is beside it in any of them.
double TextWidth(std::string_view text) {
  constexpr std::string_view kNarrow = " .,:;'!|ijlftrI()[]{}-/\\\"`", kWide = "mwMW%@", kBroad = "=+<>~#&^*_";
  double em = 0;
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const std::size_t length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (length >= 3) {
      em += 1;  // CJK and the like: a full em
    } else if (length == 2 || kBroad.find(static_cast<char>(c)) != std::string_view::npos || (c >= 'A' && c <= 'Z')) {
      em += kWide.find(static_cast<char>(c)) != std::string_view::npos ? 1 : 0.84;
    } else if (kWide.find(static_cast<char>(c)) != std::string_view::npos) {
      em += 1;
    } else if (kNarrow.find(static_cast<char>(c)) != std::string_view::npos) {
      em += 0.42;
    } else {
      em += 0.64;
    }
    i += length;
  }
  return em * kFontSize;
}

double WidestLabel(const std::vector<Tick>& ticks) {
  double widest = 0;
  for (const Tick& t : ticks) widest = std::max(widest, TextWidth(t.label));
  return widest;
}

struct Domain {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool Empty() const { return !(lo <= hi); }
};

// Widens a one-value or empty domain, pads a log domain by 5% either side (in log space), snaps a linear one to
// its tick step.
Domain Finish(Domain d, ScaleKind kind) {
  if (d.Empty()) return kind == ScaleKind::kLog ? Domain{1, 10} : Domain{0, 1};
  if (kind == ScaleKind::kLog) {
    if (d.hi / d.lo < 1.0001) {
      d.lo /= 2;
      d.hi *= 2;
    }
    const double pad = std::pow(d.hi / d.lo, 0.05);
    return {d.lo / pad, d.hi * pad};
  }
  if (d.hi - d.lo < 1e-12 * std::max(1.0, std::abs(d.hi))) {
    const double half = d.lo == 0 ? 1 : std::abs(d.lo) * 0.1;
    d.lo -= half;
    d.hi += half;
  }
  const double step = NiceStep((d.hi - d.lo) / 5);
  return {std::floor(d.lo / step) * step, std::ceil(d.hi / step) * step};
}

}  // namespace

std::string FormatTickLabel(double value, double step) {
  std::string suffix;
  double scaled = value, scaled_step = std::abs(step);
  if (std::abs(value) >= 1e6 && scaled_step >= 1e5) {
    scaled /= 1e6;
    scaled_step /= 1e6;
    suffix = "M";
  } else if (std::abs(value) >= 1e4 && scaled_step >= 100) {
    scaled /= 1e3;
    scaled_step /= 1e3;
    suffix = "k";
  }
  char buf[48];
  if (scaled != 0 && std::abs(scaled) < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.0e", scaled);
    return buf;
  }
  const int decimals =
      scaled_step > 0 ? std::clamp(static_cast<int>(std::ceil(-std::log10(scaled_step) - 1e-9)), 0, 6) : 0;
  std::snprintf(buf, sizeof buf, "%.*f", decimals, scaled);
  return buf + suffix;
}

std::vector<Tick> NiceTicks(double lo, double hi, int target, ScaleKind kind) {
  assert(std::isfinite(lo) && std::isfinite(hi) && lo <= hi);
  if (kind == ScaleKind::kLinear) return LinearTicks(lo, hi, target);
  assert(lo > 0);
  // Candidate mantissas from sparse to dense; the sparsest that gives at least 3 ticks (or `target` at most) wins.
  const std::vector<std::vector<double>> mantissas = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  const int first_decade = static_cast<int>(std::floor(std::log10(lo)));
  const int last_decade = static_cast<int>(std::floor(std::log10(hi)));
  std::vector<Tick> best;
  for (const auto& set : mantissas) {
    std::vector<Tick> ticks;
    for (int d = first_decade; d <= last_decade; ++d) {
      const double power = std::pow(10.0, d);
      for (double m : set) {
        const double value = m * power;
        if (value >= lo * (1 - 1e-9) && value <= hi * (1 + 1e-9)) ticks.push_back({value, FormatTickLabel(value, value)});
      }
    }
    if (static_cast<int>(ticks.size()) > target + 4 && !best.empty()) break;  // denser would crowd the axis
    best = std::move(ticks);
    if (static_cast<int>(best.size()) >= 3) break;
  }
  if (best.size() < 2) return LinearTicks(lo, hi, target);  // within one step of the 1-2-3-...-9 ladder
  // Labels of in-between ticks need the digits of their own magnitude (e.g. 1.5 is not on this ladder).
  return best;
}

double Scale::Map(double value) const {
  double t = 0;
  if (kind == ScaleKind::kLog) {
    t = (std::log(value) - std::log(lo)) / (std::log(hi) - std::log(lo));
  } else {
    t = (value - lo) / (hi - lo);
  }
  return px_lo + t * (px_hi - px_lo);
}

bool Drawable(double value, ScaleKind kind) {
  return std::isfinite(value) && (kind == ScaleKind::kLinear || value > 0);
}

std::string EscapeXml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const std::string replacement = "\xEF\xBF\xBD";
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        case '\t':
        case '\n': out += static_cast<char>(c); break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += replacement;
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence of a Unicode scalar value is copied; anything else is one U+FFFD per byte.
    const std::size_t length = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = length > 0 && i + length <= text.size();
    char32_t cp = length == 2 ? c & 0x1F : length == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; ok && k < length; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      ok = (length == 2 && cp >= 0x80) || (length == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
           (length == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
    }
    if (ok && cp >= 0x80 && cp <= 0x9F) ok = false;  // C1 controls
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += replacement;
      ++i;
    }
  }
  return out;
}

bool Box::Overlaps(const Box& other) const {
  return left < other.right && other.left < right && top < other.bottom && other.top < bottom;
}

// Liang-Barsky: the part of the segment inside the box, from parameter t0 to t1, is not empty.
bool Box::CrossedBy(Point from, Point to) const {
  double t0 = 0, t1 = 1;
  const auto clip = [&](double p, double q) {  // keeps the t with p * t <= q
    if (p == 0) return q >= 0;
    const double t = q / p;
    if (p < 0) {
      t0 = std::max(t0, t);
    } else {
      t1 = std::min(t1, t);
    }
    return t0 <= t1;
  };
  const double dx = to.x - from.x, dy = to.y - from.y;
  return clip(-dx, from.x - left) && clip(dx, right - from.x) && clip(-dy, from.y - top) && clip(dy, bottom - from.y);
}

bool Box::Contains(const Box& inner) const {
  return inner.left >= left && inner.right <= right && inner.top >= top && inner.bottom <= bottom;
}

Box TextBox(std::string_view text, Point at) {
  // Ascent and descent of the usual sans-serif fonts are at most 0.93 and 0.24 em.
  return {at.x - kTextPad, at.y - 0.95 * kFontSize - kTextPad, at.x + TextWidth(text) + kTextPad,
          at.y + 0.25 * kFontSize + kTextPad};
}

namespace {

// What a label inside the plot must keep clear of: the frame's inside, the lines, and boxes (dots, rings, the
// labels placed before it).
struct Obstacles {
  Box inside;
  std::vector<std::pair<Point, Point>> segments;
  std::vector<Box> boxes;

  bool Clear(const Box& box) const {
    if (!inside.Contains(box)) return false;
    for (const auto& [from, to] : segments) {
      if (box.CrossedBy(from, to)) return false;
    }
    return std::none_of(boxes.begin(), boxes.end(), [&](const Box& other) { return box.Overlaps(other); });
  }
  void AddLine(const DrawnLine& line) {
    for (std::size_t i = 1; i < line.points.size(); ++i) segments.emplace_back(line.points[i - 1], line.points[i]);
  }
  void AddDot(const DrawnDot& dot) {
    const double reach = dot.radius + (dot.ring ? kRingStroke / 2 : 0);
    boxes.push_back({dot.center.x - reach, dot.center.y - reach, dot.center.x + reach, dot.center.y + reach});
  }
};

// The label's text placed so that its box is `box` (of TextBox's size), anchored at the box's side `anchor`.
PlacedText PlaceText(const std::string& text, const std::string& color, const Box& box, Anchor anchor) {
  const Box at_origin = TextBox(text, {0, 0});
  const Point start{box.left - at_origin.left, box.top - at_origin.top};
  const double x = anchor == Anchor::kStart ? start.x
                   : anchor == Anchor::kEnd ? box.right - kTextPad
                                            : (box.left + box.right) / 2;
  return {text, color, {x, start.y}, anchor, TextBox(text, start)};
}

// A placed label's box, and the side of it that faces what it labels.
struct LabelPlace {
  Box box;
  Anchor anchor = Anchor::kStart;
};

// The first clear box for a mark's label: beside the ring, nearest first, corners before sides.
std::optional<LabelPlace> PlaceMarkLabel(const std::string& text, Point center, const Obstacles& obstacles) {
  const Box size = TextBox(text, {0, 0});
  const double w = size.right - size.left, h = size.bottom - size.top;
  const double reach = kRingRadius + kRingStroke / 2;
  static constexpr int kDirections[][2] = {{1, -1}, {-1, -1}, {1, 1}, {-1, 1}, {0, -1}, {0, 1}, {1, 0}, {-1, 0}};
  for (const double gap : {1.0, 6.0, 12.0, 20.0, 30.0, 44.0, 60.0}) {
    for (const auto& [ux, uy] : kDirections) {
      Box box;
      box.left = ux > 0 ? center.x + reach + gap : ux < 0 ? center.x - reach - gap - w : center.x - w / 2;
      box.top = uy > 0 ? center.y + reach + gap : uy < 0 ? center.y - reach - gap - h : center.y - h / 2;
      box.right = box.left + w;
      box.bottom = box.top + h;
      if (obstacles.Clear(box)) return LabelPlace{box, ux > 0 ? Anchor::kStart : ux < 0 ? Anchor::kEnd : Anchor::kMiddle};
    }
  }
  return std::nullopt;
}

// The first clear box for a reference line's label: just above or below the line, from the plot's right end
// leftwards; the text ends at the box's right side.
std::optional<LabelPlace> PlaceReferenceLabel(const std::string& text, double y, const Obstacles& obstacles) {
  const Box size = TextBox(text, {0, 0});
  const double w = size.right - size.left, h = size.bottom - size.top;
  const double clearance = kReferenceWidth / 2 + 0.5;
  for (double right = obstacles.inside.right - 2; right - w >= obstacles.inside.left; right -= 12) {
    for (const double top : {y - clearance - h, y + clearance}) {
      const Box box{right - w, top, right, top + h};
      if (obstacles.Clear(box)) return LabelPlace{box, Anchor::kEnd};
    }
  }
  return std::nullopt;
}

bool PowerOfTen(double value) {
  return value > 0 && std::abs(std::log10(value) - std::round(std::log10(value))) < 1e-9;
}

// The ticks at their pixels. A label that would touch an already labelled neighbour's is left off (the grid line
// stays): a log axis' 1-to-9 ladder crowds towards each power of ten, and those keep their labels first.
std::vector<AxisTick> AxisTicks(const std::vector<Tick>& ticks, const std::function<double(double)>& pixel_of,
                                bool along_x) {
  std::vector<AxisTick> out;
  for (const Tick& t : ticks) out.push_back({pixel_of(t.value), t.label});
  const auto extent = [&](const AxisTick& t) {  // the label's half-size along the axis
    return along_x ? TextWidth(t.label) / 2 + 2 : 0.6 * kFontSize + 1;
  };
  std::vector<const AxisTick*> labelled;
  for (const bool powers : {true, false}) {
    for (std::size_t i = 0; i < ticks.size(); ++i) {
      if (PowerOfTen(ticks[i].value) != powers) continue;
      const bool clear = std::all_of(labelled.begin(), labelled.end(), [&](const AxisTick* other) {
        return std::abs(other->pixel - out[i].pixel) >= extent(*other) + extent(out[i]);
      });
      if (clear) labelled.push_back(&out[i]);
    }
  }
  for (AxisTick& t : out) {
    if (std::find(labelled.begin(), labelled.end(), &t) == labelled.end()) t.label.clear();
  }
  return out;
}

struct AxisDomains {
  Domain x, y;
  bool any_point = false;
};

AxisDomains Domains(const Chart& chart) {
  AxisDomains d;
  for (const auto& s : chart.series) {
    const std::size_t n = std::min(s.x.size(), s.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!Drawable(s.x[i], chart.x_scale) || !Drawable(s.y[i], chart.y_scale)) continue;
      d.x.Add(s.x[i]);
      d.y.Add(s.y[i]);
      d.any_point = true;
    }
  }
  for (const auto& ref : chart.references) {
    if (Drawable(ref.y, chart.y_scale)) d.y.Add(ref.y);
  }
  for (const auto& mark : chart.marks) {
    if (Drawable(mark.x, chart.x_scale) && Drawable(mark.y, chart.y_scale)) {
      d.x.Add(mark.x);
      d.y.Add(mark.y);
    }
  }
  d.x = Finish(d.x, chart.x_scale);
  d.y = Finish(d.y, chart.y_scale);
  return d;
}

// The layout with the labels of the marks in `mark_in_legend` in the legend; sets `unplaced` for each other mark
// whose label found no clear place inside the plot.
ChartLayout LayoutWith(const Chart& chart, const std::vector<bool>& mark_in_legend, std::vector<bool>& unplaced) {
  ChartLayout layout;
  const AxisDomains domains = Domains(chart);
  const Domain& x = domains.x;
  const Domain& y = domains.y;
  layout.empty = !domains.any_point;
  const std::vector<Tick> y_ticks = NiceTicks(y.lo, y.hi, 5, chart.y_scale);
  const std::vector<Tick> x_ticks = NiceTicks(x.lo, x.hi, 6, chart.x_scale);
  std::vector<Tick> right_ticks;
  if (chart.right_axis) right_ticks = NiceTicks(chart.right_axis->from_left(y.lo), chart.right_axis->from_left(y.hi), 5, ScaleKind::kLinear);
  // Margins wide enough for the tick labels and the rotated axis label beyond them.
  const double left = std::max(kMinLeft, kAxisLabelColumn + WidestLabel(y_ticks) + kTickGap);
  const double right = kWidth - (chart.right_axis ? kAxisLabelColumn + WidestLabel(right_ticks) + kTickGap : kRightWithoutAxis);
  layout.width = kWidth;

  // The legend's rows set the top margin.
  std::vector<std::string> colors;
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    colors.push_back(chart.series[s].color.empty() ? kPalette[s % std::size(kPalette)] : chart.series[s].color);
    layout.legend.push_back({chart.series[s].name, colors.back(),
                             chart.series[s].dashed ? LegendSymbol::kDashedLine : LegendSymbol::kLine, {}});
  }
  for (const auto& ref : chart.references) layout.legend.push_back({ref.label, ref.color, LegendSymbol::kDashedLine, {}});
  for (std::size_t m = 0; m < chart.marks.size(); ++m) {
    if (mark_in_legend[m]) layout.legend.push_back({chart.marks[m].label, chart.marks[m].color, LegendSymbol::kRing, {}});
  }
  double cursor = left;
  int row = 0;
  for (auto& entry : layout.legend) {
    const double width = 26 + TextWidth(entry.text) + 16;
    if (cursor > left && cursor + width > right) {
      cursor = left;
      ++row;
    }
    entry.at = {cursor, kTitleHeight + row * kLegendRow + 10};
    cursor += width;
  }
  const double legend_height = layout.legend.empty() ? 0 : (row + 1) * kLegendRow;
  const double top = kTitleHeight + legend_height + 8;
  layout.height = kHeight + legend_height;
  layout.plot = {left, top, right, layout.height - kBottom};

  const Scale sx{chart.x_scale, x.lo, x.hi, left, right};
  const Scale sy{chart.y_scale, y.lo, y.hi, layout.plot.bottom, top};
  layout.left_ticks = AxisTicks(y_ticks, [&](double v) { return sy.Map(v); }, false);
  layout.bottom_ticks = AxisTicks(x_ticks, [&](double v) { return sx.Map(v); }, true);
  if (chart.right_axis) {
    layout.right_ticks = AxisTicks(right_ticks, [&](double v) { return sy.Map(chart.right_axis->to_left(v)); }, false);
  }

  for (const auto& ref : chart.references) {
    if (!Drawable(ref.y, chart.y_scale)) continue;
    const double py = sy.Map(ref.y);
    layout.references.push_back({{{left, py}, {right, py}}, ref.color, true, kReferenceWidth});
  }
  // Each run of consecutive drawable points is one polyline; a run of one point is a dot.
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    const std::size_t n = std::min(series.x.size(), series.y.size());
    std::vector<Point> run;
    const auto flush = [&] {
      if (run.size() >= 2) layout.curves.push_back({run, colors[s], series.dashed, kLineWidth});
      if (run.size() == 1 || series.markers) {
        for (const Point& p : run) layout.dots.push_back({p, kDotRadius, colors[s], false});
      }
      run.clear();
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (Drawable(series.x[i], chart.x_scale) && Drawable(series.y[i], chart.y_scale)) {
        run.push_back({sx.Map(series.x[i]), sy.Map(series.y[i])});
      } else {
        flush();
      }
    }
    flush();
  }
  std::vector<std::optional<Point>> mark_points;
  for (const auto& mark : chart.marks) {
    mark_points.emplace_back();
    if (!Drawable(mark.x, chart.x_scale) || !Drawable(mark.y, chart.y_scale)) continue;
    mark_points.back() = Point{sx.Map(mark.x), sy.Map(mark.y)};
    layout.dots.push_back({*mark_points.back(), kRingRadius, mark.color, true});
  }

  // Labels: the marks' first (a mark has one point to sit by, a reference line's label can slide along it).
  Obstacles obstacles;
  obstacles.inside = {left + 1, top + 1, right - 1, layout.plot.bottom - 1};
  for (const DrawnLine& line : layout.curves) obstacles.AddLine(line);
  for (const DrawnLine& line : layout.references) obstacles.AddLine(line);
  for (const DrawnDot& dot : layout.dots) obstacles.AddDot(dot);
  const auto place = [&](const std::string& text, const std::string& color, std::optional<LabelPlace> where) {
    if (!where) return false;
    layout.labels.push_back(PlaceText(text, color, where->box, where->anchor));
    obstacles.boxes.push_back(layout.labels.back().box);
    return true;
  };
  for (std::size_t m = 0; m < chart.marks.size(); ++m) {
    if (mark_in_legend[m] || !mark_points[m]) continue;
    const PointMark& mark = chart.marks[m];
    if (!place(mark.label, mark.color, PlaceMarkLabel(mark.label, *mark_points[m], obstacles))) unplaced[m] = true;
  }
  for (const auto& ref : chart.references) {
    if (!Drawable(ref.y, chart.y_scale)) continue;
    place(ref.label, ref.color, PlaceReferenceLabel(ref.label, sy.Map(ref.y), obstacles));  // else: in the legend only
  }
  return layout;
}

std::string Dash(bool dashed) { return dashed ? " stroke-dasharray=\"6 4\"" : ""; }

std::string Polyline(const DrawnLine& line, const char* css_class) {
  std::string out = "<polyline class=\"" + std::string(css_class) + "\" fill=\"none\" stroke=\"" +
                    EscapeXml(line.color) + "\" stroke-width=\"" + Num(line.stroke_width) +
                    "\" stroke-linejoin=\"round\"" + Dash(line.dashed) + " points=\"";
  for (std::size_t i = 0; i < line.points.size(); ++i) {
    out += (i ? " " : "") + Num(line.points[i].x) + "," + Num(line.points[i].y);
  }
  return out + "\"/>\n";
}

// A tick's label, or only the line's end when the label was left off.
std::string TickLabel(const AxisTick& tick, double x, double y, const char* anchor) {
  if (tick.label.empty()) return "\n";
  return "<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" text-anchor=\"" + anchor + "\">" + EscapeXml(tick.label) +
         "</text>\n";
}

std::string Ring(Point center, double radius, const std::string& color) {
  return "<circle cx=\"" + Num(center.x) + "\" cy=\"" + Num(center.y) + "\" r=\"" + Num(radius) +
         "\" fill=\"none\" stroke=\"" + EscapeXml(color) + "\" stroke-width=\"" + Num(kRingStroke) + "\"/>";
}

}  // namespace

ChartLayout LayoutChart(const Chart& chart) {
  std::vector<bool> in_legend(chart.marks.size(), false);
  for (;;) {
    std::vector<bool> unplaced(chart.marks.size(), false);
    ChartLayout layout = LayoutWith(chart, in_legend, unplaced);
    if (std::find(unplaced.begin(), unplaced.end(), true) == unplaced.end()) return layout;
    // The legend grows, the plot shrinks: lay out again with those labels in the legend (at most once per mark).
    for (std::size_t m = 0; m < unplaced.size(); ++m) in_legend[m] = in_legend[m] || unplaced[m];
  }
}

std::string RenderChart(const Chart& chart) {
  const ChartLayout layout = LayoutChart(chart);
  const Box& plot = layout.plot;
  std::string out;
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + Num(layout.width) + " " + Num(layout.height) +
         "\" width=\"100%\" role=\"img\" font-family=\"sans-serif\" font-size=\"" + Num(kFontSize) + "\">\n";
  out += "<title>" + EscapeXml(chart.title) + "</title>\n";
  out += "<text x=\"" + Num(plot.left) + "\" y=\"18\" font-size=\"15\" font-weight=\"bold\">" + EscapeXml(chart.title) +
         "</text>\n";
  for (const LegendEntry& entry : layout.legend) {
    const std::string color = EscapeXml(entry.color);
    if (entry.symbol == LegendSymbol::kRing) {
      out += Ring({entry.at.x + 10, entry.at.y}, kRingRadius, entry.color);
    } else {
      out += "<line x1=\"" + Num(entry.at.x) + "\" y1=\"" + Num(entry.at.y) + "\" x2=\"" + Num(entry.at.x + 20) +
             "\" y2=\"" + Num(entry.at.y) + "\" stroke=\"" + color + "\" stroke-width=\"2.5\"" +
             Dash(entry.symbol == LegendSymbol::kDashedLine) + "/>";
    }
    out += "<text x=\"" + Num(entry.at.x + 26) + "\" y=\"" + Num(entry.at.y + 4.5) + "\">" + EscapeXml(entry.text) +
           "</text>\n";
  }
  // Frame and grid with tick labels.
  out += "<rect x=\"" + Num(plot.left) + "\" y=\"" + Num(plot.top) + "\" width=\"" + Num(plot.right - plot.left) +
         "\" height=\"" + Num(plot.bottom - plot.top) + "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (const AxisTick& t : layout.left_ticks) {
    out += "<line x1=\"" + Num(plot.left) + "\" y1=\"" + Num(t.pixel) + "\" x2=\"" + Num(plot.right) + "\" y2=\"" +
           Num(t.pixel) + "\" stroke=\"#e4e4e4\"/>" + TickLabel(t, plot.left - kTickGap, t.pixel + 4.5, "end");
  }
  for (const AxisTick& t : layout.right_ticks) {
    out += "<line x1=\"" + Num(plot.right) + "\" y1=\"" + Num(t.pixel) + "\" x2=\"" + Num(plot.right + 3) + "\" y2=\"" +
           Num(t.pixel) + "\" stroke=\"#999\"/>" + TickLabel(t, plot.right + kTickGap, t.pixel + 4.5, "start");
  }
  for (const AxisTick& t : layout.bottom_ticks) {
    out += "<line x1=\"" + Num(t.pixel) + "\" y1=\"" + Num(plot.top) + "\" x2=\"" + Num(t.pixel) + "\" y2=\"" +
           Num(plot.bottom) + "\" stroke=\"#e4e4e4\"/>" + TickLabel(t, t.pixel, plot.bottom + 17, "middle");
  }
  const double middle = (plot.top + plot.bottom) / 2;
  out += "<text x=\"" + Num((plot.left + plot.right) / 2) + "\" y=\"" + Num(layout.height - 6) +
         "\" text-anchor=\"middle\">" + EscapeXml(chart.x_label) + "</text>\n";
  out += "<text transform=\"translate(14 " + Num(middle) + ") rotate(-90)\" text-anchor=\"middle\">" +
         EscapeXml(chart.y_label) + "</text>\n";
  if (chart.right_axis) {
    out += "<text transform=\"translate(" + Num(layout.width - 4) + " " + Num(middle) +
           ") rotate(-90)\" text-anchor=\"middle\">" + EscapeXml(chart.right_axis->label) + "</text>\n";
  }

  for (const DrawnLine& line : layout.references) out += Polyline(line, "reference");
  for (const DrawnLine& line : layout.curves) out += Polyline(line, "curve");
  for (const DrawnDot& dot : layout.dots) {
    if (dot.ring) {
      out += Ring(dot.center, dot.radius, dot.color) + "\n";
    } else {
      out += "<circle cx=\"" + Num(dot.center.x) + "\" cy=\"" + Num(dot.center.y) + "\" r=\"" + Num(dot.radius) +
             "\" fill=\"" + EscapeXml(dot.color) + "\"/>\n";
    }
  }
  for (const PlacedText& label : layout.labels) {
    const char* anchor = label.anchor == Anchor::kStart ? "start" : label.anchor == Anchor::kEnd ? "end" : "middle";
    out += "<text class=\"label\" x=\"" + Num(label.at.x) + "\" y=\"" + Num(label.at.y) + "\" text-anchor=\"" +
           anchor + "\" fill=\"" + EscapeXml(label.color) + "\">" + EscapeXml(label.text) + "</text>\n";
  }
  if (layout.empty) {
    out += "<text x=\"" + Num((plot.left + plot.right) / 2) + "\" y=\"" + Num(middle) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace charlm::svg
