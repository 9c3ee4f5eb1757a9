// A small line-plot writer for run reports: one SVG document with axes, "nice" ticks, labels, a
// legend and one colour per series. Plain C++ with no plotting library, so reports need nothing
// beyond cca-train itself.
#pragma once

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

struct PlotSeries {
  std::string name;
  std::vector<PlotPoint> points;  // drawn in this order
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
  int width = 720;
  int height = 420;
};

// The colour of series `index` (cycles through ten well-separated colours).
const char* series_colour(size_t index);

// A standalone SVG document (with the XML declaration and xmlns). Series without visible points
// still get a legend entry; a plot with no points at all says "no data".
std::string render_svg(const LinePlot& plot);

// Tick positions covering [lo, hi] with a step of 1, 2, 2.5 or 5 × 10^k, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);

// `text` with &, <, >, " and ' replaced by entities (for XML text and attribute values).
std::string xml_escape(std::string_view text);

}  // namespace cca::sweep
