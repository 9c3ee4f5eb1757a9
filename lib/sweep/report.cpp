#include "sweep/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

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

// One curve per run and named validation set (data.val as a list): "<run>/<set>".
LinePlot per_set_plot(const std::vector<RunFolder>& runs) {
  LinePlot plot{
      "Validation loss per set", "tokens seen", "validation loss", TickStyle::count, {}, {}, 0.0};
  for (const RunFolder& r : runs) {
    std::map<std::string, PlotSeries> by_set;
    for (const EvalRecord& e : r.metrics.eval) {
      if (!e.tokens_seen) continue;
      for (const auto& [set, loss] : e.set_losses) {
        PlotSeries& series = by_set[set];
        series.name = r.name + "/" + set;
        series.points.push_back({static_cast<double>(*e.tokens_seen), loss});
      }
    }
    for (auto& [set, series] : by_set) plot.series.push_back(std::move(series));
  }
  return plot;
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
  std::vector<NamedPlot> plots = {{"val_loss_tokens.svg", tokens},
                                  {"val_loss_tokens_zoom.svg", zoom},
                                  {"val_loss_time.svg", time},
                                  {"train_loss_tokens.svg", train}};
  LinePlot sets = per_set_plot(runs);
  if (!sets.series.empty()) plots.push_back({"val_loss_sets_tokens.svg", std::move(sets)});
  return plots;
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

std::string markdown(const std::vector<RunFolder>& runs, const std::vector<NamedPlot>& plots,
                     const std::string& title) {
  std::string out = "# " + title + "\n\n";
  std::vector<std::string> dirs;
  for (const RunFolder& r : runs) dirs.push_back("`" + r.dir + "`");
  out += format("{} runs: {}.\n\n## Models\n\n", runs.size(), join(dirs, ", "));
  out += markdown_table(model_table(runs)) + "\n" + kNotes + "\n\n## Results\n\n";
  out += markdown_table(results_table(runs)) + "\n## Plots\n\n";
  for (const NamedPlot& p : plots) out += format("![{}]({})\n\n", p.plot.title, p.file);
  return out;
}

std::string html(const std::vector<RunFolder>& runs, const std::vector<std::string>& svgs,
                 const std::string& title) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      xml_escape(title) +
      "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:1200px}\n"
      "table{border-collapse:collapse;margin:1em 0}\nth,td{border:1px solid #ccc;padding:4px 8px}\n"
      "th{background:#f3f3f3}\ntd.n{text-align:right;font-variant-numeric:tabular-nums}\n"
      "p.notes{color:#555;font-size:90%}\n</style>\n</head>\n<body>\n";
  out += "<h1>" + xml_escape(title) + "</h1>\n<h2>Models</h2>\n" + html_table(model_table(runs));
  out += "<p class=\"notes\">" + xml_escape(kNotes) + "</p>\n<h2>Results</h2>\n";
  out += html_table(results_table(runs)) + "<h2>Plots</h2>\n";
  for (const std::string& svg : svgs) {
    out += "<figure>\n" + svg.substr(svg.find("<svg")) + "</figure>\n";  // no XML declaration
  }
  return out + "</body>\n</html>\n";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error("report: cannot write '" + path + "'");
}

}  // namespace

ReportFiles write_report(const std::vector<RunFolder>& runs, const std::string& out_dir,
                         const std::string& title) {
  files::make_directories(out_dir);
  ReportFiles written;
  const std::vector<NamedPlot> plots = make_plots(runs);
  std::vector<std::string> svgs;
  for (const NamedPlot& p : plots) {
    svgs.push_back(render_svg(p.plot));
    written.plots.push_back(files::join(out_dir, p.file));
    write_text(written.plots.back(), svgs.back());
  }
  written.markdown = files::join(out_dir, "report.md");
  written.html = files::join(out_dir, "report.html");
  written.json = files::join(out_dir, "report.json");
  write_text(written.markdown, markdown(runs, plots, title));
  write_text(written.html, html(runs, svgs, title));
  Json::Array list;
  for (const RunFolder& r : runs) list.push_back(run_json(r));
  Json::Object root;
  root["title"] = title;
  root["runs"] = Json(std::move(list));
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
