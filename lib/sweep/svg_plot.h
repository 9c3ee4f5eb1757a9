// A small line-plot writer for run reports: one SVG document with axes, "nice" ticks, labels, a
// legend beside the plot area (never over the data), and per series a colour, a dash pattern and
// an optional band. The document has a viewBox and width 100%, so it scales with the page. Plain
// C++ with no plotting library, so reports need nothing beyond cca-train itself.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cca::sweep {

struct PlotPoint {
  double x = 0;
  double y = 0;
  double y_error = 0;  // > 0: a bar from y − y_error to y + y_error (an interval)
};

// A filled band from lo to hi (e.g. the range over seeds), drawn under its series' line.
struct BandPoint {
  double x = 0;
  double lo = 0;
  double hi = 0;
};

struct PlotSeries {
  std::string name;               // the tooltip (and the legend entry when the plot has none)
  std::vector<PlotPoint> points;  // drawn in this order
  std::string colour{};           // "" takes series_colour(index)
  std::string dash{};             // an SVG stroke-dasharray ("6 3"); "" is solid
  double width = 2;
  double opacity = 1;
  bool markers = true;     // circles at the points when there are few of them (evaluations)
  bool sets_range = true;  // false: drawn (clipped to the frame) but never widens the y range
  std::vector<BandPoint> band{};
};

// One line of the legend: a sample line (and band) in this style, then the label.
struct LegendEntry {
  std::string label;
  std::string colour = "#555555";
  std::string dash;
  double width = 2.5;
  bool band = false;
};

// How tick labels on an axis read: plain numbers ("0.25", "1200"), counts with an SI suffix
// ("500K", "1.5M"), or powers of ten for values given as their log10 (x = −2.5 reads "0.00316").
enum class TickStyle { number, count, log10 };

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  TickStyle x_ticks = TickStyle::number;
  std::vector<PlotSeries> series;
  // Zoom: only points with x >= x_min are drawn, and only they set the y range.
  std::optional<double> x_min;
  // Without a zoom, the x axis reaches down to this value at least (0 for tokens and time).
  std::optional<double> x_origin;
  // Only points at x >= this set the y range (the first steps' high losses would squash the rest);
  // lines above it are clipped at the frame.
  std::optional<double> range_from_x{};
  // Empty: one entry per series, in its colour. The legend sits to the right of the plot area.
  std::vector<LegendEntry> legend{};
  // Explicit x ticks (e.g. a sweep's tuned values) instead of "nice" ones; the axis then spans
  // them with a margin, so the points at either end sit inside the frame.
  std::vector<double> x_tick_values{};
  int width = 720;  // the plot area and its axes; the legend adds its own width
  int height = 420;
};

inline constexpr size_t kPaletteSize = 10;

// The colour of series `index`: ten colours that stay legible as lines on white (contrast at
// least 3:1, no yellow, pink or grey), cycling.
const char* series_colour(size_t index);

// A standalone SVG document (with the XML declaration and xmlns). Series without visible points
// still get a legend entry; a plot with no points at all says "no data".
std::string render_svg(const LinePlot& plot);

// Tick positions covering [lo, hi] with a step of 1, 2, 2.5 or 5 × 10^k, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);

// `text` with &, <, >, " and ' replaced by entities (for XML text and attribute values).
std::string xml_escape(std::string_view text);

}  // namespace cca::sweep
