#include "sweep/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "sweep/arms.h"
#include "sweep/svg_plot.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

constexpr const char* kDash = "—";

// One table, rendered both as Markdown and as HTML.
struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // right-aligned columns
  std::vector<std::vector<std::string>> rows;
};

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

// Three significant digits: "950", "4.03K", "312K", "1.25M".
std::string rate_text(double value) {
  if (value < 1000) return fixed(value, 0);
  const std::string text = human_count(value);  // four digits and a suffix
  const double scaled = std::stod(text);
  const int decimals = scaled >= 100 ? 0 : (scaled >= 10 ? 1 : 2);
  return fixed(scaled, decimals) + text.back();
}

std::string loss_text(const std::optional<EvalRecord>& e) {
  return e ? format("{} (step {})", fixed(e->val_loss, 4), e->step) : kDash;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<long long>(std::llround(seconds));
  char text[64];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", s / 60, s % 60);
  }
  return text;
}

std::string status_text(const RunFolder& run) {
  if (run.finished) return "finished";
  if (!run.metrics.last_launch_ended) return "running or interrupted";
  const auto& s = run.metrics.summary;
  return !s.empty() && s.back().stopped_early ? "stopped early (resumable)" : "incomplete";
}

Table model_table(const std::vector<RunFolder>& runs) {
  Table t{{"Run", "Attention", "Parameters", "Active parameters", "KV cache per token",
           "Attention FLOPs per token", "Training FLOPs per token"},
          {false, false, true, true, true, true, true},
          {}};
  for (const RunFolder& r : runs) {
    const ModelCounts& c = r.model.derived.counts;
    t.rows.push_back({r.name, attention_label(r.model.derived.attention),
                      human_count(static_cast<double>(c.total_params)),
                      human_count(static_cast<double>(c.active_params)),
                      human_bytes(static_cast<double>(r.model.kv_bytes_per_token)),
                      human_count(r.model.attention_flops_per_token),
                      human_count(r.model.derived.train_flops_per_token)});
  }
  return t;
}

Table results_table(const std::vector<RunFolder>& runs) {
  Table t{{"Run", "Steps", "Tokens", "Final val loss", "Best val loss", "Tokens/s", "MFU",
           "Peak memory", "Training time", "Status"},
          {false, true, true, true, true, true, true, true, true, false},
          {}};
  for (const RunFolder& r : runs) {
    const RunOutcome& o = r.outcome;
    t.rows.push_back({r.name, format("{}/{}", o.step, r.loaded.config.train.steps),
                      o.tokens_seen ? human_count(static_cast<double>(*o.tokens_seen)) : kDash,
                      loss_text(o.final_eval), loss_text(o.best_eval),
                      o.tokens_per_s && *o.tokens_per_s > 0 ? rate_text(*o.tokens_per_s) : kDash,
                      o.mfu ? fixed(*o.mfu * 100, 1) + "%" : kDash,
                      o.peak_memory_gib ? fixed(*o.peak_memory_gib, 2) + " GiB" : kDash,
                      o.time_s ? duration_text(*o.time_s) : kDash, status_text(r)});
  }
  return t;
}

// Per run, every key in which the runs differ: a confound shows at a glance.
Table differences_table(const std::vector<RunFolder>& runs,
                        const std::vector<KeyDifference>& diffs) {
  Table t{{"Run", "Differs in"}, {false, false}, {}};
  for (size_t i = 0; i < runs.size(); ++i) {
    std::vector<std::string> parts;
    for (const KeyDifference& d : diffs) {
      parts.push_back(d.key + "=" + (d.values[i].empty() ? "·" : d.values[i]));
    }
    t.rows.push_back({runs[i].name, join(parts, ", ")});
  }
  return t;
}

std::string interval_text(const Estimate& e, int decimals) {
  if (!e.low) return kDash;
  return "[" + fixed(*e.low, decimals) + ", " + fixed(*e.high, decimals) + "]";
}

std::string seeds_text(const std::vector<int64_t>& seeds) {
  std::vector<std::string> parts;
  for (int64_t s : seeds) parts.push_back(std::to_string(s));
  return join(parts, " ");
}

Table arms_table(const SeedAnalysis& a) {
  const bool tuned = !a.tuned_keys.empty();
  Table t{{"Treatment", "Seeds", "n", "Mean final val loss", "SD", "95% interval"},
          {false, false, true, true, true, true},
          {}};
  if (tuned) {
    t.header.insert(t.header.begin() + 1, "Tuned");
    t.numeric.insert(t.numeric.begin() + 1, false);
  }
  for (const Treatment& tr : a.treatments) {
    for (size_t k = 0; k < tr.arms.size(); ++k) {
      const Arm& arm = tr.arms[k];
      std::vector<std::string> row = {tr.name,
                                      seeds_text(arm.seeds),
                                      std::to_string(arm.loss.n),
                                      fixed(arm.loss.mean, 4),
                                      arm.loss.n > 1 ? fixed(arm.loss.sd, 4) : kDash,
                                      interval_text(arm.loss, 4)};
      if (tuned) row.insert(row.begin() + 1, arm.label + (k == tr.best ? " (best)" : ""));
      t.rows.push_back(row);
    }
  }
  return t;
}

std::string verdict(const SeedAnalysis& a, const Comparison& c) {
  if (!c.difference.low) return "not established (needs ≥2 seeds per arm)";
  if (!c.difference.excludes_zero()) return "not established (interval includes 0)";
  const Treatment& lower = c.difference.mean < 0 ? a.treatments[c.b] : a.treatments[c.a];
  return "real: " + lower.name + " lower";
}

Table comparisons_table(const SeedAnalysis& a) {
  Table t{{"Difference", "Mean", "95% interval", "Seeds", "Verdict"},
          {false, true, true, false, false},
          {}};
  for (const Comparison& c : a.comparisons) {
    const Treatment& x = a.treatments[c.a];
    const Treatment& y = a.treatments[c.b];
    t.rows.push_back({y.name + " − " + x.name, fixed(c.difference.mean, 4),
                      interval_text(c.difference, 4), c.paired ? "paired" : "unpaired (Welch)",
                      verdict(a, c)});
  }
  return t;
}

std::string seeds_notes(const SeedAnalysis& a) {
  std::string out =
      "Final validation loss per arm (runs identical but for train.seed): mean, sample SD and "
      "the 95% interval of the mean (Student's t).";
  if (!a.tuned_keys.empty()) {
    out += " Tuned: " + join(a.tuned_keys, ", ") +
           "; each treatment is compared at its best arm, chosen on these same runs (which "
           "favours every treatment alike).";
  }
  out +=
      " A difference is called real only when its interval excludes 0; paired by seed when "
      "both arms ran the same seeds.";
  if (a.fewest_seeds > 0 && a.fewest_seeds < 3) {
    out += " Some arm has fewer than 3 seeds: not a result.";
  }
  if (!a.excluded.empty()) out += " Not counted: " + join(a.excluded, "; ") + ".";
  return out;
}

std::string markdown_table(const Table& t) {
  const auto cell = [](std::string text) {
    for (size_t at = text.find('|'); at != std::string::npos; at = text.find('|', at + 2)) {
      text.replace(at, 1, "\\|");
    }
    return text;
  };
  std::string out = "|";
  for (const std::string& h : t.header) out += " " + cell(h) + " |";
  out += "\n|";
  for (bool numeric : t.numeric) out += numeric ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (const std::string& c : row) out += " " + cell(c) + " |";
    out += "\n";
  }
  return out;
}

std::string html_table(const Table& t) {
  std::string out = "<table>\n<tr>";
  for (const std::string& h : t.header) out += "<th>" + xml_escape(h) + "</th>";
  out += "</tr>\n";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      out += t.numeric[i] ? "<td class=\"n\">" : "<td>";
      out += xml_escape(row[i]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

struct NamedPlot {
  std::string file;
  LinePlot plot;
};

// Wall time in the unit that keeps tick labels short.
std::pair<double, std::string> time_unit(const std::vector<RunFolder>& runs) {
  double longest = 0;
  for (const RunFolder& r : runs) {
    for (const EvalRecord& e : r.metrics.eval) longest = std::max(longest, e.time_s.value_or(0));
  }
  if (longest > 3 * 3600) return {3600, "hours"};
  if (longest > 5 * 60) return {60, "minutes"};
  return {1, "seconds"};
}

std::vector<NamedPlot> make_plots(const std::vector<RunFolder>& runs) {
  const auto [divisor, unit] = time_unit(runs);
  LinePlot tokens{
      "Validation loss", "tokens seen", "validation loss", TickStyle::count, {}, {}, 0.0};
  LinePlot time{"Validation loss over training time",
                "training time (" + unit + ")",
                "validation loss",
                TickStyle::number,
                {},
                {},
                0.0};
  LinePlot train{"Training loss", "tokens seen", "training loss", TickStyle::count, {}, {}, 0.0};
  double last_tokens = 0;
  for (const RunFolder& r : runs) {
    PlotSeries by_tokens{r.name, {}}, by_time{r.name, {}}, training{r.name, {}};
    for (const EvalRecord& e : r.metrics.eval) {
      if (e.tokens_seen)
        by_tokens.points.push_back({static_cast<double>(*e.tokens_seen), e.val_loss});
      if (e.time_s) by_time.points.push_back({*e.time_s / divisor, e.val_loss});
    }
    for (const TrainRecord& t : r.metrics.train) {
      if (t.tokens_seen) training.points.push_back({static_cast<double>(*t.tokens_seen), t.loss});
    }
    if (!by_tokens.points.empty()) last_tokens = std::max(last_tokens, by_tokens.points.back().x);
    tokens.series.push_back(std::move(by_tokens));
    time.series.push_back(std::move(by_time));
    train.series.push_back(std::move(training));
  }
  // The second half of training, where the variants' differences are visible at all.
  LinePlot zoom = tokens;
  zoom.title = "Validation loss, second half of training";
  zoom.x_min = last_tokens / 2;
  return {{"val_loss_tokens.svg", tokens},
          {"val_loss_tokens_zoom.svg", zoom},
          {"val_loss_time.svg", time},
          {"train_loss_tokens.svg", train}};
}

Json optional_json(const std::optional<double>& v) {
  return v ? Json(*v) : Json();
}

Json run_json(const RunFolder& r) {
  const RunOutcome& o = r.outcome;
  Json::Object j;
  j["name"] = r.name;
  j["dir"] = r.dir;
  j["attention"] = attention_label(r.model.derived.attention);
  j["params_total"] = r.model.derived.counts.total_params;
  j["params_active"] = r.model.derived.counts.active_params;
  j["kv_bytes_per_token"] = r.model.kv_bytes_per_token;
  j["attention_flops_per_token"] = r.model.attention_flops_per_token;
  j["training_flops_per_token"] = r.model.derived.train_flops_per_token;
  j["train_steps"] = r.loaded.config.train.steps;
  j["step"] = o.step;
  j["tokens_seen"] = o.tokens_seen ? Json(*o.tokens_seen) : Json();
  j["time_s"] = optional_json(o.time_s);
  j["final_val_loss"] = o.final_eval ? Json(o.final_eval->val_loss) : Json();
  j["final_val_step"] = o.final_eval ? Json(o.final_eval->step) : Json();
  j["best_val_loss"] = o.best_eval ? Json(o.best_eval->val_loss) : Json();
  j["best_val_step"] = o.best_eval ? Json(o.best_eval->step) : Json();
  j["tokens_per_s"] = optional_json(o.tokens_per_s);
  j["mfu"] = optional_json(o.mfu);
  j["peak_memory_gib"] = optional_json(o.peak_memory_gib);
  j["finished"] = r.finished;
  return Json(std::move(j));
}

const char* const kNotes =
    "Parameters are exact for the model cca-train builds (active: per token, MoE top-k plus "
    "shared experts). KV cache: bf16 bytes cached per token over all layers (MLA: latent plus "
    "RoPE key; CCA/CCGQA add a small constant per-sequence conv state, not counted). Attention "
    "FLOPs: forward, all layers, per token at train.seq_len with causal masking (projections, "
    "convolutions, scores and values). Training FLOPs: 3 × forward of the whole model, what MFU "
    "counts. Tokens/s and MFU are the latest launch's own measurement (after its first step, "
    "without evaluations and checkpoints); training time excludes evaluation, checkpoints and "
    "start-up, summed over resumes.";

// What the report says about the runs as a set.
struct Analysis {
  std::vector<KeyDifference> diffs;
  SeedAnalysis seeds;
};

// The sections after Results, as (heading, table, notes); empty tables are left out.
struct Section {
  std::string heading;
  Table table;
  std::string notes;
};

std::vector<Section> analysis_sections(const std::vector<RunFolder>& runs, const Analysis& a) {
  std::vector<Section> sections;
  if (!a.diffs.empty()) {
    sections.push_back({"Differences between runs", differences_table(runs, a.diffs),
                        "Every config key whose value is not the same in all runs (run.* "
                        "aside); · marks a key of another attention variant."});
  }
  if (!a.seeds.treatments.empty()) {
    sections.push_back({"Seeds and intervals", arms_table(a.seeds), seeds_notes(a.seeds)});
  }
  if (!a.seeds.comparisons.empty()) {
    sections.push_back({"Pairwise differences", comparisons_table(a.seeds),
                        "Final validation loss, later treatment minus earlier, each at its best "
                        "arm: negative means the first named is better."});
  }
  return sections;
}

std::string markdown(const std::vector<RunFolder>& runs, const Analysis& a,
                     const std::vector<NamedPlot>& plots, const std::string& title) {
  std::string out = "# " + title + "\n\n";
  std::vector<std::string> dirs;
  for (const RunFolder& r : runs) dirs.push_back("`" + r.dir + "`");
  out += format("{} runs: {}.\n\n## Models\n\n", runs.size(), join(dirs, ", "));
  out += markdown_table(model_table(runs)) + "\n" + kNotes + "\n\n## Results\n\n";
  out += markdown_table(results_table(runs)) + "\n";
  for (const Section& section : analysis_sections(runs, a)) {
    out += "## " + section.heading + "\n\n" + markdown_table(section.table) + "\n" + section.notes +
           "\n\n";
  }
  out += "## Plots\n\n";
  for (const NamedPlot& p : plots) out += format("![{}]({})\n\n", p.plot.title, p.file);
  return out;
}

std::string html(const std::vector<RunFolder>& runs, const Analysis& a,
                 const std::vector<std::string>& svgs, const std::string& title) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      xml_escape(title) +
      "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:1200px}\n"
      "table{border-collapse:collapse;margin:1em 0}\nth,td{border:1px solid #ccc;padding:4px 8px}\n"
      "th{background:#f3f3f3}\ntd.n{text-align:right;font-variant-numeric:tabular-nums}\n"
      "p.notes{color:#555;font-size:90%}\n</style>\n</head>\n<body>\n";
  out += "<h1>" + xml_escape(title) + "</h1>\n<h2>Models</h2>\n" + html_table(model_table(runs));
  out += "<p class=\"notes\">" + xml_escape(kNotes) + "</p>\n<h2>Results</h2>\n";
  out += html_table(results_table(runs));
  for (const Section& section : analysis_sections(runs, a)) {
    out += "<h2>" + xml_escape(section.heading) + "</h2>\n" + html_table(section.table) +
           "<p class=\"notes\">" + xml_escape(section.notes) + "</p>\n";
  }
  out += "<h2>Plots</h2>\n";
  for (const std::string& svg : svgs) {
    out += "<figure>\n" + svg.substr(svg.find("<svg")) + "</figure>\n";  // no XML declaration
  }
  return out + "</body>\n</html>\n";
}

Json estimate_json(const Estimate& e) {
  Json::Object j;
  j["n"] = e.n;
  j["mean"] = e.mean;
  j["sd"] = e.n > 1 ? Json(e.sd) : Json();
  j["low"] = e.low ? Json(*e.low) : Json();
  j["high"] = e.high ? Json(*e.high) : Json();
  return Json(std::move(j));
}

Json analysis_json(const SeedAnalysis& a) {
  Json::Array treatments;
  for (const Treatment& t : a.treatments) {
    Json::Array arms;
    for (const Arm& arm : t.arms) {
      Json::Object j;
      j["tuned"] = arm.label;
      Json::Array seeds, losses;
      for (int64_t s : arm.seeds) seeds.push_back(Json(s));
      for (double l : arm.losses) losses.push_back(Json(l));
      j["seeds"] = Json(std::move(seeds));
      j["final_val_losses"] = Json(std::move(losses));
      j["final_val_loss"] = estimate_json(arm.loss);
      arms.push_back(Json(std::move(j)));
    }
    Json::Object j;
    j["name"] = t.name;
    j["best_arm"] = static_cast<int64_t>(t.best);
    j["arms"] = Json(std::move(arms));
    treatments.push_back(Json(std::move(j)));
  }
  Json::Array comparisons;
  for (const Comparison& c : a.comparisons) {
    Json::Object j;
    j["a"] = a.treatments[c.a].name;
    j["b"] = a.treatments[c.b].name;
    j["paired"] = c.paired;
    j["b_minus_a"] = estimate_json(c.difference);
    j["real"] = c.difference.excludes_zero();
    comparisons.push_back(Json(std::move(j)));
  }
  Json::Array tuned, excluded;
  for (const std::string& k : a.tuned_keys) tuned.push_back(Json(k));
  for (const std::string& e : a.excluded) excluded.push_back(Json(e));
  Json::Object j;
  j["tuned_keys"] = Json(std::move(tuned));
  j["treatments"] = Json(std::move(treatments));
  j["comparisons"] = Json(std::move(comparisons));
  j["excluded"] = Json(std::move(excluded));
  return Json(std::move(j));
}

Json differences_json(const std::vector<KeyDifference>& diffs) {
  Json::Object j;
  for (const KeyDifference& d : diffs) {
    Json::Array values;
    for (const std::string& v : d.values) values.push_back(v.empty() ? Json() : Json(v));
    j[d.key] = Json(std::move(values));
  }
  return Json(std::move(j));
}

// Mean final validation loss against the one tuned key, one line per treatment (log x for a
// learning rate); none when nothing or more than one key is tuned.
std::optional<NamedPlot> tuning_plot(const SeedAnalysis& a) {
  if (a.tuned_keys.size() != 1) return std::nullopt;
  const std::string& key = a.tuned_keys.front();
  const bool log_x = key == "optim.lr";
  LinePlot plot{"Final validation loss against " + key,
                key,
                "final validation loss (mean, 95% interval)",
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
    }
    plot.series.push_back(std::move(series));
  }
  return NamedPlot{"val_loss_" + key.substr(key.rfind('.') + 1) + ".svg", plot};
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error("report: cannot write '" + path + "'");
}

}  // namespace

ReportFiles write_report(const std::vector<RunFolder>& runs, const std::string& out_dir,
                         const std::string& title, const std::vector<std::string>& tune_keys) {
  files::make_directories(out_dir);
  const Analysis analysis{differing_keys(runs), analyse_seeds(runs, tune_keys)};
  ReportFiles written;
  std::vector<NamedPlot> plots = make_plots(runs);
  if (auto plot = tuning_plot(analysis.seeds)) plots.push_back(std::move(*plot));
  std::vector<std::string> svgs;
  for (const NamedPlot& p : plots) {
    svgs.push_back(render_svg(p.plot));
    written.plots.push_back(files::join(out_dir, p.file));
    write_text(written.plots.back(), svgs.back());
  }
  written.markdown = files::join(out_dir, "report.md");
  written.html = files::join(out_dir, "report.html");
  written.json = files::join(out_dir, "report.json");
  write_text(written.markdown, markdown(runs, analysis, plots, title));
  write_text(written.html, html(runs, analysis, svgs, title));
  Json::Array list;
  for (const RunFolder& r : runs) list.push_back(run_json(r));
  Json::Object root;
  root["title"] = title;
  root["runs"] = Json(std::move(list));
  root["differences"] = differences_json(analysis.diffs);
  root["seeds"] = analysis_json(analysis.seeds);
  write_text(written.json, Json(std::move(root)).dump(2) + "\n");
  return written;
}

std::string default_report_dir(const std::vector<std::string>& arguments,
                               const std::vector<std::string>& run_dirs) {
  if (arguments.size() == 1) {
    std::string dir = arguments.front();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
  }
  std::string parent = run_dirs.empty() ? "" : files::parent_path(run_dirs.front());
  for (const std::string& dir : run_dirs) {
    if (files::parent_path(dir) != parent) {
      throw Error("report: the run folders have no common parent folder; say where with --out");
    }
  }
  return parent.empty() ? "." : parent;
}

}  // namespace cca::sweep
