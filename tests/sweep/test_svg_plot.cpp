// The SVG line-plot writer: well-formed documents, escaped text, sensible ticks, and the zoom.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include "sweep/svg_plot.h"
#include "sweep/xml_check.h"

namespace cca::sweep {
namespace {

LinePlot two_runs() {
  LinePlot plot;
  plot.title = "Loss <vs> tokens & \"time\"";
  plot.x_label = "tokens seen";
  plot.y_label = "validation loss";
  plot.x_ticks = TickStyle::count;
  plot.series.push_back({"mha", {{0, 6.0}, {4.1e6, 4.5}, {8.2e6, 4.0}, {16.4e6, 3.7}}});
  plot.series.push_back({"cca's <best>", {{0, 6.1}, {4.1e6, 4.4}, {8.2e6, 3.9}, {16.4e6, 3.6}}});
  return plot;
}

bool has_text(const testing::XmlSummary& xml, const std::string& text) {
  for (const std::string& t : xml.texts) {
    if (t == text) return true;
  }
  return false;
}

TEST(SvgPlot, WritesAWellFormedDocumentWithOneLinePerSeries) {
  const std::string svg = render_svg(two_runs());
  ASSERT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 0), 0u);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  const testing::XmlSummary xml = testing::check_xml(svg);
  ASSERT_EQ(xml.problem, "") << svg;
  EXPECT_EQ(xml.root, "svg");
  EXPECT_EQ(xml.elements.at("polyline"), 2);
  EXPECT_EQ(xml.elements.at("circle"), 8);  // a marker per point
  EXPECT_TRUE(has_text(xml, "Loss &lt;vs&gt; tokens &amp; &quot;time&quot;"));
  EXPECT_TRUE(has_text(xml, "cca&#39;s &lt;best&gt;"));  // legend
  EXPECT_TRUE(has_text(xml, "validation loss"));
  for (const char* tick : {"0", "5M", "10M", "15M"}) EXPECT_TRUE(has_text(xml, tick)) << tick;
  EXPECT_NE(svg.find(series_colour(0)), std::string::npos);
  EXPECT_NE(svg.find(series_colour(1)), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(SvgPlot, ZoomDrawsOnlyThePointsPastXMin) {
  LinePlot plot = two_runs();
  plot.x_min = 8e6;
  const std::string svg = render_svg(plot);
  const testing::XmlSummary xml = testing::check_xml(svg);
  ASSERT_EQ(xml.problem, "");
  EXPECT_EQ(xml.elements.at("circle"), 4);
  // The y axis spans the visible losses (3.6 .. 4.0), not the early 6.x.
  EXPECT_FALSE(has_text(xml, "6.0"));
  EXPECT_FALSE(has_text(xml, "6"));
}

// The learning-rate plot of a sweep: ticks at the tuned values, printed as values, and the end
// points inside the frame; y labels with the decimals their spacing needs.
TEST(SvgPlot, ExplicitLogTicksSitOnTheTunedValuesAndYLabelsShowTheirStep) {
  LinePlot plot;
  plot.title = "loss against lr";
  plot.x_ticks = TickStyle::log10;
  const std::vector<double> lrs = {7.5e-4, 1.5e-3, 3e-3};
  const std::vector<double> losses = {3.372, 3.352, 3.757};
  PlotSeries series{"mha", {}};
  for (size_t i = 0; i < lrs.size(); ++i) {
    series.points.push_back({std::log10(lrs[i]), losses[i], 0.08});
    plot.x_tick_values.push_back(std::log10(lrs[i]));
  }
  plot.series.push_back(series);
  plot.series.push_back({"cca", {{std::log10(7.5e-4), 3.171}, {std::log10(3e-3), 2.959}}});
  const std::string svg = render_svg(plot);
  const testing::XmlSummary xml = testing::check_xml(svg);
  ASSERT_EQ(xml.problem, "") << svg;
  for (const char* tick : {"0.00075", "0.0015", "0.003"}) EXPECT_TRUE(has_text(xml, tick)) << svg;
  EXPECT_FALSE(has_text(xml, "0.00158")) << svg;
  // These losses give y ticks 0.25 apart: they read "3.25" and "3.75", not one decimal's "3.2"
  // and "3.8", and the printed values are evenly spaced.
  EXPECT_TRUE(has_text(xml, "3.25")) << svg;
  EXPECT_TRUE(has_text(xml, "3.75")) << svg;
  std::vector<double> y_labels;
  for (const std::string& t : xml.texts) {
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (!t.empty() && *end == '\0' && v > 2 && v < 5) y_labels.push_back(v);
  }
  ASSERT_GE(y_labels.size(), 3u) << svg;
  for (size_t i = 2; i < y_labels.size(); ++i) {
    EXPECT_NEAR(y_labels[i] - y_labels[i - 1], y_labels[1] - y_labels[0], 1e-9) << svg;
  }
  // No marker sits on the frame's left or right edge (x = 72 and x = 704 in a 720-wide plot).
  for (const char* edge : {"cx=\"72\"", "cx=\"704\""}) EXPECT_EQ(svg.find(edge), std::string::npos);
}

TEST(SvgPlot, EmptyAndDegeneratePlotsStayWellFormed) {
  LinePlot empty;
  empty.title = "nothing";
  empty.series.push_back({"a", {}});
  const std::string none = render_svg(empty);
  EXPECT_EQ(testing::check_xml(none).problem, "");
  EXPECT_NE(none.find(">no data<"), std::string::npos);
  EXPECT_EQ(testing::check_xml(none).elements.count("polyline"), 0u);

  LinePlot one;
  one.series.push_back({"a", {{5, 2.0}, {5, 2.0}, {7, NAN}}});
  const std::string svg = render_svg(one);
  EXPECT_EQ(testing::check_xml(svg).problem, "");
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

// The numbers in `attribute="…"` within [from, to) of `svg`.
std::vector<double> attribute_values(const std::string& svg, const std::string& attribute,
                                     size_t from, size_t to) {
  std::vector<double> values;
  const std::string key = " " + attribute + "=\"";
  for (size_t at = svg.find(key, from); at < to; at = svg.find(key, at + 1)) {
    values.push_back(std::stod(svg.substr(at + key.size())));
  }
  return values;
}

TEST(SvgPlot, TheLegendSitsBesideThePlotAreaAndTheDocumentScalesWithThePage) {
  const std::string svg = render_svg(two_runs());
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 "),
            std::string::npos);
  const size_t frame = svg.find("class=\"frame\"");
  ASSERT_NE(frame, std::string::npos);
  const double right = attribute_values(svg, "x", frame, frame + 200).at(0) +
                       attribute_values(svg, "width", frame, frame + 200).at(0);
  const size_t legend = svg.find("class=\"legend\"");
  ASSERT_NE(legend, std::string::npos);
  const size_t end = svg.find("</g>", legend);
  std::vector<double> xs = attribute_values(svg, "x", legend, end);
  for (double x : attribute_values(svg, "x1", legend, end)) xs.push_back(x);
  ASSERT_GE(xs.size(), 4u);
  for (double x : xs) EXPECT_GT(x, right);  // nothing of the legend over a line
  const double view_width = std::stod(svg.substr(svg.find("viewBox=\"0 0 ") + 13));
  EXPECT_GT(view_width, *std::max_element(xs.begin(), xs.end()) + 7 * 12);  // room for a label
}

// WCAG contrast ratio of "#rrggbb" against white.
double contrast_on_white(const std::string& colour) {
  double luminance = 0;
  const double weights[] = {0.2126, 0.7152, 0.0722};
  for (int c = 0; c < 3; ++c) {
    const double v = std::stoi(colour.substr(1 + 2 * c, 2), nullptr, 16) / 255.0;
    luminance += weights[c] * (v <= 0.03928 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4));
  }
  return 1.05 / (luminance + 0.05);
}

TEST(SvgPlot, EveryPaletteColourReadsOnWhite) {
  std::set<std::string> distinct;
  for (size_t i = 0; i < kPaletteSize; ++i) {
    EXPECT_GE(contrast_on_white(series_colour(i)), 3.0) << series_colour(i);
    distinct.insert(series_colour(i));
  }
  EXPECT_EQ(distinct.size(), 10u);  // the nine arms of configs/ablations/components.yaml fit
}

TEST(SvgPlot, RangeFromXKeepsTheFirstStepsOutOfTheYAxisAndClipsThem) {
  LinePlot plot = two_runs();
  plot.series[0].points.insert(plot.series[0].points.begin(), {0, 10.0});
  plot.range_from_x = 4e6;
  plot.series[1].dash = "7 3";
  plot.series[1].band = {{4.1e6, 4.3, 4.5}, {16.4e6, 3.5, 3.7}};
  const std::string svg = render_svg(plot);
  const testing::XmlSummary xml = testing::check_xml(svg);
  ASSERT_EQ(xml.problem, "") << svg;
  EXPECT_FALSE(has_text(xml, "10")) << svg;  // y spans 3.5 .. 4.5 only
  EXPECT_FALSE(has_text(xml, "6.0"));
  EXPECT_NE(svg.find("clip-path=\"url(#plot-area-"), std::string::npos);
  EXPECT_EQ(xml.elements.at("polyline"), 2);
  EXPECT_EQ(xml.elements.at("polygon"), 1);  // the band
  EXPECT_NE(svg.find("stroke-dasharray=\"7 3\""), std::string::npos);
}

TEST(SvgPlot, NiceTicksAreRoundAndCoverTheRange) {
  const auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << i;
  };
  near(nice_ticks(0, 1, 6), {0, 0.2, 0.4, 0.6, 0.8, 1});
  near(nice_ticks(3.17, 4.92, 6), {3.5, 4.0, 4.5});
  near(nice_ticks(0, 16.4e6, 7), {0, 5e6, 10e6, 15e6});
  near(nice_ticks(-0.3, 0.3, 7), {-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3});
  EXPECT_EQ(nice_ticks(2, 2, 5).size(), 5u);  // a single value is widened
}

TEST(SvgPlot, TheCheckerRejectsBrokenXml) {
  EXPECT_NE(testing::check_xml("<svg><g></svg>").problem, "");
  EXPECT_NE(testing::check_xml("<svg a=1></svg>").problem, "");
  EXPECT_NE(testing::check_xml("<svg>a & b</svg>").problem, "");
  EXPECT_NE(testing::check_xml("<svg a=\"1\" a=\"2\"/>").problem, "");
  EXPECT_NE(testing::check_xml("<svg/><svg/>").problem, "");
  EXPECT_EQ(testing::check_xml("<svg a=\"&amp;\"><t>x &lt; y</t></svg>").problem, "");
}

}  // namespace
}  // namespace cca::sweep
