#include "sweep/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "sweep/arms.h"
#include "sweep/report_plots.h"
#include "sweep/report_table.h"
#include "sweep/svg_plot.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

constexpr const char* kDash = "—";

// Each run's name links to its config.yaml, relative to the report's folder.
std::vector<std::string> config_links(const std::vector<RunFolder>& runs, const std::string& out) {
  std::vector<std::string> links;
  for (const RunFolder& r : runs)
    links.push_back(relative_path(files::join(r.dir, "config.yaml"), out));
  return links;
}

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

std::string loss_text(const std::optional<EvalRecord>& e, bool with_step = true) {
  if (!e) return kDash;
  return with_step ? format("{} (step {})", fixed(e->val_loss, 4), e->step) : fixed(e->val_loss, 4);
}

// Whether the runs' last evaluations were at different steps (else the step says nothing).
bool final_steps_differ(const std::vector<RunFolder>& runs) {
  std::set<int64_t> steps;
  for (const RunFolder& r : runs)
    steps.insert(r.outcome.final_eval ? r.outcome.final_eval->step : -1);
  return steps.size() > 1;
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

// After the run's name, one column per config key in which the runs differ ("·": a key of
// another attention variant), so what was varied sits beside what came of it.
void insert_key_columns(Table& t, const std::vector<KeyDifference>& diffs) {
  for (size_t k = diffs.size(); k-- > 0;) {
    t.header.insert(t.header.begin() + 1, diffs[k].key);
    t.numeric.insert(t.numeric.begin() + 1, false);
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const std::string& v = diffs[k].values[i];
      t.rows[i].insert(t.rows[i].begin() + 1, v.empty() ? "·" : v);
    }
  }
}

Table model_table(const std::vector<RunFolder>& runs) {
  Table t{{"Run"}, {false}, {}, {}, {}};
  for (const char* h : {"Attention", "Parameters", "Active parameters", "KV cache per token",
                        "Attention FLOPs per token", "Training FLOPs per token"}) {
    t.header.push_back(h);
    t.numeric.push_back(std::string(h) != "Attention");
  }
  bool all_active = true;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunFolder& r = runs[i];
    const ModelCounts& c = r.model.derived.counts;
    std::vector<std::string> row = {r.name};
    for (const std::string& cell : {attention_label(r.model.derived.attention),
                                    human_count(static_cast<double>(c.total_params)),
                                    human_count(static_cast<double>(c.active_params)),
                                    human_bytes(static_cast<double>(r.model.kv_bytes_per_token)),
                                    human_count(r.model.attention_flops_per_token),
                                    human_count(r.model.derived.train_flops_per_token)}) {
      row.push_back(cell);
    }
    all_active = all_active && c.active_params == c.total_params;
    t.rows.push_back(std::move(row));
  }
  if (all_active) {  // no MoE: the column repeats Parameters
    drop_column(t, 3);
    t.remarks.push_back("Active parameters = parameters in every run (no MoE)");
  }
  drop_constant_columns(t);
  return t;
}

// Whether every run's best evaluation is its last: then Best repeats Final.
bool best_is_final(const std::vector<RunFolder>& runs) {
  return std::all_of(runs.begin(), runs.end(), [](const RunFolder& r) {
    const RunOutcome& o = r.outcome;
    return !o.final_eval || (o.best_eval && o.best_eval->step == o.final_eval->step);
  });
}

Table results_table(const std::vector<RunFolder>& runs) {
  Table t{{"Run", "Steps", "Tokens", "Final val loss", "Best val loss", "Tokens/s", "MFU",
           "Peak memory", "Training time", "Status"},
          {false, true, true, true, true, true, true, true, true, false},
          {},
          {},
          {}};
  for (const RunFolder& r : runs) {
    const RunOutcome& o = r.outcome;
    t.rows.push_back({r.name, format("{}/{}", o.step, r.loaded.config.train.steps),
                      o.tokens_seen ? human_count(static_cast<double>(*o.tokens_seen)) : kDash,
                      loss_text(o.final_eval, runs.size() == 1 || final_steps_differ(runs)),
                      loss_text(o.best_eval),
                      o.tokens_per_s && *o.tokens_per_s > 0 ? rate_text(*o.tokens_per_s) : kDash,
                      o.mfu ? fixed(*o.mfu * 100, 1) + "%" : kDash,
                      o.peak_memory_gib ? fixed(*o.peak_memory_gib, 2) + " GiB" : kDash,
                      o.time_s ? duration_text(*o.time_s) : kDash, status_text(r)});
  }
  if (runs.size() > 1 && !final_steps_differ(runs) && runs.front().outcome.final_eval) {
    t.remarks.push_back(
        format("Final val loss: at step {}", runs.front().outcome.final_eval->step));
  }
  if (runs.size() > 1 && best_is_final(runs)) {
    drop_column(t, 4);
    t.remarks.push_back("Best val loss = final val loss in every run (still falling at the end)");
  }
  drop_constant_columns(t);
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
  // The project's rule: a comparison is a result only with at least 3 seeds in both arms.
  const Treatment& ta = a.treatments[c.a];
  const Treatment& tb = a.treatments[c.b];
  const size_t seeds = std::min(ta.arms[ta.best].runs.size(), tb.arms[tb.best].runs.size());
  if (seeds < 3)
    return "suggestive: " + lower.name + " lower (interval excludes 0, but " +
           std::to_string(seeds) + " seeds; a result needs ≥3)";
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
  j["warmup_s"] = o.warmup_s;
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
    "without evaluations and checkpoints); training time excludes evaluation, checkpoints, "
    "start-up and each launch's warm-up (its first logged steps' time beyond its median step "
    "time), summed over resumes, as the time plot does.";

// What the report says about the runs as a set.
struct Analysis {
  std::vector<KeyDifference> diffs;
  SeedAnalysis seeds;
  std::vector<std::string> links;  // per run, its config.yaml relative to the report
};

// Per variant (treatment, at its best arm): the final validation loss over seeds and the
// difference from the baseline (the first variant), with their intervals: the report's answer.
Table summary_table(const SeedAnalysis& a) {
  const std::string& base = a.treatments.front().name;
  Table t{{"Variant", "Seeds", "Mean final val loss", "SD", "95% interval", "Δ vs " + base,
           "95% interval of Δ", "Verdict"},
          {false, false, true, true, true, true, true, false}};
  const bool tuned = !a.tuned_keys.empty();
  if (tuned) {
    t.header.insert(t.header.begin() + 1, "Best");
    t.numeric.insert(t.numeric.begin() + 1, false);
  }
  for (size_t k = 0; k < a.treatments.size(); ++k) {
    const Treatment& tr = a.treatments[k];
    const Arm& arm = tr.arms[tr.best];
    std::vector<std::string> row = {tr.name,
                                    seeds_text(arm.seeds),
                                    fixed(arm.loss.mean, 4),
                                    arm.loss.n > 1 ? fixed(arm.loss.sd, 4) : kDash,
                                    interval_text(arm.loss, 4),
                                    "baseline",
                                    kDash,
                                    kDash};
    for (const Comparison& c : a.comparisons) {
      if (k == 0 || c.a != 0 || c.b != k) continue;
      row[5] = (c.difference.mean > 0 ? "+" : "") + fixed(c.difference.mean, 4);
      row[6] = interval_text(c.difference, 4);
      row[7] = verdict(a, c);
    }
    if (tuned) row.insert(row.begin() + 1, arm.label);
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string summary_notes(const SeedAnalysis& a) {
  return seeds_notes(a) + " Δ: the variant's mean minus the baseline's (" +
         a.treatments.front().name + ", the first run's variant); negative is lower loss.";
}

// One heading of the report: a table with its notes, or (plots) the plots.
struct Section {
  std::string heading;
  Table table;
  std::string notes;
  bool plots = false;
};

std::string with_footnote(const std::string& notes, const Table& t) {
  const std::string note = footnote(t);
  return note.empty() ? notes : notes.empty() ? note : note + " " + notes;
}

// In reading order: the answer (summary and plots) first, then what it rests on.
std::vector<Section> sections(const std::vector<RunFolder>& runs, const Analysis& a) {
  std::vector<Section> out;
  if (!a.seeds.treatments.empty()) {
    out.push_back({"Summary by variant", summary_table(a.seeds), summary_notes(a.seeds)});
  }
  out.push_back({"Plots", {}, "", true});
  Table results = results_table(runs);
  insert_key_columns(results, a.diffs);
  results.links = a.links;
  const std::string keys_note =
      std::string("Each run's name links to its config.yaml.") +
      (a.diffs.empty() ? ""
                       : " After it: every config key whose value is not the same in all "
                         "runs (run.* aside; · marks a key of another attention variant).");
  out.push_back({"Results", results, with_footnote(keys_note, results)});
  Table models = model_table(runs);
  models.links = a.links;
  out.push_back({"Models", models, with_footnote(kNotes, models)});
  if (!a.seeds.comparisons.empty()) {
    out.push_back({"Pairwise differences", comparisons_table(a.seeds),
                   "Final validation loss, later treatment minus earlier, each at its best "
                   "arm: negative means the first named is better."});
  }
  if (!a.seeds.tuned_keys.empty()) {  // the summary shows only each treatment's best arm
    out.push_back({"Seeds and intervals", arms_table(a.seeds), seeds_notes(a.seeds)});
  }
  return out;
}

std::string markdown(const std::vector<RunFolder>& runs, const Analysis& a,
                     const std::vector<NamedPlot>& plots, const std::string& title) {
  std::string out = "# " + title + "\n\n";
  std::vector<std::string> dirs;
  for (const RunFolder& r : runs) dirs.push_back("`" + r.dir + "`");
  out += format("{} runs: {}.\n\n", runs.size(), join(dirs, ", "));
  for (const Section& section : sections(runs, a)) {
    out += "## " + section.heading + "\n\n";
    if (section.plots) {
      for (const NamedPlot& p : plots) out += format("![{}]({})\n\n", p.plot.title, p.file);
      continue;
    }
    out += markdown_table(section.table) + "\n";
    if (!section.notes.empty()) out += section.notes + "\n\n";
  }
  return out;
}

std::string html(const std::vector<RunFolder>& runs, const Analysis& a,
                 const std::vector<std::string>& svgs, const std::string& title) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      xml_escape(title) +
      "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:1400px}\n"
      "table{border-collapse:collapse;margin:1em 0}\nth,td{border:1px solid #ccc;padding:4px 8px}\n"
      "th{background:#f3f3f3}\ntd{white-space:nowrap}\ntd.n{text-align:right;font-variant-numeric:"
      "tabular-nums}\n"
      "p.notes{color:#555;font-size:90%}\nfigure{margin:1em 0}\n"
      "figure "
      "svg{display:block;width:100%;height:auto}\ndiv.wide{overflow-x:auto}\n</style>\n</"
      "head>\n<body>\n";
  out += "<h1>" + xml_escape(title) + "</h1>\n";
  for (const Section& section : sections(runs, a)) {
    out += "<h2>" + xml_escape(section.heading) + "</h2>\n";
    if (section.plots) {
      for (const std::string& svg : svgs) {
        out += "<figure>\n" + svg.substr(svg.find("<svg")) + "</figure>\n";  // no XML declaration
      }
      continue;
    }
    out += "<div class=\"wide\">\n" + html_table(section.table) + "</div>\n";
    if (!section.notes.empty()) out += "<p class=\"notes\">" + xml_escape(section.notes) + "</p>\n";
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
  const Analysis analysis{differing_keys(runs), analyse_seeds(runs, tune_keys),
                          config_links(runs, out_dir)};
  ReportFiles written;
  const std::vector<NamedPlot> plots =
      report_plots(runs, group_runs(runs, tune_keys), analysis.seeds);
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
