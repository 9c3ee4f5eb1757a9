#include "train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "util/error.h"
#include "util/format.h"

namespace cca {
namespace {

std::string rate_text(double per_second) {
  if (per_second >= 1e6) return format("{:.2f}M", per_second / 1e6);
  if (per_second >= 1e3) return format("{:.1f}k", per_second / 1e3);
  return format("{:.0f}", per_second);
}

}  // namespace

std::string render_step_line(const StepMetrics& m) {
  std::string step = std::to_string(m.step);
  const std::string total = std::to_string(m.total_steps);
  if (step.size() < total.size()) step.insert(0, total.size() - step.size(), ' ');
  std::string line = format("step {}/{} | loss {:.4f} | lr {:.2e} | gnorm {:.3f} | {} tok/s", step,
                            total, m.loss, m.lr, m.grad_norm, rate_text(m.tokens_per_s));
  if (m.mfu) line += format(" | MFU {:.1f}%", *m.mfu * 100.0);
  line += format(" | mem {:.2f} GiB | ETA {}", m.memory_gib, render_duration(m.eta_s));
  if (m.skipped_steps > 0) line += format(" | skipped {}", m.skipped_steps);
  if (!m.stage.empty()) line += " | stage " + m.stage;
  return line;
}

std::string render_eval_line(const EvalMetrics& m) {
  std::string line = format("eval step {}: val loss {:.4f}, ppl {:.2f} ({} tokens, {:.1f} s)",
                            m.step, m.val_loss, std::exp(m.val_loss), m.val_tokens, m.seconds);
  for (size_t i = 0; i < m.sets.size(); ++i) {
    line += format("{} {} {:.4f}", i == 0 ? ";" : ",", m.sets[i].name, m.sets[i].val_loss);
  }
  return line;
}

Json step_record(const StepMetrics& m) {
  Json::Object o;
  o["kind"] = "train";
  o["step"] = m.step;
  o["loss"] = m.loss;
  o["lr"] = m.lr;
  o["grad_norm"] = m.grad_norm;
  o["tokens_per_s"] = m.tokens_per_s;
  o["tokens_seen"] = m.tokens_seen;
  o["time_s"] = m.time_s;
  o["memory_gib"] = m.memory_gib;
  o["skipped_steps"] = m.skipped_steps;
  if (m.mfu) o["mfu"] = *m.mfu;
  for (const auto& [key, value] : m.extra) o[key] = value;
  if (!m.stage.empty()) {
    o["stage"] = m.stage;
    o["seq_len"] = m.stage_seq_len;
    o["tokens_per_step"] = m.stage_tokens_per_step;
  }
  for (const auto& [name, tokens] : m.source_tokens) o["tokens/" + name] = tokens;
  return Json(std::move(o));
}

Json eval_record(const EvalMetrics& m) {
  Json::Object o;
  o["kind"] = "eval";
  o["step"] = m.step;
  o["val_loss"] = m.val_loss;
  o["val_ppl"] = std::exp(m.val_loss);
  o["val_tokens"] = m.val_tokens;
  o["tokens_seen"] = m.tokens_seen;
  o["time_s"] = m.time_s;
  for (const EvalSetMetrics& set : m.sets) {
    o["val_loss/" + set.name] = set.val_loss;
    o["val_tokens/" + set.name] = set.val_tokens;
  }
  return Json(std::move(o));
}

std::vector<tensorboard::Scalar> tensorboard_scalars(const Json& record) {
  std::vector<tensorboard::Scalar> scalars;
  const Json* kind = record.find("kind");
  if (kind == nullptr || !kind->is_string()) return scalars;
  if (kind->as_string("kind") == "train") {
    for (const auto& [key, value] : record.as_object("record")) {
      if (key != "step" && value.type() == Json::Type::number) {
        scalars.push_back({"train/" + key, value.as_double(key)});
      }
    }
  } else if (kind->as_string("kind") == "eval") {
    scalars.push_back({"eval/loss", record.at("val_loss", "eval record").as_double("val_loss")});
    scalars.push_back({"eval/ppl", record.at("val_ppl", "eval record").as_double("val_ppl")});
    const std::string prefix = "val_loss/";
    for (const auto& [key, value] : record.as_object("record")) {
      if (key.compare(0, prefix.size(), prefix) == 0 && value.type() == Json::Type::number) {
        scalars.push_back({"eval/loss/" + key.substr(prefix.size()), value.as_double(key)});
      }
    }
  }
  return scalars;
}

MetricsFile::MetricsFile(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) {
    throw Error("cannot open metrics file '" + path + "' for appending: " + std::strerror(errno));
  }
}

MetricsFile::~MetricsFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsFile::write(const Json& record) {
  if (file_ == nullptr) return;
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw Error("cannot write metrics file '" + path_ + "': " + std::strerror(errno));
  }
}

}  // namespace cca
