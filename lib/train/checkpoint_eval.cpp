#include "train/checkpoint_eval.h"

#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "checkpoint/checkpoint_store.h"
#include "config/loader.h"
#include "data/dataset.h"
#include "ops/device.h"
#include "sweep/run_metrics.h"
#include "train/device_batch.h"
#include "train/evaluation.h"
#include "train/warm_start.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {
namespace {

namespace store = checkpoint_store;

std::string complete_steps(const std::vector<store::Entry>& entries) {
  std::vector<std::string> steps;
  for (const store::Entry& e : entries) {
    if (e.complete) steps.push_back(std::to_string(e.step));
  }
  return steps.empty() ? "none" : join(steps, ", ");
}

int64_t parse_step(const std::string& text) {
  size_t used = 0;
  int64_t step = -1;
  try {
    step = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || step < 0) {
    throw Error("eval --checkpoint '" + text + "': expected a step number (0 or more) or latest");
  }
  return step;
}

// The checkpoint folder `which` names under run_dir/checkpoints, verified against its DONE.
std::string locate_checkpoint(const std::string& run_dir, const std::string& which) {
  const std::string root = files::join(run_dir, "checkpoints");
  const std::vector<store::Entry> entries = store::list(root);
  const store::Entry* chosen = nullptr;
  if (which == "latest") {
    for (const store::Entry& e : entries) {
      if (e.complete) chosen = &e;
    }
    if (chosen == nullptr) throw Error("eval: no complete checkpoint in " + root);
  } else {
    const int64_t step = parse_step(which);
    for (const store::Entry& e : entries) {
      if (e.complete && e.step == step) chosen = &e;
    }
    if (chosen == nullptr) {
      throw Error(
          format("eval --checkpoint {}: no complete checkpoint of step {} in {} (complete "
                 "checkpoints: steps {})",
                 which, step, root, complete_steps(entries)));
    }
  }
  const store::Verification check = store::verify(chosen->path);
  if (!check.usable()) {
    throw Error(format("eval: checkpoint {} is {}: {}", chosen->path,
                       store::status_name(check.status), join(check.problems, "; ")));
  }
  return chosen->path;
}

LoadedConfig load_run_config(const CheckpointEvalRequest& request) {
  if (!files::exists(request.run_dir)) {
    throw Error("eval: run folder '" + request.run_dir + "' does not exist");
  }
  const std::string path = files::join(request.run_dir, "config.yaml");
  if (!files::exists(path)) {
    throw Error("eval: '" + request.run_dir + "' is not a run folder (it has no config.yaml)");
  }
  LoadOptions options;
  options.overrides = request.overrides;
  if (!request.device.empty()) options.overrides.push_back("train.device=" + request.device);
  if (!request.precision.empty()) {
    options.overrides.push_back("train.precision=" + request.precision);
  }
  if (request.val_tokens) {
    options.overrides.push_back("data.val_tokens=" + std::to_string(*request.val_tokens));
  }
  LoadedConfig loaded = load_config(path, options);
  const DataConfig& data = loaded.config.data;
  if (validation_sources(data).empty() || data.val_tokens <= 0) {
    throw Error("eval: " + path +
                " has no validation data (data.val is empty or data.val_tokens is 0); name one "
                "with --set data.val=PATH and --val-tokens N");
  }
  return loaded;
}

at::Device eval_device(const std::string& requested) {
  if (requested == "cuda" && !cuda_available()) {
    throw Error(
        "eval --device cuda: no CUDA device is usable here (no driver or no visible GPU); use "
        "--device cpu");
  }
  return resolve_device(requested);
}

// Training took the separator from the training shards; so does the evaluation.
std::optional<DocumentSeparator> eval_separator(const Config& config) {
  if (!config.data.document_masking) return std::nullopt;
  const std::string& train = config.data.train_sources.empty()
                                 ? config.data.train
                                 : config.data.train_sources.front().path;
  const data::DatasetOptions options{config.data.tokenizer, config.model.vocab_size};
  return document_separator(data::open_shards(train, "train", options));
}

void add_recorded(const std::string& run_dir, CheckpointEvalResult& result) {
  const std::string path = files::join(run_dir, "metrics.jsonl");
  if (!files::exists(path)) return;
  for (const sweep::EvalRecord& record : sweep::read_run_metrics(path).eval) {
    if (record.step != result.step) continue;
    result.recorded_val_loss = record.val_loss;
    result.recorded_set_losses = record.set_losses;
  }
}

std::string signed_difference(double value) {
  return (value < 0 ? "-" : "+") + format("{:.3e}", std::abs(value));
}

}  // namespace

CheckpointEvalResult evaluate_checkpoint(const CheckpointEvalRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const LoadedConfig loaded = load_run_config(request);
  const Config& config = loaded.config;
  CheckpointEvalResult result;
  result.checkpoint = locate_checkpoint(request.run_dir, request.checkpoint);
  result.step = read_checkpoint_info(result.checkpoint).progress.step;

  EvalSetup setup;
  setup.device = eval_device(config.train.device);
  setup.precision =
      resolve_precision(config.train.precision, setup.device, config.train.fp8.scaling);
  setup.batch_size = config.train.micro_batch_size;
  setup.separator = eval_separator(config);
  setup.reset_positions = config.data.reset_positions;
  result.device = describe_device(setup.device);
  result.precision = setup.precision.short_name();

  at::manual_seed(static_cast<uint64_t>(config.train.seed));
  TransformerImpl model(config);
  const std::string weights = files::join(result.checkpoint, "model.safetensors");
  load_model_file(weights, model, "eval: checkpoint weights '" + weights + "'");
  model.to(setup.device);
  model.eval();
  at::NoGradGuard no_grad;

  const data::DatasetOptions open_options{config.data.tokenizer, config.model.vocab_size};
  double loss_sum = 0;
  for (const DataSource& source : validation_sources(config.data)) {
    const data::ValidationSet set(data::open_shards(source.path, "val", open_options),
                                  config.data.val_tokens, config.train.seq_len);
    const ValidationSum sum = validation_loss_sum(model, set, setup);
    const double set_sum = sum.loss_sum.item<double>();
    result.sets.push_back(
        {source.name, set_sum / static_cast<double>(std::max<int64_t>(sum.tokens, 1)), sum.tokens});
    loss_sum += set_sum;
    result.val_tokens += sum.tokens;
  }
  result.val_loss = loss_sum / static_cast<double>(std::max<int64_t>(result.val_tokens, 1));
  add_recorded(request.run_dir, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string render_checkpoint_eval(const CheckpointEvalResult& r) {
  std::string out =
      format("eval        {} (step {}) on {}, {}\n", r.checkpoint, r.step, r.device, r.precision);
  for (const EvalSetMetrics& set : r.sets) {
    if (set.name.empty()) continue;
    out += format("            set {:<12} val loss {:.6f} ({} tokens)", set.name, set.val_loss,
                  set.val_tokens);
    const auto recorded = r.recorded_set_losses.find(set.name);
    if (recorded != r.recorded_set_losses.end()) {
      out += format("; recorded {:.6f}, difference {}", recorded->second,
                    signed_difference(set.val_loss - recorded->second));
    }
    out += "\n";
  }
  out += format("            val loss {:.6f} (ppl {:.3f}, {} tokens, {:.1f} s)\n", r.val_loss,
                std::exp(r.val_loss), r.val_tokens, r.seconds);
  if (r.recorded_val_loss) {
    out +=
        format("            recorded val loss at step {}: {:.6f} (metrics.jsonl); difference {}\n",
               r.step, *r.recorded_val_loss, signed_difference(r.val_loss - *r.recorded_val_loss));
  } else {
    out += format("            metrics.jsonl has no val loss at step {}\n", r.step);
  }
  return out;
}

Json checkpoint_eval_json(const CheckpointEvalResult& r) {
  Json::Object o;
  o["checkpoint"] = r.checkpoint;
  o["step"] = r.step;
  o["device"] = r.device;
  o["precision"] = r.precision;
  o["val_loss"] = r.val_loss;
  o["val_ppl"] = std::exp(r.val_loss);
  o["val_tokens"] = r.val_tokens;
  o["seconds"] = r.seconds;
  o["recorded_val_loss"] = r.recorded_val_loss ? Json(*r.recorded_val_loss) : Json();
  o["difference"] = r.recorded_val_loss ? Json(r.val_loss - *r.recorded_val_loss) : Json();
  Json::Array sets;
  for (const EvalSetMetrics& set : r.sets) {
    Json::Object s;
    s["name"] = set.name;
    s["val_loss"] = set.val_loss;
    s["val_tokens"] = set.val_tokens;
    // data.val as one dataset: its record is the run's val_loss.
    std::optional<double> recorded = r.recorded_val_loss;
    if (!set.name.empty()) {
      const auto found = r.recorded_set_losses.find(set.name);
      recorded = found == r.recorded_set_losses.end() ? std::nullopt
                                                      : std::optional<double>(found->second);
    }
    s["recorded_val_loss"] = recorded ? Json(*recorded) : Json();
    s["difference"] = recorded ? Json(set.val_loss - *recorded) : Json();
    sets.emplace_back(std::move(s));
  }
  o["sets"] = Json(std::move(sets));
  return Json(std::move(o));
}

void check_eval_json_destination(const std::string& file, const std::string& run_dir) {
  std::string folder = files::parent_path(file);
  if (folder.empty()) folder = ".";
  files::make_directories(folder);
  const std::string run = files::canonical_path(run_dir);
  const std::string target = files::canonical_path(folder);
  if (!run.empty() && (target == run || target.rfind(run + "/", 0) == 0)) {
    throw Error("eval --json '" + file + "' is inside the run folder " + run_dir +
                ", which eval leaves untouched; write it elsewhere");
  }
}

void write_checkpoint_eval_json(const CheckpointEvalResult& result, const std::string& file,
                                const std::string& run_dir) {
  check_eval_json_destination(file, run_dir);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << checkpoint_eval_json(result).dump(2) << "\n";
  out.close();
  if (!out) throw Error("eval --json: cannot write '" + file + "'");
}

}  // namespace cca
