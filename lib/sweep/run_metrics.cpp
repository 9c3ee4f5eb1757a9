#include "sweep/run_metrics.h"

#include <algorithm>
#include <map>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

std::optional<double> optional_double(const Json& record, const std::string& key) {
  const Json* value = record.find(key);
  if (value == nullptr || value->is_null()) return std::nullopt;
  return value->as_double(key);
}

std::optional<int64_t> optional_int(const Json& record, const std::string& key) {
  const Json* value = record.find(key);
  if (value == nullptr || value->is_null()) return std::nullopt;
  return value->as_int(key, 0);
}

double number(const Json& record, const std::string& key) {
  return record.at(key, "record").as_double(key);
}

// Records by step, so a step logged again by a later launch replaces the earlier record.
struct Collector {
  RunMetrics& out;
  std::map<int64_t, TrainRecord> train;
  std::map<int64_t, EvalRecord> eval;
  std::vector<int64_t> launch_steps;  // the step each surviving launch started at

  // A launch that continues from step k: whatever earlier launches logged after k is gone.
  void roll_back_to(int64_t step) {
    train.erase(train.upper_bound(step), train.end());
    eval.erase(eval.upper_bound(step), eval.end());
    auto& s = out.summary;
    s.erase(std::remove_if(s.begin(), s.end(), [&](const auto& r) { return r.step > step; }),
            s.end());
  }

  void add(const Json& record) {
    const std::string& kind = record.at("kind", "record").as_string("kind");
    if (kind != "start" && kind != "resume" && kind != "train" && kind != "eval" &&
        kind != "summary") {
      return;  // a newer trainer's record kind: not needed for reports
    }
    const int64_t step = record.at("step", "record").as_int("step", 0);
    if (kind == "start" || kind == "resume") {
      ++out.launches;
      out.last_launch_ended = false;
      roll_back_to(step);
      // A launch from a later step was rolled back wholly; one from the same step logged nothing.
      while (!launch_steps.empty() && launch_steps.back() >= step) launch_steps.pop_back();
      launch_steps.push_back(step);
    } else if (kind == "train") {
      train[step] = TrainRecord{step,
                                number(record, "loss"),
                                number(record, "tokens_per_s"),
                                number(record, "memory_gib"),
                                optional_double(record, "mfu"),
                                optional_int(record, "tokens_seen"),
                                optional_double(record, "time_s")};
    } else if (kind == "eval") {
      EvalRecord e{step,
                   number(record, "val_loss"),
                   optional_int(record, "tokens_seen"),
                   optional_double(record, "time_s"),
                   {}};
      const std::string prefix = "val_loss/";
      for (const auto& [key, value] : record.as_object("record")) {
        if (key.compare(0, prefix.size(), prefix) == 0) {
          e.set_losses[key.substr(prefix.size())] = value.as_double(key);
        }
      }
      eval[step] = std::move(e);
    } else {
      SummaryRecord s;
      s.step = step;
      s.tokens_per_s = number(record, "tokens_per_s");
      s.peak_memory_gib = number(record, "peak_memory_gib");
      s.stopped_early = record.at("stopped_early", "record").as_bool("stopped_early");
      s.val_loss = optional_double(record, "val_loss");
      s.mfu = optional_double(record, "mfu");
      s.tokens_seen = optional_int(record, "tokens_seen");
      s.time_s = optional_double(record, "time_s");
      out.summary.push_back(s);
      out.last_launch_ended = true;
    }
  }
};

// The launch's time at its start step: 0 at step 0, else a record logged at exactly that step
// (the checkpoint it resumed from); nullopt when there is none to measure from.
std::optional<double> time_at(const Collector& c, int64_t step) {
  if (step == 0) return 0.0;
  const auto t = c.train.find(step);
  if (t != c.train.end() && t->second.time_s) return t->second.time_s;
  const auto e = c.eval.find(step);
  if (e != c.eval.end() && e->second.time_s) return e->second.time_s;
  return std::nullopt;
}

// One launch's train records with time_s are [first, last): its warm-up is the first stretch's
// time beyond what the median step of the following stretches predicts.
std::optional<Warmup> launch_warmup(const std::vector<const TrainRecord*>& records,
                                    std::optional<double> start_time, int64_t start_step) {
  if (!start_time || records.size() < 2) return std::nullopt;
  std::vector<double> per_step;
  for (size_t i = 1; i < records.size() && per_step.size() < 21; ++i) {
    const int64_t steps = records[i]->step - records[i - 1]->step;
    per_step.push_back((*records[i]->time_s - *records[i - 1]->time_s) /
                       static_cast<double>(steps));
  }
  std::nth_element(per_step.begin(), per_step.begin() + per_step.size() / 2, per_step.end());
  const double typical = per_step[per_step.size() / 2];
  const TrainRecord& first = *records.front();
  const double expected = typical * static_cast<double>(first.step - start_step);
  return Warmup{first.step, std::max(0.0, *first.time_s - *start_time - expected)};
}

std::vector<Warmup> warmups(const Collector& c) {
  std::vector<Warmup> out;
  for (size_t i = 0; i < c.launch_steps.size(); ++i) {
    const int64_t start = c.launch_steps[i];
    const bool last = i + 1 == c.launch_steps.size();
    std::vector<const TrainRecord*> records;  // the launch's own: (start, next launch's start]
    for (auto it = c.train.upper_bound(start); it != c.train.end(); ++it) {
      if (!last && it->first > c.launch_steps[i + 1]) break;
      if (it->second.time_s) records.push_back(&it->second);
    }
    if (auto w = launch_warmup(records, time_at(c, start), start)) out.push_back(*w);
  }
  return out;
}

}  // namespace

double warmup_through(const RunMetrics& metrics, int64_t step) {
  double total = 0;
  for (const Warmup& w : metrics.warmups) {
    if (w.step <= step) total += w.seconds;
  }
  return total;
}

RunMetrics read_run_metrics(const std::string& path) {
  RunMetrics metrics;
  metrics.path = path;
  const std::string text = files::read_file(path, "metrics file");
  Collector collector{metrics, {}, {}, {}};
  for_each_nonblank_line(text, [&](std::string_view content, int64_t line) {
    try {
      collector.add(parse_json(content, "record"));
    } catch (const Error& e) {
      throw Error(format("{}:{}: {}", path, line, e.what()));
    }
  });
  for (auto& [step, record] : collector.train) metrics.train.push_back(record);
  for (auto& [step, record] : collector.eval) metrics.eval.push_back(record);
  metrics.warmups = warmups(collector);
  return metrics;
}

bool is_finished(const RunMetrics& metrics, int64_t steps) {
  return std::any_of(metrics.summary.begin(), metrics.summary.end(),
                     [&](const SummaryRecord& s) { return !s.stopped_early && s.step == steps; });
}

RunOutcome summarize(const RunMetrics& m) {
  RunOutcome o;
  // Progress: whichever record reached furthest (a summary may follow the last train record).
  const auto progress = [&](int64_t step, std::optional<int64_t> tokens, std::optional<double> t) {
    if (step < o.step) return;
    o.step = step;
    if (tokens) o.tokens_seen = tokens;
    if (t) o.time_s = t;
  };
  for (const TrainRecord& r : m.train) progress(r.step, r.tokens_seen, r.time_s);
  for (const EvalRecord& r : m.eval) progress(r.step, r.tokens_seen, r.time_s);
  for (const SummaryRecord& r : m.summary) progress(r.step, r.tokens_seen, r.time_s);
  o.warmup_s = warmup_through(m, o.step);
  if (o.time_s) o.time_s = std::max(0.0, *o.time_s - o.warmup_s);
  if (!m.eval.empty()) {
    o.final_eval = m.eval.back();
    o.best_eval = *std::min_element(m.eval.begin(), m.eval.end(), [](const auto& a, const auto& b) {
      return a.val_loss < b.val_loss;
    });
  }
  double peak = -1;
  for (const TrainRecord& r : m.train) peak = std::max(peak, r.memory_gib);
  for (const SummaryRecord& r : m.summary) peak = std::max(peak, r.peak_memory_gib);
  if (peak >= 0) o.peak_memory_gib = peak;
  if (!m.summary.empty()) {
    o.tokens_per_s = m.summary.back().tokens_per_s;
    o.mfu = m.summary.back().mfu;
    o.from_summary = true;
  } else if (!m.train.empty()) {
    o.tokens_per_s = m.train.back().tokens_per_s;
    o.mfu = m.train.back().mfu;
  }
  return o;
}

}  // namespace cca::sweep
