// The typed configuration of one run. Members carry no defaults here: every key's type, default,
// range and help line is defined once, in schema.cpp, and `default_config()` applies them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/variant_settings.h"

namespace cca {

struct ModelConfig {
  int64_t d_model;
  int64_t n_layers;
  int64_t vocab_size;
  int64_t ffn_hidden;
  int64_t ffn_multiple_of;
  int64_t max_seq_len;
  double norm_eps;
  bool tie_embeddings;
  double init_std;
  bool depth_scaled_init;
  double z_loss;
};

struct AttentionConfig {
  std::string kind;
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
  bool qk_norm;
  double rope_theta;
  double rope_fraction;
  std::string rope_scaling;
  double rope_scaling_factor;
  int64_t rope_original_max_seq_len;
  std::string core;
  // The keys the variants declare for themselves (attention.mla.*, attention.cca.*, ...).
  VariantSettings settings;
};

struct MoeConfig {
  int64_t n_experts;
  int64_t top_k;
  int64_t expert_hidden;
  int64_t shared_experts;
  int64_t first_dense_layers;
  int64_t every;
  std::string score;
  bool renormalize;
  double aux_loss_coef;
  double z_loss_coef;
  double bias_update_rate;
};

// Muon (optim.kind: muon) for the hidden weight matrices; lib/optim/muon.h.
struct MuonConfig {
  double momentum;
  bool nesterov;
  int64_t ns_steps;
};

struct OptimConfig {
  std::string kind;
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  double grad_clip;
  bool decay_norms_and_biases;
  bool decay_embeddings;
  MuonConfig muon;
};

struct ScheduleConfig {
  std::string kind;
  int64_t warmup_steps;
  double min_lr_ratio;
  double decay_fraction;
  std::string decay_shape;
};

// One dataset of a mixture (data.train as a list), a named validation set (data.val as a list),
// or a source's weight within a stage (data.stages[].weights); lib/config/data_sources.h.
struct DataSource {
  std::string name;
  std::string path;     // a shard file, folder or glob; empty in a stage's weights
  double weight = 1.0;  // training sources and stages only
};

// A curriculum stage (data.stages): from `start_step` on, the sources are drawn at `weights`.
struct DataStage {
  std::string name;
  int64_t start_step = -1;    // one of the two is set (>= 0), the other is -1
  int64_t start_tokens = -1;  // starts at the first step after which this many tokens were seen
  std::vector<DataSource> weights;  // by source name, every source listed (0 = not drawn)
  int64_t seq_len = 0;              // 0 = train.seq_len
  // keep: micro_batch_size x seq_len as in train (micro-batch = that / seq_len); scale: the
  // micro-batch as in train. Empty = keep.
  std::string tokens_per_step;
};

struct DataConfig {
  // The training shards: the one dataset, or when data.train is a list, its first source's path
  // (every source shares its tokenizer, so tools that look for the manifest find one here).
  std::string train;
  std::vector<DataSource> train_sources;  // data.train as a list; empty for one dataset
  std::string val;                        // the same for the validation sets
  std::vector<DataSource> val_sources;
  std::vector<DataStage> stages;  // data.stages; empty = one stage, the data.train weights
  std::string on_exhausted;       // data.on_exhausted: wrap | error
  std::string tokenizer;
  int64_t val_tokens;
  int64_t prefetch;
  bool document_masking;
  bool reset_positions;
};

// train.precision: fp8 (docs/training.md#fp8).
struct Fp8Config {
  std::string scaling;  // tensor | row
};

struct TrainConfig {
  int64_t steps;
  int64_t seq_len;
  int64_t micro_batch_size;
  int64_t grad_accum;
  int64_t global_batch_size;
  int64_t seed;
  int64_t eval_every;
  std::string device;
  std::string precision;
  Fp8Config fp8;
  std::string nonfinite;
  int64_t max_consecutive_skips;
  bool activation_checkpointing;
  bool cuda_graphs;
};

struct CheckpointConfig {
  int64_t every;
  int64_t keep_last;
  int64_t keep_every;
  int64_t max_write_failures;
};

struct DistributedConfig {
  std::string backend;
  int64_t bucket_mb;
  double timeout_s;
  int64_t verify_every;
  bool zero1;
  int64_t context_parallel = 1;  // code that fills the struct by hand gets no context parallelism
};

struct LoggingConfig {
  std::string level;
  int64_t every;
  bool per_rank_files;
  bool progress_bar;
  double peak_tflops;
  bool tensorboard;
};

// Where a run's weights come from before step 0 (a fresh optimizer, step 0): a run folder, a
// checkpoint or a Hugging Face folder; "" = random initialisation.
struct InitConfig {
  std::string from;
};

struct RunConfig {
  std::string dir;
  std::string name;
};

struct Config {
  ModelConfig model;
  AttentionConfig attention;
  MoeConfig moe;
  OptimConfig optim;
  ScheduleConfig schedule;
  DataConfig data;
  TrainConfig train;
  CheckpointConfig checkpoint;
  DistributedConfig distributed;
  LoggingConfig logging;
  InitConfig init;
  RunConfig run;
};

// A Config with every key at its schema default.
Config default_config();

}  // namespace cca
