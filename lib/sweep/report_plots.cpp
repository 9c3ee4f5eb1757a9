#include "sweep/report_plots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "util/format.h"

namespace cca::sweep {
namespace {

constexpr const char* kKeyColour = "#555555";  // legend entries that explain a line style
constexpr const char* kTokensLabel = "training data seen (tokens)";
constexpr const char* kLossUnit = " (nats per token)";

// One run's curve.
struct Curve {
  size_t run = 0;
  std::vector<PlotPoint> points;
};

// How the runs are drawn: which at all, and in which colour and line style.
struct Style {
  const std::vector<RunFolder>& runs;
  const RunGroups& groups;
  std::vector<bool> drawn;
  std::vector<std::string> arm_labels;  // per treatment, the drawn arm's label ("" untuned)
  bool several_seeds = false;           // some arm has two or more drawn runs: means and bands

  std::string colour(size_t run) const { return series_colour(groups.treatment_of[run]); }
  std::string dash(size_t run) const {
    return several_seeds ? seed_dash(groups.seed_of[run]) : std::string();
  }
  // Runs of one arm share this key.
  std::pair<size_t, std::string> arm(size_t run) const {
    return {groups.treatment_of[run], groups.arm_of[run]};
  }
};

Style make_style(const std::vector<RunFolder>& runs, const RunGroups& groups,
                 const SeedAnalysis& seeds) {
  Style style{runs, groups, std::vector<bool>(runs.size(), true),
              std::vector<std::string>(groups.treatments.size()), false};
  // With tuned keys only each treatment's best arm, the one the comparisons use.
  std::map<std::string, std::string> best;
  if (!seeds.tuned_keys.empty()) {
    for (const Treatment& t : seeds.treatments) best[t.name] = t.arms[t.best].label;
  }
  std::map<std::pair<size_t, std::string>, int> per_arm;
  for (size_t i = 0; i < runs.size(); ++i) {
    const size_t t = groups.treatment_of[i];
    const auto it = best.find(groups.treatments[t]);
    style.drawn[i] = it == best.end() || it->second == groups.arm_of[i];
    if (!style.drawn[i]) continue;
    if (it != best.end()) style.arm_labels[t] = it->second;
    style.several_seeds = style.several_seeds || ++per_arm[style.arm(i)] > 1;
  }
  return style;
}

// Per arm, the mean of its runs where all of them have a point at the same x, and their range.
PlotSeries arm_mean(const std::vector<Curve>& members, const std::string& name) {
  struct Sum {
    double total = 0, lo = INFINITY, hi = -INFINITY;
    size_t n = 0;
  };
  std::map<double, Sum> at;
  for (const Curve& c : members) {
    for (const PlotPoint& p : c.points) {
      Sum& s = at[p.x];
      s.total += p.y;
      s.lo = std::min(s.lo, p.y);
      s.hi = std::max(s.hi, p.y);
      ++s.n;
    }
  }
  PlotSeries mean{name, {}, "", "", 2.5, 1.0, true, true, {}};
  for (const auto& [x, s] : at) {
    if (s.n != members.size()) continue;
    mean.points.push_back({x, s.total / static_cast<double>(s.n), 0});
    mean.band.push_back({x, s.lo, s.hi});
  }
  return mean;
}

// Each run's line in its treatment's colour and its seed's dash; with several seeds, thin, under
// each arm's mean (thick, solid) and range band. `with_means` false: the runs alone (time plot,
// where seeds of one arm do not share x values).
void add_curves(LinePlot& plot, const std::vector<Curve>& curves, const Style& style,
                bool with_means) {
  std::map<std::pair<size_t, std::string>, std::vector<Curve>> arms;
  for (const Curve& c : curves) {
    const bool thin = style.several_seeds && with_means;
    PlotSeries s{style.runs[c.run].name,
                 c.points,
                 style.colour(c.run),
                 style.dash(c.run),
                 thin ? 1.2 : 2.0,
                 thin ? 0.75 : 1.0,
                 !thin,
                 true,
                 {}};
    plot.series.push_back(std::move(s));
    arms[style.arm(c.run)].push_back(c);
  }
  if (!style.several_seeds || !with_means) return;
  for (const auto& [arm, members] : arms) {
    if (members.size() < 2) continue;
    PlotSeries mean = arm_mean(members, style.groups.treatments[arm.first] + " mean");
    mean.colour = series_colour(arm.first);
    plot.series.push_back(std::move(mean));
  }
}

// Colours by treatment, then what the line styles mean.
std::vector<LegendEntry> legend(const Style& style, bool with_means, bool raw) {
  std::vector<LegendEntry> entries;
  std::set<size_t> treatments, seeds;
  for (size_t i = 0; i < style.runs.size(); ++i) {
    if (!style.drawn[i]) continue;
    treatments.insert(style.groups.treatment_of[i]);
    seeds.insert(style.groups.seed_of[i]);
  }
  const bool means = style.several_seeds && with_means;
  for (size_t t : treatments) {
    const std::string& label = style.arm_labels[t];
    entries.push_back({style.groups.treatments[t] + (label.empty() ? "" : " (" + label + ")"),
                       series_colour(t), "", 2.5, means});
  }
  if (means) {
    entries.push_back({"mean over seeds", kKeyColour, "", 2.5, false});
    entries.push_back({"range over seeds", kKeyColour, "", 0, true});
  }
  if (style.several_seeds) {
    for (size_t s : seeds) {
      entries.push_back(
          {format("seed {}", style.groups.seeds[s]), kKeyColour, seed_dash(s), 1.2, false});
    }
  }
  if (raw) entries.push_back({"raw (unsmoothed)", "#c8c8c8", "", 1, false});
  return entries;
}

// Wall time in the unit that keeps tick labels short.
std::pair<double, std::string> time_unit(double longest) {
  if (longest > 3 * 3600) return {3600, "h"};
  if (longest > 5 * 60) return {60, "min"};
  return {1, "s"};
}

double last_x(const std::vector<Curve>& curves) {
  double last = 0;
  for (const Curve& c : curves) {
    if (!c.points.empty()) last = std::max(last, c.points.back().x);
  }
  return last;
}

LinePlot tokens_plot(const Style& style, const std::vector<Curve>& curves) {
  LinePlot plot{"Validation loss",
                kTokensLabel,
                std::string("validation loss") + kLossUnit,
                TickStyle::count,
                {},
                {},
                0.0};
  add_curves(plot, curves, style, true);
  plot.legend = legend(style, true, false);
  plot.range_from_x = last_x(curves) * 0.1;  // the first evaluations' high losses
  return plot;
}

LinePlot time_plot(const Style& style) {
  std::vector<Curve> curves;
  double longest = 0;
  for (size_t i = 0; i < style.runs.size(); ++i) {
    if (!style.drawn[i]) continue;
    const RunMetrics& m = style.runs[i].metrics;
    Curve c{i, {}};
    for (const EvalRecord& e : m.eval) {
      if (!e.time_s) continue;
      const double t = std::max(0.0, *e.time_s - warmup_through(m, e.step));
      c.points.push_back({t, e.val_loss, 0});
      longest = std::max(longest, t);
    }
    curves.push_back(std::move(c));
  }
  const auto [divisor, unit] = time_unit(longest);
  for (Curve& c : curves) {
    for (PlotPoint& p : c.points) p.x /= divisor;
  }
  LinePlot plot{"Validation loss over training time",
                "training time (" + unit + ", excluding start-up and warm-up)",
                std::string("validation loss") + kLossUnit,
                TickStyle::number,
                {},
                {},
                0.0};
  add_curves(plot, curves, style, false);
  plot.legend = legend(style, false, false);
  plot.range_from_x = last_x(curves) * 0.1;
  return plot;
}

// Smoothed training loss per run (and its arm's mean) over the faint raw records.
LinePlot train_plot(const Style& style) {
  LinePlot plot{"Training loss (smoothed; raw faint)",
                kTokensLabel,
                std::string("training loss") + kLossUnit,
                TickStyle::count,
                {},
                {},
                0.0};
  std::vector<Curve> smoothed;
  for (size_t i = 0; i < style.runs.size(); ++i) {
    if (!style.drawn[i]) continue;
    Curve raw{i, {}};
    for (const TrainRecord& t : style.runs[i].metrics.train) {
      if (t.tokens_seen) raw.points.push_back({static_cast<double>(*t.tokens_seen), t.loss, 0});
    }
    std::vector<double> losses;
    for (const PlotPoint& p : raw.points) losses.push_back(p.y);
    losses = smooth(losses, std::max<size_t>(2, losses.size() / 25));
    Curve s = raw;
    for (size_t k = 0; k < losses.size(); ++k) s.points[k].y = losses[k];
    plot.series.push_back({style.runs[i].name + " raw",
                           raw.points,
                           style.colour(i),
                           "",
                           1.0,
                           0.25,
                           false,
                           false,
                           {}});
    smoothed.push_back(std::move(s));
  }
  add_curves(plot, smoothed, style, true);
  for (PlotSeries& s : plot.series) s.markers = false;  // hundreds of records
  plot.legend = legend(style, true, true);
  // Past the first steps' 10-nat region and the steep fall after it, so the end is readable.
  plot.range_from_x = last_x(smoothed) * 0.2;
  return plot;
}

// One curve per run and named validation set (data.val as a list): "<run>/<set>", in the run's
// variant's colour, one dash pattern per set.
LinePlot per_set_plot(const Style& style) {
  LinePlot plot{"Validation loss per set",
                kTokensLabel,
                std::string("validation loss") + kLossUnit,
                TickStyle::count,
                {},
                {},
                0.0};
  for (size_t i = 0; i < style.runs.size(); ++i) {
    const RunFolder& r = style.runs[i];
    std::map<std::string, PlotSeries> by_set;
    for (const EvalRecord& e : r.metrics.eval) {
      if (!e.tokens_seen) continue;
      for (const auto& [set, loss] : e.set_losses) {
        PlotSeries& series = by_set[set];
        series.name = r.name + "/" + set;
        series.points.push_back({static_cast<double>(*e.tokens_seen), loss, 0});
      }
    }
    size_t k = 0;
    for (auto& [set, series] : by_set) {
      series.colour = style.colour(i);
      series.dash = k++ == 0 ? "" : seed_dash(k - 2);
      plot.series.push_back(std::move(series));
    }
  }
  return plot;
}

// Mean final validation loss against the one tuned key, one line per treatment (log x for a
// learning rate); none when nothing or more than one key is tuned.
std::optional<NamedPlot> tuning_plot(const SeedAnalysis& a) {
  if (a.tuned_keys.size() != 1) return std::nullopt;
  const std::string& key = a.tuned_keys.front();
  const bool log_x = key == "optim.lr";
  LinePlot plot{"Final validation loss against " + key,
                key + (log_x ? " (log scale)" : ""),
                "final validation loss (nats per token; mean, 95% interval)",
                log_x ? TickStyle::log10 : TickStyle::number,
                {},
                {},
                std::nullopt};
  for (const Treatment& t : a.treatments) {
    PlotSeries series{t.name, {}};
    for (const Arm& arm : t.arms) {
      const double x = arm.tuned_values.front();
      if (!std::isfinite(x) || (log_x && x <= 0)) continue;
      const double half = arm.loss.high ? *arm.loss.high - arm.loss.mean : 0;
      series.points.push_back({log_x ? std::log10(x) : x, arm.loss.mean, half});
      const double at = series.points.back().x;
      if (std::find(plot.x_tick_values.begin(), plot.x_tick_values.end(), at) ==
          plot.x_tick_values.end())
        plot.x_tick_values.push_back(at);
    }
    plot.series.push_back(std::move(series));
  }
  return NamedPlot{"val_loss_" + key.substr(key.rfind('.') + 1) + ".svg", plot};
}

}  // namespace

const char* seed_dash(size_t index) {
  static const char* const kDashes[] = {"7 3", "2 3", "12 3 2 3", "4 4", "1 5", "9 5 2 5 2 5"};
  return kDashes[index % 6];
}

std::vector<double> smooth(const std::vector<double>& values, size_t half) {
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t reach = std::min({half, i, values.size() - 1 - i});
    double total = 0;
    for (size_t k = i - reach; k <= i + reach; ++k) total += values[k];
    out[i] = total / static_cast<double>(2 * reach + 1);
  }
  return out;
}

std::vector<NamedPlot> report_plots(const std::vector<RunFolder>& runs, const RunGroups& groups,
                                    const SeedAnalysis& seeds) {
  const Style style = make_style(runs, groups, seeds);
  std::vector<Curve> by_tokens;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!style.drawn[i]) continue;
    Curve c{i, {}};
    for (const EvalRecord& e : runs[i].metrics.eval) {
      if (e.tokens_seen) c.points.push_back({static_cast<double>(*e.tokens_seen), e.val_loss, 0});
    }
    by_tokens.push_back(std::move(c));
  }
  const LinePlot tokens = tokens_plot(style, by_tokens);
  // The second half of training, where the variants' differences are visible at all.
  LinePlot zoom = tokens;
  zoom.title = "Validation loss, second half of training";
  zoom.x_min = last_x(by_tokens) / 2;
  std::vector<NamedPlot> plots = {{"val_loss_tokens.svg", tokens},
                                  {"val_loss_tokens_zoom.svg", zoom},
                                  {"val_loss_time.svg", time_plot(style)},
                                  {"train_loss_tokens.svg", train_plot(style)}};
  LinePlot sets = per_set_plot(style);
  if (!sets.series.empty()) plots.push_back({"val_loss_sets_tokens.svg", std::move(sets)});
  if (auto plot = tuning_plot(seeds)) plots.push_back(std::move(*plot));
  return plots;
}

}  // namespace cca::sweep
