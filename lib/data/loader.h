// The training loader: fixed-length sequences cut from memory-mapped shards in a deterministic,
// resumable order (the validation set: data/validation_set.h). Torch-free: batches are plain int32
// vectors that the trainer turns into tensors.
//
// Order (docs/data.md): each epoch permutes the shards (seeded by seed and epoch); within a shard
// the windows [w*T, w*T + T + 1) are permuted (seeded by seed, epoch and shard). Rank r of W takes
// the permuted windows r, r + W, r + 2W, ... of each shard, so ranks are disjoint and move in
// lockstep; a shard's last (windows mod W) permuted windows are left out that epoch. A state saved
// with another world size is resharded (LoaderState::for_world_size): the new ranks deal out the
// rest of the current shard from the first window not yet read (an `offset` into the shard).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/mixture.h"

namespace cca::data {

// Where a loader stands: the next window is `position` (counted in this rank's windows) of the
// `shard`-th shard in epoch `epoch`'s shard order. The permutations are pure functions of
// (seed, epoch, shard), so these numbers restore the stream exactly. Every rank of a run has the
// same state: rank r's next window is the shard's permuted window offset + position * W + r.
struct LoaderState {
  int64_t epoch = 0;
  int64_t shard = 0;
  int64_t position = 0;
  // Permuted windows of the current shard that were read before the ranks' split began: 0, except
  // after resuming with another world size mid-shard. The next shard starts at 0 again.
  int64_t offset = 0;
  uint64_t seed = 0;
  // What the positions mean: restoring against other data or geometry is an error.
  int64_t seq_len = 0;
  int64_t world_size = 1;
  uint64_t fingerprint = 0;

  // Windows of the current shard that the run's ranks have read together: offset + position * W.
  int64_t shard_windows_read() const { return offset + position * world_size; }
  // The same point of the global window stream for `world_size` ranks: nothing read is read
  // again, and the new ranks continue with the current shard's next unread window
  // (offset = read mod world_size, position = read / world_size). Unchanged for the same size.
  LoaderState for_world_size(int64_t world_size) const;

  // One line of text: "cca-loader-state 1 epoch=... shard=... ..." (with "offset=N" only when
  // N > 0, so states of runs that never resharded read as before).
  std::string serialize() const;
  // Accepts exactly what serialize() writes (fields in any order, numbers with leading zeros)
  // and returns a state whose fields are in range: epoch, shard, position, offset >= 0 (a written
  // offset >= 1), seq_len and world_size >= 1. Anything else throws cca::Error with the message
  //   "loader state: <part>: <problem>"
  // where <part> names what is wrong: "magic" (the text is not a loader state), "version", one
  // of the field names (missing, repeated, malformed or out of range), or a word of the
  // text in single quotes (not key=value, or an unknown field). Text quoted from the state is cut
  // to 40 characters, with bytes outside printable ASCII written as \xNN.
  static LoaderState parse(const std::string& text);
  bool operator==(const LoaderState& other) const;
  bool operator!=(const LoaderState& other) const { return !(*this == other); }
};

// Where one source of a mixture stands.
struct SourcePosition {
  std::string name;
  int64_t tokens = 0;        // input tokens read from it over all ranks since the run began
  int64_t stage_tokens = 0;  // the same since the current stage began
  LoaderState state;
};

// Where a mixture stands (lib/data/mixture.cpp). Every rank has the same state.
struct MixtureState {
  int64_t sequences = 0;  // sequences read over all ranks, from every source
  int64_t stage = 0;      // index into MixtureOptions::stages
  std::vector<SourcePosition> sources;

  // "cca-mixture-state 1 sequences=N stage=S", then one line per source:
  // "source=<name> tokens=N stage_tokens=M <its LoaderState>".
  std::string serialize() const;
  // Exactly what serialize() writes; anything else throws cca::Error "mixture state: ...".
  static MixtureState parse(const std::string& text);
  // True when `text` is a serialized MixtureState rather than a single dataset's LoaderState.
  static bool is_mixture(const std::string& text);
  // Every source's state for another world size (LoaderState::for_world_size).
  MixtureState for_world_size(int64_t world_size) const;
  bool operator==(const MixtureState& other) const;
  bool operator!=(const MixtureState& other) const { return !(*this == other); }
};

struct Batch {
  int64_t batch_size = 0;            // sequences
  int64_t seq_len = 0;               // tokens per sequence
  std::vector<int32_t> inputs;       // batch_size x seq_len, row-major
  std::vector<int32_t> targets;      // inputs shifted by one token
  LoaderState state;                 // the loader's state after this batch (one dataset)
  MixtureState mixture;              // the same for a mixture
  std::vector<std::string> wrapped;  // mixture sources that started over within this batch
};

struct LoaderOptions {
  int64_t seq_len = 1024;
  int64_t batch_size = 8;  // sequences per batch (the micro-batch)
  uint64_t seed = 1337;
  int64_t rank = 0;
  int64_t world_size = 1;
  int prefetch = 4;     // batches a background thread prepares ahead; 0 = none
  bool shuffle = true;  // false: shards and windows in file order (for debugging)
};

class TrainLoader {
 public:
  // Starts at epoch 0, or exactly where `resume` left off (its seed replaces options.seed). A
  // state saved with another world size is resharded with LoaderState::for_world_size.
  TrainLoader(std::shared_ptr<const ShardSet> data, LoaderOptions options,
              const std::optional<LoaderState>& resume = std::nullopt);
  // A weighted mixture (mixture.h): every sequence from the source the schedule picks, each
  // source in its own seeded window order. A resumed state must name the same sources (in any
  // order) over the same data; weights and stages may change. A stage of its own seq_len (and
  // batch size) moves every source to windows of that length at its first batch
  // (reseat_sources); a saved state's windows must be of the length of its stage.
  TrainLoader(std::vector<MixtureSource> sources, MixtureOptions mixture, LoaderOptions options,
              const std::optional<MixtureState>& resume = std::nullopt);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader(TrainLoader&&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // The next batch; rethrows here anything the prefetch thread hit (e.g. a bad token).
  Batch next();
  // The state after the last batch next() returned: save it with a checkpoint.
  LoaderState state() const { return consumed_; }
  // For a mixture: the same, and the sources' order and names.
  const MixtureState& mixture_state() const { return consumed_mixture_; }
  bool is_mixture() const { return !mixture_.stages.empty(); }
  // Windows each rank reads per epoch (of the first source, for a mixture).
  int64_t windows_per_epoch() const { return windows_per_epoch_; }

 private:
  class Cursor;
  struct Source;
  void start_source(Source& source, const std::optional<LoaderState>& resume, int64_t seq_len);
  // This rank's windows of `seq_len` + 1 tokens per epoch; throws when there are none.
  int64_t windows_per_epoch_of(const ShardSet& data, int64_t seq_len) const;
  // A mixture stage's sequence length (its own, or LoaderOptions').
  int64_t stage_seq_len(size_t stage) const;
  // Moves every source whose windows are of another length on to windows of `seq_len`.
  void reseat_sources(int64_t seq_len);
  void start_prefetch();
  Batch build_batch();
  // The source of the next sequence of a mixture; advances the mixture's counters.
  Source& next_source(Batch& batch);
  void produce_loop();
  // Takes the state after `batch` as the consumed one (and logs the sources that wrapped).
  void take_position(const Batch& batch);

  std::vector<Source> sources_;  // one for a single dataset
  MixtureOptions mixture_;       // no stages for a single dataset
  LoaderOptions options_;
  LoaderState consumed_;
  MixtureState mixture_position_;  // the producer's
  MixtureState consumed_mixture_;
  int64_t windows_per_epoch_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> queue_;
  std::exception_ptr failure_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace cca::data
