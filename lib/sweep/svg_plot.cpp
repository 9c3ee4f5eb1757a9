#include "sweep/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "util/format.h"

namespace cca::sweep {
namespace {

// Plot area inside the document: room on the left for y tick labels and the rotated y label,
// at the top for the title and at the bottom for x tick labels and the x label.
struct Frame {
  double left, right, top, bottom;
};

struct Axis {
  double lo = 0;
  double hi = 1;
  double step = 1;
  std::vector<double> ticks;
};

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool empty() const { return !(lo <= hi); }
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
};

double nice_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(target - 1, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  }
  return 10 * magnitude;
}

// Widens a degenerate range (one point, or one value everywhere) so it can be drawn.
void widen(double& lo, double& hi) {
  if (hi > lo) return;
  const double pad = lo != 0 ? std::fabs(lo) * 0.05 : 1.0;
  lo -= pad;
  hi += pad;
}

// With `snap`, the limits move outwards to whole steps, so the first and last ticks sit on the
// frame (for losses); without, the axis spans exactly the data (for tokens and time, where
// rounding 41K up to 50K would waste a fifth of the width).
Axis make_axis(double lo, double hi, int target, bool snap) {
  widen(lo, hi);
  Axis axis;
  axis.step = nice_step(lo, hi, target);
  axis.lo = snap ? std::floor(lo / axis.step + 1e-9) * axis.step : lo;
  axis.hi = snap ? std::ceil(hi / axis.step - 1e-9) * axis.step : hi;
  axis.ticks = nice_ticks(axis.lo, axis.hi, target);
  // The labels' decimals follow the ticks actually drawn (0.25 apart needs two, not one).
  if (axis.ticks.size() >= 2) axis.step = axis.ticks[1] - axis.ticks[0];
  return axis;
}

Axis explicit_axis(const std::vector<double>& ticks) {
  Axis axis;
  axis.ticks = ticks;
  std::sort(axis.ticks.begin(), axis.ticks.end());
  axis.lo = axis.ticks.front();
  axis.hi = axis.ticks.back();
  widen(axis.lo, axis.hi);
  const double margin = (axis.hi - axis.lo) * 0.08;
  axis.lo -= margin;
  axis.hi += margin;
  axis.step = axis.ticks.size() >= 2 ? axis.ticks[1] - axis.ticks[0] : axis.hi - axis.lo;
  return axis;
}

// Fewest decimals (up to 6) that print `step` exactly.
int decimals_for(double step) {
  for (int d = 0; d < 6; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) return d;
  }
  return 6;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string tick_label(double value, const Axis& axis, TickStyle style) {
  if (style == TickStyle::log10) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", std::pow(10.0, value));
    return text;
  }
  if (std::fabs(value) < axis.step * 1e-9) return "0";
  if (style == TickStyle::number) return fixed(value, decimals_for(axis.step));
  const double top = std::max(std::fabs(axis.lo), std::fabs(axis.hi));
  double divisor = 1;
  const char* suffix = "";
  for (const auto& [scale, name] : {std::pair{1e9, "G"}, {1e6, "M"}, {1e3, "K"}}) {
    if (top >= scale) {
      divisor = scale;
      suffix = name;
      break;
    }
  }
  return fixed(value / divisor, decimals_for(axis.step / divisor)) + suffix;
}

bool visible(const PlotPoint& p, const LinePlot& plot) {
  return std::isfinite(p.x) && std::isfinite(p.y) && (!plot.x_min || p.x >= *plot.x_min);
}

std::string num(double v) {
  return fixed(v, 1);
}

// Characters, not bytes: labels carry "−" and "–".
size_t utf8_length(const std::string& text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

void draw_axes(std::string& out, const Frame& f, const Axis& x, const Axis& y,
               const LinePlot& plot) {
  const auto px = [&](double v) {
    return f.left + (v - x.lo) / (x.hi - x.lo) * (f.right - f.left);
  };
  const auto py = [&](double v) {
    return f.bottom - (v - y.lo) / (y.hi - y.lo) * (f.bottom - f.top);
  };
  out += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : x.ticks) {
    out += format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", num(px(t)), num(f.top),
                  num(px(t)), num(f.bottom));
  }
  for (double t : y.ticks) {
    out += format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", num(f.left), num(py(t)),
                  num(f.right), num(py(t)));
  }
  out += "</g>\n";
  out += format(
      "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#444\"/>\n",
      num(f.left), num(f.top), num(f.right - f.left), num(f.bottom - f.top));
  out += "<g fill=\"#333\">\n";
  for (double t : x.ticks) {
    out += format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(px(t)),
                  num(f.bottom + 16), xml_escape(tick_label(t, x, plot.x_ticks)));
  }
  for (double t : y.ticks) {
    out += format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(f.left - 6),
                  num(py(t) + 4), xml_escape(tick_label(t, y, TickStyle::number)));
  }
  out += "</g>\n";
}

void draw_labels(std::string& out, const Frame& f, const LinePlot& plot) {
  const double mid_x = (f.left + f.right) / 2;
  const double mid_y = (f.top + f.bottom) / 2;
  out += format(
      "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
      "font-weight=\"bold\">{}</text>\n",
      num(mid_x), xml_escape(plot.title));
  out += format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(mid_x),
                num(plot.height - 10.0), xml_escape(plot.x_label));
  out += format(
      "<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>\n",
      num(mid_y), num(mid_y), xml_escape(plot.y_label));
}

// Maps data to the frame's pixels.
struct Scale {
  const Frame& f;
  const Axis& x;
  const Axis& y;
  double px(double v) const { return f.left + (v - x.lo) / (x.hi - x.lo) * (f.right - f.left); }
  double py(double v) const { return f.bottom - (v - y.lo) / (y.hi - y.lo) * (f.bottom - f.top); }
};

std::string colour_of(const PlotSeries& s, size_t index) {
  return s.colour.empty() ? series_colour(index) : s.colour;
}

std::string dash_attribute(const std::string& dash) {
  return dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"";
}

void draw_band(std::string& out, const Scale& sc, const PlotSeries& s, const std::string& colour,
               const LinePlot& plot) {
  std::string upper, lower;
  for (const BandPoint& b : s.band) {
    if (!std::isfinite(b.lo) || !std::isfinite(b.hi) || (plot.x_min && b.x < *plot.x_min)) continue;
    upper += num(sc.px(b.x)) + "," + num(sc.py(b.hi)) + " ";
    lower = num(sc.px(b.x)) + "," + num(sc.py(b.lo)) + " " + lower;
  }
  if (upper.empty()) return;
  out += format("<polygon fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{}\"/>\n",
                colour, upper + lower.substr(0, lower.size() - 1));
}

void draw_series(std::string& out, const Scale& sc, const LinePlot& plot) {
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const PlotSeries& s = plot.series[i];
    std::string points;
    size_t count = 0;
    for (const PlotPoint& p : s.points) {
      if (!visible(p, plot)) continue;
      points += (count++ ? " " : "") + num(sc.px(p.x)) + "," + num(sc.py(p.y));
    }
    if (count == 0 && s.band.empty()) continue;
    const std::string colour = colour_of(s, i);
    out += format("<g opacity=\"{}\"><title>{}</title>\n", fixed(s.opacity, 2), xml_escape(s.name));
    draw_band(out, sc, s, colour, plot);
    if (count > 0) {
      out += format(
          "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} "
          "stroke-linejoin=\"round\" points=\"{}\"/>\n",
          colour, fixed(s.width, 1), dash_attribute(s.dash), points);
    }
    // Markers show where the measurements are when there are few of them (evaluations).
    for (const PlotPoint& p : s.points) {
      if (!s.markers || count > 60 || !visible(p, plot)) continue;
      out += format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", num(sc.px(p.x)),
                    num(sc.py(p.y)), colour);
      if (p.y_error > 0) {
        out += format(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
            "stroke-width=\"1.5\"/>\n",
            num(sc.px(p.x)), num(sc.py(p.y - p.y_error)), num(sc.px(p.x)),
            num(sc.py(p.y + p.y_error)), colour);
      }
    }
    out += "</g>\n";
  }
}

std::vector<LegendEntry> legend_entries(const LinePlot& plot) {
  if (!plot.legend.empty()) return plot.legend;
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const PlotSeries& s = plot.series[i];
    entries.push_back({s.name, colour_of(s, i), s.dash, 2.5, !s.band.empty()});
  }
  return entries;
}

// The legend's width: the sample line, then the longest label at about 7 px a character.
double legend_width(const std::vector<LegendEntry>& entries) {
  size_t longest = 0;
  for (const LegendEntry& e : entries) longest = std::max(longest, utf8_length(e.label));
  return entries.empty() ? 0 : 44 + 7.0 * static_cast<double>(longest);
}

// To the right of the frame, top-aligned with it, so no line is ever hidden behind it.
void draw_legend(std::string& out, const Frame& f, const std::vector<LegendEntry>& entries) {
  if (entries.empty()) return;
  const double left = f.right + 16;
  out += "<g class=\"legend\">\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    const double y = f.top + 10 + 18.0 * static_cast<double>(i);
    if (e.band) {
      out += format(
          "<rect x=\"{}\" y=\"{}\" width=\"24\" height=\"12\" fill=\"{}\" "
          "fill-opacity=\"0.15\"/>\n",
          num(left), num(y - 6), e.colour);
    }
    if (e.width > 0) {
      out += format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
          num(left), num(y), num(left + 24), num(y), e.colour, fixed(e.width, 1),
          dash_attribute(e.dash));
    }
    out += format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(left + 32), num(y + 4),
                  xml_escape(e.label));
  }
  out += "</g>\n";
}

// An id for the clip path that stays unique when several plots are inlined in one page.
std::string clip_id(const LinePlot& plot) {
  uint32_t hash = 2166136261u;  // FNV-1a of the title
  for (unsigned char c : plot.title) hash = (hash ^ c) * 16777619u;
  return format("plot-area-{}", hash);
}

}  // namespace

const char* series_colour(size_t index) {
  // Okabe–Ito's darker hues and a few more, each at least 3:1 against white; ten, so a components
  // sweep's arms (nine in configs/ablations/components.yaml) each get their own.
  static const char* const kColours[] = {"#0072b2", "#d55e00", "#009e73", "#7b3294", "#c51b7d",
                                         "#a6761d", "#2f4f4f", "#d62728", "#6b6b00", "#1a1a80"};
  return kColours[index % kPaletteSize];
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  widen(lo, hi);
  const double step = nice_step(lo, hi, target);
  const double first = std::ceil(lo / step - 1e-9);
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    const double v = (first + i) * step;  // multiples, so no drift from repeated additions
    if (v > hi + step * 1e-9 || i > 1000) break;
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The data's x and y ranges: y only from points that set it (from range_from_x on), falling back
// to every visible point when none does.
std::pair<Range, Range> data_ranges(const LinePlot& plot) {
  Range xs, ys, all_ys;
  for (const PlotSeries& s : plot.series) {
    const auto add_y = [&](double x, double lo, double hi) {
      all_ys.add(lo);
      all_ys.add(hi);
      if (s.sets_range && (!plot.range_from_x || x >= *plot.range_from_x)) {
        ys.add(lo);
        ys.add(hi);
      }
    };
    for (const PlotPoint& p : s.points) {
      if (!visible(p, plot)) continue;
      xs.add(p.x);
      add_y(p.x, p.y - p.y_error, p.y + p.y_error);
    }
    for (const BandPoint& b : s.band) {
      if (std::isfinite(b.lo) && std::isfinite(b.hi) && (!plot.x_min || b.x >= *plot.x_min)) {
        add_y(b.x, b.lo, b.hi);
      }
    }
  }
  return {xs, ys.empty() ? all_ys : ys};
}

std::string render_svg(const LinePlot& plot) {
  const std::vector<LegendEntry> legend = legend_entries(plot);
  const double width = plot.width + legend_width(legend);
  const Frame frame{72, plot.width - 16.0, 36, plot.height - 52.0};
  auto [xs, ys] = data_ranges(plot);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      num(width), plot.height);
  out += format("<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", num(width), plot.height);
  const bool any = !xs.empty();
  if (!any) {
    xs = Range{0, 1};
    ys = Range{0, 1};
  }
  if (plot.x_origin && !plot.x_min) xs.lo = std::min(xs.lo, *plot.x_origin);
  const double pad = (ys.hi - ys.lo) * 0.03;  // keep extreme points off the frame
  const Axis x = plot.x_tick_values.empty() ? make_axis(xs.lo, xs.hi, 7, /*snap=*/false)
                                            : explicit_axis(plot.x_tick_values);
  const Axis y = make_axis(ys.lo - pad, ys.hi + pad, 6, /*snap=*/true);
  draw_axes(out, frame, x, y, plot);
  draw_labels(out, frame, plot);
  const std::string clip = clip_id(plot);
  out += format(
      "<clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n"
      "<g clip-path=\"url(#{})\">\n",
      clip, num(frame.left), num(frame.top), num(frame.right - frame.left),
      num(frame.bottom - frame.top), clip);
  draw_series(out, Scale{frame, x, y}, plot);
  out += "</g>\n";
  draw_legend(out, frame, legend);
  if (!any) {
    out += format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                  num((frame.left + frame.right) / 2), num((frame.top + frame.bottom) / 2));
  }
  out += "</svg>\n";
  return out;
}

}  // namespace cca::sweep
