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
  out +=
      format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
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

void draw_series(std::string& out, const Frame& f, const Axis& x, const Axis& y,
                 const LinePlot& plot) {
  const auto px = [&](double v) {
    return f.left + (v - x.lo) / (x.hi - x.lo) * (f.right - f.left);
  };
  const auto py = [&](double v) {
    return f.bottom - (v - y.lo) / (y.hi - y.lo) * (f.bottom - f.top);
  };
  for (size_t i = 0; i < plot.series.size(); ++i) {
    std::string points;
    size_t count = 0;
    for (const PlotPoint& p : plot.series[i].points) {
      if (!visible(p, plot)) continue;
      points += (count++ ? " " : "") + num(px(p.x)) + "," + num(py(p.y));
    }
    if (count == 0) continue;
    const char* colour = series_colour(i);
    out += format("<g><title>{}</title>\n", xml_escape(plot.series[i].name));
    out += format(
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
        "stroke-linejoin=\"round\" points=\"{}\"/>\n",
        colour, points);
    // Markers show where the measurements are when there are few of them (evaluations).
    if (count <= 60) {
      for (const PlotPoint& p : plot.series[i].points) {
        if (!visible(p, plot)) continue;
        out += format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", num(px(p.x)),
                      num(py(p.y)), colour);
        if (p.y_error > 0) {
          out += format(
              "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
              "stroke-width=\"1.5\"/>\n",
              num(px(p.x)), num(py(p.y - p.y_error)), num(px(p.x)), num(py(p.y + p.y_error)),
              colour);
        }
      }
    }
    out += "</g>\n";
  }
}

void draw_legend(std::string& out, const Frame& f, const LinePlot& plot) {
  if (plot.series.empty()) return;
  size_t longest = 0;
  for (const PlotSeries& s : plot.series) longest = std::max(longest, s.name.size());
  const double width = 36 + 7.0 * static_cast<double>(longest);
  const double height = 8 + 16.0 * static_cast<double>(plot.series.size());
  const double left = f.right - width - 8;
  const double top = f.top + 8;
  out += format(
      "<g><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" "
      "fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n",
      num(left), num(top), num(width), num(height));
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const double y = top + 14 + 16.0 * static_cast<double>(i);
    out +=
        format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"/>\n",
               num(left + 6), num(y - 4), num(left + 26), num(y - 4), series_colour(i));
    out += format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(left + 32), num(y),
                  xml_escape(plot.series[i].name));
  }
  out += "</g>\n";
}

}  // namespace

const char* series_colour(size_t index) {
  // Tableau 10: distinguishable for most forms of colour blindness and in greyscale print.
  static const char* const kColours[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                         "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColours[index % 10];
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

std::string render_svg(const LinePlot& plot) {
  const Frame frame{72, plot.width - 16.0, 36, plot.height - 52.0};
  Range xs, ys;
  for (const PlotSeries& s : plot.series) {
    for (const PlotPoint& p : s.points) {
      if (!visible(p, plot)) continue;
      xs.add(p.x);
      ys.add(p.y - p.y_error);
      ys.add(p.y + p.y_error);
    }
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      plot.width, plot.height, plot.width, plot.height);
  out += format("<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", plot.width, plot.height);
  if (xs.empty()) {
    xs = Range{0, 1};
    ys = Range{0, 1};
  }
  if (plot.x_origin && !plot.x_min) xs.lo = std::min(xs.lo, *plot.x_origin);
  const double pad = (ys.hi - ys.lo) * 0.03;  // keep extreme points off the frame
  const Axis x = make_axis(xs.lo, xs.hi, 7, /*snap=*/false);
  const Axis y = make_axis(ys.lo - pad, ys.hi + pad, 6, /*snap=*/true);
  draw_axes(out, frame, x, y, plot);
  draw_labels(out, frame, plot);
  draw_series(out, frame, x, y, plot);
  draw_legend(out, frame, plot);
  bool any = false;
  for (const PlotSeries& s : plot.series) {
    for (const PlotPoint& p : s.points) any = any || visible(p, plot);
  }
  if (!any) {
    out += format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                  num((frame.left + frame.right) / 2), num((frame.top + frame.bottom) / 2));
  }
  out += "</svg>\n";
  return out;
}

}  // namespace cca::sweep
