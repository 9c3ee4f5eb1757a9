// The trainer's data: one dataset or a weighted mixture with curriculum stages (data.train,
// data.stages), the validation sets (data.val, one or named), the loader (fresh or resumed) and
// what the console and metrics say about them (docs/data.md).
#include <ATen/ATen.h>

#include "config/data_sources.h"
#include "data/dataset.h"
#include "dist/parallelism.h"
#include "train/device_batch.h"
#include "train/evaluation.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

namespace cca {
namespace {

using Clock = std::chrono::steady_clock;

// Each source's weight in a stage, in data.train's order (a source the stage leaves out: 0).
std::vector<double> stage_weights(const DataStage& stage, const std::vector<DataSource>& sources) {
  std::vector<double> weights;
  for (const DataSource& source : sources) {
    double weight = 0;
    for (const DataSource& w : stage.weights) {
      if (w.name == source.name) weight = w.weight;
    }
    weights.push_back(weight);
  }
  return weights;
}

std::string weights_text(const std::vector<DataSource>& sources,
                         const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  std::string out;
  for (size_t i = 0; i < sources.size(); ++i) {
    out += format("{}{} {:.1f}%", out.empty() ? "" : ", ", sources[i].name,
                  100.0 * weights[i] / total);
  }
  return out;
}

}  // namespace

void Trainer::build_data() {
  const data::DatasetOptions open_options{config_.data.tokenizer, config_.model.vocab_size};
  tokens_per_step_ = config_.train.micro_batch_size * config_.train.grad_accum *
                     config_.train.seq_len * data_world_size();
  if (config_.data.train_sources.empty()) {
    train_shards_ = std::make_shared<const data::ShardSet>(
        data::open_shards(config_.data.train, "train", open_options));
    if (config_.data.document_masking) document_separator_ = document_separator(*train_shards_);
  } else {
    for (const DataSource& source : config_.data.train_sources) {
      train_sources_.push_back(
          {source.name, std::make_shared<const data::ShardSet>(
                            data::open_shards(source.path, "train", open_options))});
    }
    data::check_same_tokenizer(train_sources_, "data.train");  // so one separator for all
    if (config_.data.document_masking) {
      document_separator_ = document_separator(*train_sources_.front().shards);
    }
    log_mixture();
  }
  if (config_.data.val_tokens > 0) {
    for (const DataSource& set : validation_sources(config_.data)) {
      const data::ShardSet val = data::open_shards(set.path, "val", open_options);
      check_validation_separator(val);
      validation_sets_.push_back({set.name, std::make_unique<data::ValidationSet>(
                                                val, config_.data.val_tokens, config_.train.seq_len,
                                                rank(), world_size())});
    }
  }
  check_resumed_data_kind();
  phase_done("data");
}

// With data.document_masking, validation shards must separate documents as the training ones do.
void Trainer::check_validation_separator(const data::ShardSet& val) const {
  if (!document_separator_) return;
  const DocumentSeparator val_separator = document_separator(val);
  if (val_separator.token != document_separator_->token ||
      val_separator.opens_document != document_separator_->opens_document) {
    const data::ShardSet& train = train_shards_ ? *train_shards_ : *train_sources_.front().shards;
    throw Error("data.document_masking: the validation shards' manifest " + val.manifest_path +
                " separates documents otherwise than the training shards' " + train.manifest_path);
  }
}

// A checkpoint of one dataset continues only as one dataset, a mixture's only as a mixture.
void Trainer::check_resumed_data_kind() const {
  if (!resume_info_) return;
  const TrainProgress& resumed = resume_info_->progress;
  const bool mixture = !train_sources_.empty();
  if (resumed.mixture.has_value() == mixture || (!resumed.mixture && !resumed.loader)) return;
  throw Error(
      format("{}: the checkpoint's data position is for {}, but data.train is now {}; resume "
             "with the data.train the run was started with",
             resume_info_->path, resumed.mixture ? "a mixture of sources" : "one dataset",
             mixture ? "a mixture of sources" : "one dataset"));
}

// The mixture's sources, then its stages with their steps and token budgets, before training.
void Trainer::log_mixture() const {
  const std::vector<DataSource>& sources = config_.data.train_sources;
  for (size_t i = 0; i < sources.size(); ++i) {
    log::info("data        source '{}': {} ({} tokens)", sources[i].name, sources[i].path,
              human_count(static_cast<double>(train_sources_[i].shards->tokens)));
  }
  std::vector<DataStage> stages = config_.data.stages;
  if (stages.empty()) {
    DataStage all;
    all.start_step = 0;
    for (const DataSource& source : sources) all.weights.push_back(source);
    stages.push_back(all);
  }
  const std::vector<int64_t> starts = config_.data.stages.empty()
                                          ? std::vector<int64_t>{0}
                                          : stage_start_steps(config_, data_world_size());
  for (size_t i = 0; i < stages.size(); ++i) {
    const int64_t end = i + 1 < stages.size() ? starts[i + 1] : config_.train.steps;
    const int64_t per_step = stage_tokens_per_step(stages[i], config_, data_world_size());
    log::info("data        {}steps {}-{} ({} tokens; seq_len {}, {} tokens per step): {}",
              stages[i].name.empty() ? "" : format("stage '{}' ", stages[i].name), starts[i] + 1,
              end, human_count(static_cast<double>((end - starts[i]) * per_step)),
              stage_seq_len(stages[i], config_), per_step,
              weights_text(sources, stage_weights(stages[i], sources)));
  }
}

void Trainer::build_loader(const TrainProgress* resumed) {
  data::LoaderOptions options;
  options.seq_len = config_.train.seq_len;
  options.batch_size = config_.train.micro_batch_size;
  options.seed = static_cast<uint64_t>(config_.train.seed);
  options.prefetch = static_cast<int>(config_.data.prefetch);
  options.rank = data_rank();
  options.world_size = data_world_size();
  if (train_sources_.empty()) {
    loader_ = std::make_unique<data::TrainLoader>(
        train_shards_, options, resumed != nullptr ? resumed->loader : std::nullopt);
    return;
  }
  const std::vector<DataSource>& sources = config_.data.train_sources;
  data::MixtureOptions mix;
  mix.on_exhausted =
      config_.data.on_exhausted == "error" ? data::OnExhausted::error : data::OnExhausted::wrap;
  if (config_.data.stages.empty()) {
    std::vector<double> weights;
    for (const DataSource& source : sources) weights.push_back(source.weight);
    mix.stages.push_back({"", 0, weights});
  }
  stage_starts_ = stage_start_steps(config_, data_world_size());
  stage_tokens_per_step_.clear();
  // A stage starts after the earlier stages' steps, each of its own sequences per step.
  int64_t start_sequence = 0;
  for (size_t i = 0; i < config_.data.stages.size(); ++i) {
    const DataStage& stage = config_.data.stages[i];
    if (i > 0) {
      const DataStage& previous = config_.data.stages[i - 1];
      start_sequence += (stage_starts_[i] - stage_starts_[i - 1]) *
                        stage_micro_batch_size(previous, config_) * config_.train.grad_accum *
                        data_world_size();
    }
    stage_tokens_per_step_.push_back(stage_tokens_per_step(stage, config_, data_world_size()));
    mix.stages.push_back({stage.name, start_sequence, stage_weights(stage, sources),
                          stage_seq_len(stage, config_), stage_micro_batch_size(stage, config_)});
  }
  loader_ =
      std::make_unique<data::TrainLoader>(train_sources_, std::move(mix), options,
                                          resumed != nullptr ? resumed->mixture : std::nullopt);
}

int64_t Trainer::stage_at_step(int64_t step) const {
  int64_t index = 0;
  for (size_t i = 1; i < stage_starts_.size(); ++i) {
    if (stage_starts_[i] <= step) index = static_cast<int64_t>(i);
  }
  return index;
}

int64_t Trainer::tokens_per_step_at(int64_t step) const {
  if (stage_starts_.empty()) return tokens_per_step_;
  return stage_tokens_per_step_[static_cast<size_t>(stage_at_step(std::max<int64_t>(step, 0)))];
}

std::string Trainer::stage_name(int64_t step) const {
  if (stage_starts_.empty()) return "";
  return config_.data.stages[static_cast<size_t>(stage_at_step(std::max<int64_t>(step, 0)))].name;
}

void Trainer::announce_stage() {
  if (stage_starts_.empty()) return;
  const int64_t stage = stage_at_step(progress_.step);
  if (stage == announced_stage_) return;
  announced_stage_ = stage;
  const DataStage& s = config_.data.stages[static_cast<size_t>(stage)];
  if (progress_bar_) progress_bar_->clear();
  log::info("stage       '{}' ({}/{}) from step {}: seq_len {}, {} tokens per step; {}", s.name,
            stage + 1, stage_starts_.size(), progress_.step + 1, stage_seq_len(s, config_),
            stage_tokens_per_step_[static_cast<size_t>(stage)],
            weights_text(config_.data.train_sources, stage_weights(s, config_.data.train_sources)));
}

std::vector<std::pair<std::string, int64_t>> Trainer::source_tokens() const {
  std::vector<std::pair<std::string, int64_t>> tokens;
  if (!loader_ || !loader_->is_mixture()) return tokens;
  for (const data::SourcePosition& source : loader_->mixture_state().sources) {
    tokens.emplace_back(source.name, source.tokens);
  }
  return tokens;
}

void Trainer::log_source_tokens(const std::vector<std::pair<std::string, int64_t>>& tokens) const {
  int64_t total = 0;
  for (const auto& [name, count] : tokens) total += count;
  std::string text;
  for (const auto& [name, count] : tokens) {
    text +=
        format("{}{} {} ({:.1f}%)", text.empty() ? "" : ", ", name,
               human_count(static_cast<double>(count)),
               total > 0 ? 100.0 * static_cast<double>(count) / static_cast<double>(total) : 0.0);
  }
  if (!text.empty()) log::info("data        tokens per source: {}", text);
}

std::pair<double, int64_t> Trainer::validation_loss_sum(const data::ValidationSet& set) {
  EvalSetup setup;
  setup.device = device_;
  setup.precision = precision_;
  setup.batch_size = config_.train.micro_batch_size;
  setup.separator = document_separator_;
  setup.reset_positions = config_.data.reset_positions;
  ValidationSum sum = cca::validation_loss_sum(*model_, set, setup);
  // Each rank evaluated its share of the sequences (ValidationSet).
  parallelism_->sum_in_place(sum.loss_sum, "all-reduce of the validation loss");
  const int64_t tokens = parallelism_->sum(sum.tokens, "all-reduce of the validation token count");
  return {sum.loss_sum.item<double>(), tokens};
}

double Trainer::evaluate() {
  const Clock::time_point start = Clock::now();
  at::NoGradGuard no_grad;
  model_->eval();
  EvalMetrics metrics;
  double loss_sum = 0;
  for (const NamedValidation& v : validation_sets_) {
    const auto [sum, tokens] = validation_loss_sum(*v.set);
    if (!v.name.empty()) {
      metrics.sets.push_back(
          {v.name, sum / static_cast<double>(std::max<int64_t>(tokens, 1)), tokens});
    }
    loss_sum += sum;
    metrics.val_tokens += tokens;
  }
  model_->train();
  metrics.step = progress_.step;
  metrics.val_loss = loss_sum / static_cast<double>(std::max<int64_t>(metrics.val_tokens, 1));
  metrics.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  metrics.tokens_seen = progress_.tokens_seen;
  metrics.time_s = training_time() - metrics.seconds;
  if (progress_bar_) progress_bar_->clear();
  log::info("{}", render_eval_line(metrics));
  write_record(eval_record(metrics));
  eval_seconds_ += metrics.seconds;
  return metrics.val_loss;
}

}  // namespace cca
