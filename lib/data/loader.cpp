#include "data/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "data/rng.h"
#include "util/error.h"
#include "util/format.h"
#include "util/hash.h"
#include "util/log.h"

namespace cca::data {

// --- LoaderState -----------------------------------------------------------------------------

std::string LoaderState::serialize() const {
  return format(
      "cca-loader-state 1 epoch={} shard={} position={}{} seed={} seq_len={} world_size={} "
      "fingerprint={}",
      epoch, shard, position, offset > 0 ? format(" offset={}", offset) : std::string(), seed,
      seq_len, world_size, hex64(fingerprint));
}

LoaderState LoaderState::for_world_size(int64_t new_world_size) const {
  if (new_world_size < 1) {
    throw Error(format("loader state: world size {} must be >= 1", new_world_size));
  }
  if (new_world_size == world_size) return *this;
  if (position > (INT64_MAX - offset) / world_size) {
    throw Error(
        format("loader state: position {} of world size {} is out of range", position, world_size));
  }
  LoaderState out = *this;
  const int64_t read = shard_windows_read();
  out.world_size = new_world_size;
  out.offset = read % new_world_size;
  out.position = read / new_world_size;
  return out;
}

namespace {

// The fields of version 1, in serialize()'s order ("offset" only when > 0).
const char* const kStateFields[] = {"epoch", "shard",   "position",   "offset",
                                    "seed",  "seq_len", "world_size", "fingerprint"};

// Every parse error: "loader state: <part>: <problem>" (loader.h).
[[noreturn]] void state_error(const std::string& part, const std::string& problem) {
  throw Error("loader state: " + part + ": " + problem);
}

// Text from the state as it goes into a message: cut to 40 characters, and bytes outside
// printable ASCII as \xNN, so a NUL cannot cut the message short and nothing garbles a terminal.
std::string shown(const std::string& text) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (const char c : text.substr(0, 40)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
    }
  }
  return out;
}

// A word of the text as a <part>: shown, in single quotes.
std::string quoted(const std::string& word) {
  return "'" + shown(word) + "'";
}

const std::string& field(const std::map<std::string, std::string>& fields, const std::string& key) {
  auto it = fields.find(key);
  if (it == fields.end()) state_error(key, "missing");
  return it->second;
}

int64_t parse_count(const std::map<std::string, std::string>& fields, const std::string& key,
                    int64_t min) {
  const std::string& text = field(fields, key);
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    state_error(
        key, format("{}={} is not a non-negative integer of at most 18 digits", key, shown(text)));
  }
  const int64_t value = std::stoll(text);
  if (value < min) state_error(key, format("{}={} must be >= {}", key, value, min));
  return value;
}

}  // namespace

LoaderState LoaderState::parse(const std::string& text) {
  std::istringstream in(text);
  std::string magic, version, word;
  in >> magic >> version;
  if (magic != "cca-loader-state") {
    state_error("magic", magic.empty() ? "empty text: not a cca loader state"
                                       : "not a cca loader state (starts with " + quoted(magic) +
                                             ", expected 'cca-loader-state')");
  }
  if (version != "1") {
    state_error("version", version.empty() ? "missing"
                                           : "unsupported version " + quoted(version) +
                                                 " (this build reads version 1)");
  }
  std::map<std::string, std::string> fields;
  while (in >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) state_error(quoted(word), "expected key=value");
    const std::string key = word.substr(0, eq);
    if (std::find(std::begin(kStateFields), std::end(kStateFields), key) ==
        std::end(kStateFields)) {
      std::string known;
      for (const char* name : kStateFields)
        known += (known.empty() ? "" : ", ") + std::string(name);
      state_error(quoted(word), "unknown fields are not allowed (known: " + known + ")");
    }
    const auto [it, added] = fields.emplace(key, word.substr(eq + 1));
    if (!added) {
      state_error(key, format("repeated {}={} after {}={}", key, shown(word.substr(eq + 1)), key,
                              shown(it->second)));
    }
  }
  LoaderState s;
  s.epoch = parse_count(fields, "epoch", 0);
  s.shard = parse_count(fields, "shard", 0);
  s.position = parse_count(fields, "position", 0);
  if (fields.count("offset") != 0) s.offset = parse_count(fields, "offset", 1);  // only when > 0
  s.seq_len = parse_count(fields, "seq_len", 1);
  s.world_size = parse_count(fields, "world_size", 1);
  const std::string& seed = field(fields, "seed");
  const bool digits = !seed.empty() && seed.size() <= 20 &&
                      seed.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  if (digits) s.seed = std::strtoull(seed.c_str(), nullptr, 10);
  if (!digits || errno == ERANGE) {
    state_error("seed", "seed=" + shown(seed) + " is not an integer in 0 .. 2^64 - 1");
  }
  if (!parse_hex64(field(fields, "fingerprint"), s.fingerprint)) {
    state_error("fingerprint", "fingerprint=" + shown(field(fields, "fingerprint")) +
                                   " is not 16 hexadecimal digits");
  }
  return s;
}

bool LoaderState::operator==(const LoaderState& o) const {
  return epoch == o.epoch && shard == o.shard && position == o.position && offset == o.offset &&
         seed == o.seed && seq_len == o.seq_len && world_size == o.world_size &&
         fingerprint == o.fingerprint;
}

// --- Cursor: the window sequence of one rank ---------------------------------------------------

class TrainLoader::Cursor {
 public:
  Cursor(const ShardSet& data, const LoaderOptions& options, const LoaderState& state)
      : data_(data), options_(options), state_(state) {}

  static int64_t windows_in(const MappedShard& shard, int64_t seq_len) {
    return shard.tokens() > seq_len ? (shard.tokens() - 1) / seq_len : 0;
  }
  // This rank's windows of a shard whose first `offset` permuted windows were read before (0
  // unless resharded mid-shard).
  int64_t per_rank(const MappedShard& shard, int64_t offset) const {
    const int64_t left = windows_in(shard, state_.seq_len) - offset;
    return left > 0 ? left / options_.world_size : 0;
  }

  // The shard and first token of the next window; advances.
  std::pair<const MappedShard*, int64_t> next() {
    for (;;) {
      ensure_epoch();
      if (state_.shard >= static_cast<int64_t>(order_.size())) {
        ++state_.epoch;
        state_.shard = 0;
        state_.position = 0;
        state_.offset = 0;
        continue;
      }
      ensure_shard();
      if (state_.position >= static_cast<int64_t>(windows_.size())) {
        ++state_.shard;
        state_.position = 0;
        state_.offset = 0;
        continue;
      }
      const int64_t window = windows_[static_cast<size_t>(state_.position++)];
      return {current_, window * state_.seq_len};
    }
  }

  const LoaderState& state() const { return state_; }

  // The windows of the state's shard at its sequence length, all ranks together (0 past the
  // epoch's last shard).
  int64_t shard_windows() {
    ensure_epoch();
    if (state_.shard >= static_cast<int64_t>(order_.size())) return 0;
    ensure_shard();
    return windows_in(*current_, state_.seq_len);
  }

  // Whether the next window opens a new epoch: every window of this one has been read.
  bool next_starts_epoch() {
    ensure_epoch();
    const auto shards = static_cast<int64_t>(order_.size());
    if (state_.shard >= shards) return true;
    ensure_shard();
    if (state_.position < static_cast<int64_t>(windows_.size())) return false;
    for (int64_t s = state_.shard + 1; s < shards; ++s) {
      if (per_rank(*data_.shards[order_[static_cast<size_t>(s)]], 0) > 0) return false;
    }
    return true;
  }

  // The rank-local window count of the shard the state points at (for validating a resume);
  // -1 when the state's offset lies past that shard's windows.
  int64_t windows_at_state() {
    ensure_epoch();
    if (state_.shard >= static_cast<int64_t>(order_.size())) return state_.offset > 0 ? -1 : 0;
    ensure_shard();
    if (state_.offset > windows_in(*current_, state_.seq_len)) return -1;
    return static_cast<int64_t>(windows_.size());
  }

 private:
  void ensure_epoch() {
    if (order_epoch_ == state_.epoch) return;
    const auto n = static_cast<uint32_t>(data_.shards.size());
    if (options_.shuffle) {
      Rng rng(state_.seed, static_cast<uint64_t>(state_.epoch), 0);
      order_ = permutation<uint32_t>(n, rng);
    } else {
      order_.resize(n);
      for (uint32_t i = 0; i < n; ++i) order_[i] = i;
    }
    order_epoch_ = state_.epoch;
    windows_epoch_ = -1;
  }

  void ensure_shard() {
    if (windows_epoch_ == state_.epoch && windows_shard_ == state_.shard) return;
    const uint32_t index = order_[static_cast<size_t>(state_.shard)];
    current_ = data_.shards[index].get();
    const auto total = static_cast<uint32_t>(windows_in(*current_, state_.seq_len));
    const int64_t offset = state_.offset;  // 0 unless resharded mid-shard
    const int64_t mine = per_rank(*current_, offset);
    std::vector<uint32_t> perm;
    if (options_.shuffle) {
      Rng rng(state_.seed, static_cast<uint64_t>(state_.epoch), uint64_t{index} + 1);
      perm = permutation<uint32_t>(total, rng);
    } else {
      perm.resize(total);
      for (uint32_t i = 0; i < total; ++i) perm[i] = i;
    }
    windows_.resize(static_cast<size_t>(mine));
    for (int64_t j = 0; j < mine; ++j) {
      windows_[static_cast<size_t>(j)] =
          perm[static_cast<size_t>(offset + j * options_.world_size + options_.rank)];
    }
    windows_epoch_ = state_.epoch;
    windows_shard_ = state_.shard;
  }

  const ShardSet& data_;
  const LoaderOptions& options_;
  LoaderState state_;
  std::vector<uint32_t> order_;
  int64_t order_epoch_ = -1;
  std::vector<uint32_t> windows_;  // this rank's windows of the current shard, in order
  const MappedShard* current_ = nullptr;
  int64_t windows_epoch_ = -1;
  int64_t windows_shard_ = -1;
};

// --- TrainLoader -----------------------------------------------------------------------------

namespace {

void check_options(const ShardSet& data, const LoaderOptions& o) {
  if (o.seq_len < 1 || o.seq_len > (int64_t{1} << 30)) {
    throw Error(format("sequence length {} is outside [1, 2^30]", o.seq_len));
  }
  if (o.batch_size < 1) throw Error(format("batch size {} must be >= 1", o.batch_size));
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    throw Error(format("rank {} of world size {} is invalid", o.rank, o.world_size));
  }
  if (o.prefetch < 0) throw Error("prefetch must be >= 0");
  if (data.shards.empty()) throw Error(format("{}: no shards", data.spec));
}

const SourcePosition* find_source(const MixtureState& state, const std::string& name) {
  for (const SourcePosition& p : state.sources) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string source_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// A saved mixture continues only over the same sources: weights may change, sources may not.
void check_sources_match(const MixtureState& saved, const std::vector<MixtureSource>& sources) {
  std::vector<std::string> have, want;
  for (const SourcePosition& p : saved.sources) have.push_back(p.name);
  for (const MixtureSource& s : sources) want.push_back(s.name);
  std::sort(have.begin(), have.end());
  std::sort(want.begin(), want.end());
  if (have != want) {
    throw Error(
        format("loader state was saved for the sources {} but data.train lists {}; a "
               "mixture resumes only over the same sources",
               source_names(have), source_names(want)));
  }
}

}  // namespace

struct TrainLoader::Source {
  std::string name;
  std::shared_ptr<const ShardSet> data;
  std::unique_ptr<Cursor> cursor;
  int64_t windows_per_epoch = 0;
};

TrainLoader::TrainLoader(std::shared_ptr<const ShardSet> data, LoaderOptions options,
                         const std::optional<LoaderState>& resume)
    : options_(options) {
  sources_.resize(1);
  sources_[0].data = std::move(data);
  start_source(sources_[0], resume, options_.seq_len);
  windows_per_epoch_ = sources_[0].windows_per_epoch;
  consumed_ = sources_[0].cursor->state();
  start_prefetch();
}

TrainLoader::TrainLoader(std::vector<MixtureSource> sources, MixtureOptions mixture,
                         LoaderOptions options, const std::optional<MixtureState>& resume)
    : mixture_(std::move(mixture)), options_(options) {
  if (sources.empty()) throw Error("a mixture needs at least one source");
  if (mixture_.stages.empty()) throw Error("a mixture needs at least one stage");
  for (const MixtureStage& stage : mixture_.stages) {
    if (stage.weights.size() != sources.size()) {
      throw Error(format("mixture stage '{}' has {} weights for {} sources", stage.name,
                         stage.weights.size(), sources.size()));
    }
  }
  std::optional<MixtureState> saved;
  if (resume) saved = resume->for_world_size(options_.world_size);
  if (saved) check_sources_match(*saved, sources);
  // A state saved exactly at a stage boundary still has the ending stage's sequence length: the
  // first batch of the next stage moves every source on (reseat_sources).
  const int64_t saved_stage = saved ? std::min<int64_t>(saved->stage, mixture_.stages.size() - 1)
                                    : stage_at(mixture_.stages, 0);
  const int64_t seq_len = stage_seq_len(static_cast<size_t>(saved_stage));
  sources_.resize(sources.size());
  mixture_position_.sources.resize(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    Source& source = sources_[i];
    source.name = sources[i].name;
    source.data = std::move(sources[i].shards);
    SourcePosition& position = mixture_position_.sources[i];
    position.name = source.name;
    std::optional<LoaderState> source_resume;
    if (saved) {
      const SourcePosition& from = *find_source(*saved, source.name);
      position.tokens = from.tokens;
      position.stage_tokens = from.stage_tokens;
      source_resume = from.state;
    }
    start_source(source, source_resume, seq_len);
    position.state = source.cursor->state();
  }
  // A source too short for a later stage's windows fails now, not part-way through the run.
  for (size_t stage = 0; stage < mixture_.stages.size(); ++stage) {
    for (const Source& source : sources_) windows_per_epoch_of(*source.data, stage_seq_len(stage));
  }
  if (saved) {
    mixture_position_.sequences = saved->sequences;
    mixture_position_.stage = saved->stage;
  }
  windows_per_epoch_ = sources_[0].windows_per_epoch;
  consumed_mixture_ = mixture_position_;
  start_prefetch();
}

// A source's own window order: a seed of its own (from train.seed and its name), so two sources
// over the same shards still differ, and one source's order does not depend on the others.
void TrainLoader::start_source(Source& source, const std::optional<LoaderState>& resume,
                               int64_t seq_len) {
  const ShardSet& data = *source.data;
  check_options(data, options_);
  source.windows_per_epoch = windows_per_epoch_of(data, seq_len);
  LoaderState start;
  start.seed = source.name.empty() ? options_.seed : splitmix64(options_.seed ^ xxh64(source.name));
  start.seq_len = seq_len;
  start.world_size = options_.world_size;
  start.fingerprint = data.fingerprint;
  if (resume) {
    // Another world size continues the same global stream (docs/distributed.md, resharding).
    const LoaderState r = resume->for_world_size(start.world_size);
    if (r.seq_len != start.seq_len) {
      throw Error(format("loader state was saved for seq_len {}, but this run has seq_len {}",
                         r.seq_len, start.seq_len));
    }
    if (r.fingerprint != start.fingerprint) {
      throw Error(
          format("{}: loader state was saved for other shards (fingerprint {}, these "
                 "shards have {})",
                 data.spec, hex64(r.fingerprint), hex64(start.fingerprint)));
    }
    start = r;
  }
  source.cursor = std::make_unique<Cursor>(data, options_, start);
  if (resume) {
    const bool shard_ok = start.shard <= static_cast<int64_t>(data.shards.size());
    if (!shard_ok || start.position > source.cursor->windows_at_state()) {
      throw Error(format("loader state points past the data (shard {}, position {}, offset {})",
                         start.shard, start.position, start.offset));
    }
  }
}

void TrainLoader::start_prefetch() {
  if (options_.prefetch > 0) worker_ = std::thread([this] { produce_loop(); });
}

TrainLoader::~TrainLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t TrainLoader::windows_per_epoch_of(const ShardSet& data, int64_t seq_len) const {
  int64_t windows = 0;
  for (const auto& shard : data.shards) {
    windows += Cursor::windows_in(*shard, seq_len) / options_.world_size;
  }
  if (windows == 0) {
    throw Error(
        format("{}: {} tokens in {} shard(s) give no sequence of {} + 1 tokens per rank "
               "(world size {}); use more data or a shorter seq_len",
               data.spec, data.tokens, data.shards.size(), seq_len, options_.world_size));
  }
  return windows;
}

int64_t TrainLoader::stage_seq_len(size_t stage) const {
  const int64_t seq_len = mixture_.stages[stage].seq_len;
  return seq_len > 0 ? seq_len : options_.seq_len;
}

// A source moving to another sequence length continues in the same epoch and shard, past the
// same share of the shard's tokens: the windows read so far, scaled by old / new length and
// rounded up, count as read in the new length's window order.
void TrainLoader::reseat_sources(int64_t seq_len) {
  for (Source& source : sources_) {
    const LoaderState& old = source.cursor->state();
    if (old.seq_len == seq_len) continue;
    LoaderState moved = old;
    moved.seq_len = seq_len;
    moved.offset = 0;
    moved.position = 0;
    const int64_t in_shard = Cursor(*source.data, options_, moved).shard_windows();
    const int64_t read =
        std::min((old.shard_windows_read() * old.seq_len + seq_len - 1) / seq_len, in_shard);
    moved.offset = read % old.world_size;
    moved.position = read / old.world_size;
    source.windows_per_epoch = windows_per_epoch_of(*source.data, seq_len);
    source.cursor = std::make_unique<Cursor>(*source.data, options_, moved);
  }
}

TrainLoader::Source& TrainLoader::next_source(Batch& batch) {
  MixtureState& m = mixture_position_;
  const int64_t stage = stage_at(mixture_.stages, m.sequences);
  if (stage != m.stage) {
    m.stage = stage;
    for (SourcePosition& p : m.sources) p.stage_tokens = 0;
  }
  std::vector<int64_t> stage_tokens;
  for (const SourcePosition& p : m.sources) stage_tokens.push_back(p.stage_tokens);
  const size_t index = pick_source(mixture_.stages[static_cast<size_t>(stage)], stage_tokens);
  Source& source = sources_[index];
  SourcePosition& position = m.sources[index];
  const int64_t tokens = batch.seq_len * options_.world_size;
  m.sequences += options_.world_size;
  position.tokens += tokens;
  position.stage_tokens += tokens;
  const int64_t epoch = source.cursor->state().epoch;
  if (source.cursor->next_starts_epoch()) {
    if (mixture_.on_exhausted == OnExhausted::error) {
      throw Error(format(
          "data.train source '{}' ({}) is exhausted: every window of its {} tokens was read once "
          "({} windows of {} + 1 tokens per rank); data.on_exhausted is error, so the run stops. "
          "Add data, lower its weight or set data.on_exhausted: wrap",
          source.name, source.data->spec, source.data->tokens, source.windows_per_epoch,
          batch.seq_len));
    }
    batch.wrapped.push_back(
        format("data        source '{}' read every window once: epoch {} "
               "starts in a new order ({} tokens drawn from it so far)",
               source.name, epoch + 1, position.tokens - tokens));
  }
  return source;
}

Batch TrainLoader::build_batch() {
  Batch b;
  b.batch_size = options_.batch_size;
  b.seq_len = options_.seq_len;
  if (is_mixture()) {
    // Stages start at step boundaries, so a batch lies within one stage.
    const auto stage = static_cast<size_t>(stage_at(mixture_.stages, mixture_position_.sequences));
    b.seq_len = stage_seq_len(stage);
    if (mixture_.stages[stage].batch_size > 0) b.batch_size = mixture_.stages[stage].batch_size;
    reseat_sources(b.seq_len);
  }
  const int64_t T = b.seq_len;
  b.inputs.resize(static_cast<size_t>(b.batch_size * T));
  b.targets.resize(b.inputs.size());
  for (int64_t i = 0; i < b.batch_size; ++i) {
    Source& source = is_mixture() ? next_source(b) : sources_[0];
    const auto [shard, start] = source.cursor->next();
    shard->copy(start, T, b.inputs.data() + i * T, source.data->vocab_size);
    shard->copy(start + 1, T, b.targets.data() + i * T, source.data->vocab_size);
  }
  if (is_mixture()) {
    for (size_t s = 0; s < sources_.size(); ++s) {
      mixture_position_.sources[s].state = sources_[s].cursor->state();
    }
    b.mixture = mixture_position_;
  } else {
    b.state = sources_[0].cursor->state();
  }
  return b;
}

void TrainLoader::produce_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(
          lock, [this] { return stop_ || queue_.size() < static_cast<size_t>(options_.prefetch); });
      if (stop_) return;
    }
    Batch b;
    try {
      b = build_batch();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      failure_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(b));
    }
    changed_.notify_all();
  }
}

Batch TrainLoader::next() {
  if (options_.prefetch == 0) {
    Batch b = build_batch();
    take_position(b);
    return b;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !queue_.empty() || failure_; });
  // Batches made before a failure are still delivered; the error comes when they run out.
  if (queue_.empty()) std::rethrow_exception(failure_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  changed_.notify_all();
  take_position(b);
  return b;
}

void TrainLoader::take_position(const Batch& batch) {
  if (is_mixture()) {
    consumed_mixture_ = batch.mixture;
    for (const std::string& line : batch.wrapped) log::info("{}", line);
  } else {
    consumed_ = batch.state;
  }
}

}  // namespace cca::data
