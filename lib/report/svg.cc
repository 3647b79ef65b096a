// Chart layout and SVG output: the domain from the drawable points, nice ticks, then frame, grid, lines and legend.
#include "report/svg.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>

namespace charlm::svg {
namespace {

// The chart's own coordinate system; the browser scales it to the page (width 100%).
constexpr double kWidth = 640, kHeight = 340;
constexpr double kLeft = 62, kRight = 18, kBottom = 46, kTitleHeight = 26, kLegendRow = 20;
constexpr double kFontSize = 13;
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

// Estimated width of text at kFontSize: wide (CJK) characters count about twice a Latin one.
double TextWidth(std::string_view text) {
  double width = 0;
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const std::size_t length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    width += length >= 3 ? kFontSize : kFontSize * 0.6;
    i += length;
  }
  return width;
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

std::string RenderChart(const Chart& chart) {
  // Legend layout first: its rows set the top margin.
  struct LegendItem {
    std::string text, color;
    bool dashed = false;
    bool reference = false;
    double x = 0;
    int row = 0;
  };
  std::vector<LegendItem> legend;
  std::vector<std::string> colors;
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    colors.push_back(chart.series[s].color.empty() ? kPalette[s % std::size(kPalette)] : chart.series[s].color);
    legend.push_back({chart.series[s].name, colors.back(), chart.series[s].dashed, false});
  }
  for (const auto& ref : chart.references) legend.push_back({ref.label, ref.color, true, true});
  double cursor = kLeft;
  int rows = 0;
  for (auto& item : legend) {
    const double width = 26 + TextWidth(item.text) + 16;
    if (cursor > kLeft && cursor + width > kWidth - kRight) {
      cursor = kLeft;
      ++rows;
    }
    item.x = cursor;
    item.row = rows;
    cursor += width;
  }
  const double legend_height = legend.empty() ? 0 : (rows + 1) * kLegendRow;
  const double top = kTitleHeight + legend_height + 8;
  const double height = kHeight + legend_height;

  Domain xd, yd;
  bool any_point = false;
  for (const auto& s : chart.series) {
    const std::size_t n = std::min(s.x.size(), s.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!Drawable(s.x[i], chart.x_scale) || !Drawable(s.y[i], chart.y_scale)) continue;
      xd.Add(s.x[i]);
      yd.Add(s.y[i]);
      any_point = true;
    }
  }
  for (const auto& ref : chart.references) {
    if (Drawable(ref.y, chart.y_scale)) yd.Add(ref.y);
  }
  for (const auto& mark : chart.marks) {
    if (Drawable(mark.x, chart.x_scale) && Drawable(mark.y, chart.y_scale)) {
      xd.Add(mark.x);
      yd.Add(mark.y);
    }
  }
  const Domain x = Finish(xd, chart.x_scale), y = Finish(yd, chart.y_scale);
  const Scale sx{chart.x_scale, x.lo, x.hi, kLeft, kWidth - kRight};
  const Scale sy{chart.y_scale, y.lo, y.hi, height - kBottom, top};

  std::string out;
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + Num(kWidth) + " " + Num(height) +
         "\" width=\"100%\" role=\"img\" font-family=\"sans-serif\" font-size=\"" + Num(kFontSize) + "\">\n";
  out += "<title>" + EscapeXml(chart.title) + "</title>\n";
  out += "<text x=\"" + Num(kLeft) + "\" y=\"18\" font-size=\"15\" font-weight=\"bold\">" + EscapeXml(chart.title) +
         "</text>\n";
  for (const auto& item : legend) {
    const double ly = kTitleHeight + item.row * kLegendRow + 10;
    out += "<line x1=\"" + Num(item.x) + "\" y1=\"" + Num(ly) + "\" x2=\"" + Num(item.x + 20) + "\" y2=\"" + Num(ly) +
           "\" stroke=\"" + EscapeXml(item.color) + "\" stroke-width=\"2.5\"" +
           (item.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>";
    out += "<text x=\"" + Num(item.x + 26) + "\" y=\"" + Num(ly + 4.5) + "\">" + EscapeXml(item.text) + "</text>\n";
  }
  // Frame and grid with tick labels.
  out += "<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(top) + "\" width=\"" + Num(kWidth - kRight - kLeft) +
         "\" height=\"" + Num(height - kBottom - top) + "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (const Tick& t : NiceTicks(y.lo, y.hi, 5, chart.y_scale)) {
    const double py = sy.Map(t.value);
    out += "<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(py) + "\" x2=\"" + Num(kWidth - kRight) + "\" y2=\"" + Num(py) +
           "\" stroke=\"#e4e4e4\"/><text x=\"" + Num(kLeft - 5) + "\" y=\"" + Num(py + 4.5) +
           "\" text-anchor=\"end\">" + EscapeXml(t.label) + "</text>\n";
  }
  for (const Tick& t : NiceTicks(x.lo, x.hi, 6, chart.x_scale)) {
    const double px = sx.Map(t.value);
    out += "<line x1=\"" + Num(px) + "\" y1=\"" + Num(top) + "\" x2=\"" + Num(px) + "\" y2=\"" + Num(height - kBottom) +
           "\" stroke=\"#e4e4e4\"/><text x=\"" + Num(px) + "\" y=\"" + Num(height - kBottom + 17) +
           "\" text-anchor=\"middle\">" + EscapeXml(t.label) + "</text>\n";
  }
  out += "<text x=\"" + Num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + Num(height - 6) + "\" text-anchor=\"middle\">" +
         EscapeXml(chart.x_label) + "</text>\n";
  out += "<text transform=\"translate(14 " + Num((top + height - kBottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + EscapeXml(chart.y_label) + "</text>\n";

  for (const auto& ref : chart.references) {
    if (!Drawable(ref.y, chart.y_scale)) continue;
    const double py = sy.Map(ref.y);
    out += "<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(py) + "\" x2=\"" + Num(kWidth - kRight) + "\" y2=\"" + Num(py) +
           "\" stroke=\"" + EscapeXml(ref.color) + "\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n";
  }
  // Each run of consecutive drawable points is one polyline; a run of one point is a dot.
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    const std::string color = EscapeXml(colors[s]);
    const std::size_t n = std::min(series.x.size(), series.y.size());
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() >= 2) {
        out += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\" stroke-linejoin=\"round\"" +
               std::string(series.dashed ? " stroke-dasharray=\"6 4\"" : "") + " points=\"";
        for (std::size_t i = 0; i < run.size(); ++i) out += (i ? " " : "") + Num(run[i].first) + "," + Num(run[i].second);
        out += "\"/>\n";
      }
      if (run.size() == 1 || series.markers) {
        for (const auto& [px, py] : run) {
          out += "<circle cx=\"" + Num(px) + "\" cy=\"" + Num(py) + "\" r=\"3\" fill=\"" + color + "\"/>\n";
        }
      }
      run.clear();
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (Drawable(series.x[i], chart.x_scale) && Drawable(series.y[i], chart.y_scale)) {
        run.emplace_back(sx.Map(series.x[i]), sy.Map(series.y[i]));
      } else {
        flush();
      }
    }
    flush();
  }
  for (const auto& mark : chart.marks) {
    if (!Drawable(mark.x, chart.x_scale) || !Drawable(mark.y, chart.y_scale)) continue;
    const double px = sx.Map(mark.x), py = sy.Map(mark.y);
    const bool right_half = px > (kLeft + kWidth - kRight) / 2;
    out += "<circle cx=\"" + Num(px) + "\" cy=\"" + Num(py) + "\" r=\"6\" fill=\"none\" stroke=\"" +
           EscapeXml(mark.color) + "\" stroke-width=\"2\"/><text x=\"" + Num(px + (right_half ? -9 : 9)) + "\" y=\"" +
           Num(py - 9) + "\" fill=\"" + EscapeXml(mark.color) + "\" text-anchor=\"" + (right_half ? "end" : "start") +
           "\">" + EscapeXml(mark.label) + "</text>\n";
  }
  for (const auto& ref : chart.references) {
    if (!Drawable(ref.y, chart.y_scale)) continue;
    out += "<text x=\"" + Num(kWidth - kRight - 4) + "\" y=\"" + Num(sy.Map(ref.y) - 5) + "\" text-anchor=\"end\" fill=\"" +
           EscapeXml(ref.color) + "\">" + EscapeXml(ref.label) + "</text>\n";
  }
  if (!any_point) {
    out += "<text x=\"" + Num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + Num((top + height - kBottom) / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace charlm::svg
