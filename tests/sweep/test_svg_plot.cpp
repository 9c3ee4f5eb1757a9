// The SVG line-plot writer: well-formed documents, escaped text, sensible ticks, and the zoom.
#include <gtest/gtest.h>

#include <cmath>

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
