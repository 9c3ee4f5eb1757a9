// The loader: deterministic order, disjoint rank streams, exact resume (also with another world
// size), the fixed validation set, and the dataset checks (checksums, tokenizer, vocabulary) it
// runs on open.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/validation_set.h"
#include "data_test_util.h"
#include "util/hash.h"

namespace cca::data {
namespace {

namespace fs = std::filesystem;
using datatest::ScratchDir;
using datatest::write_file;

// Token values encode where they came from: shard s, position i -> s * 1000 + i.
constexpr int kTokensPerShardUnit = 1000;

std::vector<int32_t> located_tokens(int shard, int count) {
  std::vector<int32_t> t(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) t[static_cast<size_t>(i)] = shard * kTokensPerShardUnit + i;
  return t;
}

// Shards train_00000s.bin with the given token counts, plus a manifest unless told otherwise.
std::string make_dataset(const ScratchDir& dir, const std::vector<int>& counts,
                         bool with_manifest = true, const std::string& sub = "ds") {
  const std::string folder = dir / sub;
  fs::create_directories(folder);
  Manifest m;
  m.tokenizer_file = "tokenizer.model";
  write_file(folder + "/tokenizer.model", "stand-in tokenizer bytes");
  m.tokenizer_xxh64 = xxh64_file(folder + "/tokenizer.model");
  m.vocab_size = 65536;
  m.bos_id = 1;
  m.eos_id = 2;
  for (size_t s = 0; s < counts.size(); ++s) {
    const std::string name = "train_00000" + std::to_string(s) + ".bin";
    const auto r =
        datatest::write_shard(folder + "/" + name, located_tokens(static_cast<int>(s), counts[s]));
    m.train.shards.push_back({name, r.tokens, r.bytes, r.xxh64});
    m.train.tokens += r.tokens;
  }
  if (with_manifest) write_manifest(m, folder + "/manifest.json");
  return folder;
}

std::shared_ptr<const ShardSet> open(const std::string& spec, DatasetOptions options = {}) {
  return std::make_shared<const ShardSet>(open_shards(spec, "train", options));
}

LoaderOptions loader_options(int64_t seq_len, int64_t batch, uint64_t seed, int prefetch = 0) {
  LoaderOptions o;
  o.seq_len = seq_len;
  o.batch_size = batch;
  o.seed = seed;
  o.prefetch = prefetch;
  return o;
}

std::vector<std::vector<int32_t>> take(TrainLoader& loader, int batches) {
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < batches; ++i) {
    Batch b = loader.next();
    std::vector<int32_t> both = b.inputs;
    both.insert(both.end(), b.targets.begin(), b.targets.end());
    out.push_back(std::move(both));
  }
  return out;
}

// (shard, start) of every sequence in `batches` batches.
std::vector<std::pair<int, int>> windows_of(TrainLoader& loader, int batches) {
  std::vector<std::pair<int, int>> out;
  for (int i = 0; i < batches; ++i) {
    const Batch b = loader.next();
    for (int64_t r = 0; r < b.batch_size; ++r) {
      const int32_t first = b.inputs[static_cast<size_t>(r * b.seq_len)];
      out.emplace_back(first / kTokensPerShardUnit, first % kTokensPerShardUnit);
    }
  }
  return out;
}

TEST(Loader, BatchesAreShiftedWindows) {
  ScratchDir dir;
  TrainLoader loader(open(make_dataset(dir, {401, 301})), loader_options(10, 4, 1));
  for (int i = 0; i < 20; ++i) {
    const Batch b = loader.next();
    ASSERT_EQ(b.inputs.size(), 40u);
    for (int64_t r = 0; r < 4; ++r) {
      const int32_t* in = &b.inputs[static_cast<size_t>(r * 10)];
      const int32_t* tg = &b.targets[static_cast<size_t>(r * 10)];
      EXPECT_EQ(in[0] % kTokensPerShardUnit % 10, 0) << "windows start at multiples of seq_len";
      for (int t = 0; t < 10; ++t) ASSERT_EQ(tg[t], in[t] + 1);
    }
  }
}

TEST(Loader, SameSeedSameBatchesOtherSeedOtherOrder) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {500, 320, 640, 100}));
  TrainLoader a(data, loader_options(16, 3, 42));
  TrainLoader b(data, loader_options(16, 3, 42, /*prefetch=*/2));
  TrainLoader c(data, loader_options(16, 3, 43));
  const auto batches_a = take(a, 60);  // several epochs (~95 windows each)
  EXPECT_EQ(take(b, 60), batches_a);
  EXPECT_NE(take(c, 60), batches_a);
}

TEST(Loader, EachEpochReadsEveryWindowOnceInANewOrder) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {161, 81, 241}));  // 10 + 5 + 15 windows of 16
  TrainLoader loader(data, loader_options(16, 5, 9));
  EXPECT_EQ(loader.windows_per_epoch(), 30);
  const auto epoch0 = windows_of(loader, 6);
  const auto epoch1 = windows_of(loader, 6);
  std::set<std::pair<int, int>> all;
  for (int s = 0; s < 3; ++s) {
    for (int w = 0; w < std::vector<int>{10, 5, 15}[static_cast<size_t>(s)]; ++w)
      all.insert({s, w * 16});
  }
  using WindowSet = std::set<std::pair<int, int>>;
  EXPECT_EQ(WindowSet(epoch0.begin(), epoch0.end()), all);
  EXPECT_EQ(WindowSet(epoch1.begin(), epoch1.end()), all);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_EQ(loader.state().epoch, 1);
}

TEST(Loader, RanksAreDisjointAndTogetherCoverTheData) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {241, 481, 121}));  // 15 + 30 + 7 windows of 16
  constexpr int kWorld = 3;
  std::map<std::pair<int, int>, int> owner;
  for (int rank = 0; rank < kWorld; ++rank) {
    LoaderOptions o = loader_options(16, 1, 5);
    o.rank = rank;
    o.world_size = kWorld;
    TrainLoader loader(data, o);
    EXPECT_EQ(loader.windows_per_epoch(), 5 + 10 + 2);
    for (const auto& w : windows_of(loader, static_cast<int>(loader.windows_per_epoch()))) {
      EXPECT_TRUE(owner.emplace(w, rank).second) << "window read twice: shard " << w.first;
    }
    // Ranks move in lockstep: each has just read the last window of epoch 0.
    EXPECT_EQ(loader.state().epoch, 0);
    EXPECT_EQ(loader.state().shard, 2);
    EXPECT_EQ(loader.next().state.epoch, 1);
  }
  // Every window except the shard whose 7 windows leave one over for 3 ranks.
  EXPECT_EQ(owner.size(), 15u + 30u + 6u);
  int per_shard[3] = {0, 0, 0};
  for (const auto& [w, rank] : owner) ++per_shard[w.first];
  EXPECT_EQ(per_shard[0], 15);
  EXPECT_EQ(per_shard[1], 30);
  EXPECT_EQ(per_shard[2], 6);
}

void expect_exact_resume(int prefetch, int stop_after) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {330, 170, 250}));  // 14 + 7 + 10 = 31 windows of 23
  const LoaderOptions options = loader_options(23, 4, 77, prefetch);
  TrainLoader reference(data, options);
  const auto expected = take(reference, 40);  // 160 windows: about five epochs

  TrainLoader first(data, options);
  take(first, stop_after);
  const std::string saved = first.state().serialize();
  TrainLoader resumed(data, options, LoaderState::parse(saved));
  EXPECT_EQ(resumed.state(), first.state());
  const auto rest = take(resumed, 40 - stop_after);
  for (int i = stop_after; i < 40; ++i) {
    ASSERT_EQ(rest[static_cast<size_t>(i - stop_after)], expected[static_cast<size_t>(i)])
        << "batch " << i << " after resuming at " << stop_after << " (prefetch " << prefetch << ")";
  }
}

TEST(Loader, ResumeContinuesExactlyWithoutPrefetch) {
  for (int stop : {0, 1, 5, 7, 8, 23, 39}) expect_exact_resume(0, stop);
}

TEST(Loader, ResumeContinuesExactlyWithPrefetch) {
  // Batch 7 holds windows 28..31: the epoch boundary (31 windows) falls inside it.
  for (int stop : {3, 7, 8, 16}) expect_exact_resume(3, stop);
}

TEST(Loader, StateSerialisesAndRejectsGarbage) {
  LoaderState s;
  s.epoch = 3;
  s.shard = 2;
  s.position = 17;
  s.seed = 18446744073709551615ULL;
  s.seq_len = 1024;
  s.world_size = 8;
  s.fingerprint = 0xABCDEF;
  EXPECT_EQ(LoaderState::parse(s.serialize()), s);
  const std::string good = s.serialize();
  EXPECT_DATA_ERROR(LoaderState::parse(""), "not a cca loader state");
  EXPECT_DATA_ERROR(LoaderState::parse("cca-loader-state 2 epoch=1"), "unsupported version");
  std::string missing = good;
  missing.erase(missing.find(" shard="), 8);
  EXPECT_DATA_ERROR(LoaderState::parse(missing), "loader state");
  std::string negative = good;
  negative.replace(negative.find("epoch=3"), 7, "epoch=-3");
  EXPECT_DATA_ERROR(LoaderState::parse(negative), "epoch=-3");
  EXPECT_DATA_ERROR(LoaderState::parse(good + " extra=1"), "unknown fields");
  EXPECT_DATA_ERROR(LoaderState::parse(good + " epoch=4"), "repeated epoch");
}

TEST(Loader, ResumeRejectsOtherDataOrGeometry) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {300, 300}));
  TrainLoader loader(data, loader_options(16, 2, 1));
  take(loader, 3);
  const LoaderState state = loader.state();
  EXPECT_DATA_ERROR(TrainLoader(data, loader_options(32, 2, 1), state), "seq_len 16");
  const auto other = open(make_dataset(dir, {300, 301}, true, "other"));
  EXPECT_DATA_ERROR(TrainLoader(other, loader_options(16, 2, 1), state), "other shards");
  LoaderState past = state;
  past.position = 1000;
  EXPECT_DATA_ERROR(TrainLoader(data, loader_options(16, 2, 1), past), "points past the data");
  // A different micro-batch size is fine: the window stream does not depend on it.
  TrainLoader smaller(data, loader_options(16, 1, 1), state);
  TrainLoader reference(data, loader_options(16, 1, 1));
  take(reference, 6);
  EXPECT_EQ(take(smaller, 5), take(reference, 5));
}

TEST(LoaderReshard, StateArithmetic) {
  LoaderState s;
  s.epoch = 1;
  s.shard = 2;
  s.position = 5;
  s.seq_len = 16;
  s.world_size = 2;
  EXPECT_EQ(s.shard_windows_read(), 10);
  EXPECT_EQ(s.for_world_size(2), s);  // the same world size: untouched
  const LoaderState one = s.for_world_size(1);
  EXPECT_EQ(one.world_size, 1);
  EXPECT_EQ(one.position, 10);
  EXPECT_EQ(one.offset, 0);
  const LoaderState three = s.for_world_size(3);  // 10 = 1 + 3 * 3
  EXPECT_EQ(three.offset, 1);
  EXPECT_EQ(three.position, 3);
  EXPECT_EQ(three.shard_windows_read(), 10);
  EXPECT_EQ(three.epoch, 1);
  EXPECT_EQ(three.shard, 2);
  const LoaderState four = three.for_world_size(4);  // from an offset again: 10 = 2 + 4 * 2
  EXPECT_EQ(four.offset, 2);
  EXPECT_EQ(four.position, 2);
  EXPECT_EQ(four.for_world_size(2), s);  // back to 2 ranks: the original state
  EXPECT_DATA_ERROR(s.for_world_size(0), "world size 0");
  LoaderState huge = s;
  huge.position = 999999999999999999;
  huge.world_size = 100;
  EXPECT_DATA_ERROR(huge.for_world_size(3), "out of range");
}

TEST(LoaderReshard, OffsetSerialisesOnlyWhenSet) {
  LoaderState s;
  s.position = 7;
  s.seq_len = 16;
  s.world_size = 2;
  s.fingerprint = 0x1234;
  EXPECT_EQ(s.serialize().find("offset"), std::string::npos)
      << "a state that was never resharded reads as before: " << s.serialize();
  s.offset = 1;
  const std::string text = s.serialize();
  EXPECT_NE(text.find(" offset=1 "), std::string::npos) << text;
  EXPECT_EQ(LoaderState::parse(text), s);
  std::string zero = text;
  zero.replace(zero.find("offset=1"), 8, "offset=0");
  EXPECT_DATA_ERROR(LoaderState::parse(zero), "offset=0 must be >= 1");
  EXPECT_DATA_ERROR(LoaderState::parse(text + " offset=2"), "repeated offset");
  EXPECT_DATA_ERROR(LoaderState::parse(text + " extra=1"), "unknown fields");
}

// A window, by where its tokens came from (located_tokens): (shard, first token).
using Window = std::pair<int, int>;

// The global stream of W ranks that read in lockstep: rank r's k-th window is the group's
// (k * W + r)-th, as the loader deals them (docs/data.md).
std::vector<Window> group_windows(std::vector<std::unique_ptr<TrainLoader>>& ranks, int batches) {
  std::vector<std::vector<Window>> per_rank;
  for (auto& loader : ranks) per_rank.push_back(windows_of(*loader, batches));
  std::vector<Window> out;
  for (size_t k = 0; k < per_rank.front().size(); ++k) {
    for (const auto& mine : per_rank) out.push_back(mine.at(k));
  }
  return out;
}

std::vector<std::unique_ptr<TrainLoader>> group(const std::shared_ptr<const ShardSet>& data,
                                                int64_t world, int64_t batch, int prefetch,
                                                const std::optional<LoaderState>& resume) {
  std::vector<std::unique_ptr<TrainLoader>> ranks;
  for (int64_t r = 0; r < world; ++r) {
    LoaderOptions o = loader_options(23, batch, 77, prefetch);
    o.rank = r;
    o.world_size = world;
    ranks.push_back(std::make_unique<TrainLoader>(data, o, resume));
  }
  return ranks;
}

// Stops a W-rank group after `batches` batches of `batch`, reshards its state to W' ranks and
// reads the rest of the epoch. The two parts together must be exactly what the loader's rule
// says: epoch 0's permuted windows of each shard in order (the one-rank stream), each shard cut to
// whole rounds of its ranks: W before the stop, W' after it, and the stop's shard split at the
// stop: nothing read twice, nothing left out but the tails that do not fill a round.
void expect_resharded_stream(int64_t world, int64_t batch, int batches, int64_t new_world,
                             int prefetch) {
  SCOPED_TRACE(::testing::Message() << world << " -> " << new_world << " ranks after " << batches
                                    << " batches of " << batch);
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {330, 170, 250}));  // 14 + 7 + 10 windows of 23
  TrainLoader one_rank(data, loader_options(23, 1, 77));
  std::vector<std::vector<Window>> shards;  // epoch 0's windows of each shard, in order
  for (const Window& w : windows_of(one_rank, static_cast<int>(one_rank.windows_per_epoch()))) {
    if (shards.empty() || shards.back().front().first != w.first) shards.emplace_back();
    shards.back().push_back(w);
  }
  ASSERT_EQ(shards.size(), 3u);

  auto before = group(data, world, batch, prefetch, std::nullopt);
  const std::vector<Window> first = group_windows(before, batches);
  const LoaderState saved = before.front()->state();
  for (const auto& rank : before) ASSERT_EQ(rank->state(), saved) << "ranks move in lockstep";
  ASSERT_EQ(saved.epoch, 0);

  // The expected stream, shard by shard.
  std::vector<Window> expected;
  const auto round_down = [](int64_t n, int64_t w) { return n / w * w; };
  for (size_t s = 0; s < shards.size(); ++s) {
    const auto& windows = shards[s];
    const auto n = static_cast<int64_t>(windows.size());
    int64_t take = 0;
    if (static_cast<int64_t>(s) < saved.shard) {
      take = round_down(n, world);
    } else if (static_cast<int64_t>(s) > saved.shard) {
      take = round_down(n, new_world);
    } else {
      const int64_t read = saved.shard_windows_read();
      take = read + round_down(n - read, new_world);
    }
    expected.insert(expected.end(), windows.begin(), windows.begin() + take);
  }
  ASSERT_EQ(first, std::vector<Window>(expected.begin(), expected.begin() + first.size()));
  const auto rest = static_cast<int64_t>(expected.size() - first.size());
  ASSERT_EQ(rest % new_world, 0);

  auto after = group(data, new_world, 1, prefetch, saved);
  EXPECT_EQ(after.front()->state().world_size, new_world);
  EXPECT_EQ(after.front()->state().shard_windows_read(), saved.shard_windows_read());
  const std::vector<Window> second = group_windows(after, static_cast<int>(rest / new_world));
  EXPECT_EQ(second, std::vector<Window>(expected.begin() + first.size(), expected.end()));
  std::set<Window> distinct(first.begin(), first.end());
  distinct.insert(second.begin(), second.end());
  EXPECT_EQ(distinct.size(), first.size() + second.size()) << "a window was read twice";
  for (const auto& rank : after) {
    EXPECT_EQ(rank->state().epoch, 0);
    EXPECT_EQ(rank->next().state.epoch, 1) << "epoch 0 is used up";
  }
}

TEST(LoaderReshard, TwoRanksToOneContinueTheGlobalStream) {
  // 2 ranks x 2 windows per batch: stops inside shards and at a shard's end (the lazy cursor
  // then still points at the finished shard, and one rank reads its odd last window).
  for (int batches : {0, 1, 2, 3, 4, 5}) expect_resharded_stream(2, 2, batches, 1, 0);
  expect_resharded_stream(2, 2, 3, 1, 2);  // with prefetch
}

TEST(LoaderReshard, OneRankToTwoContinuesTheGlobalStream) {
  // Odd counts of windows read: the two ranks start one window into the shard (offset 1).
  for (int batches : {0, 1, 3, 5, 7, 11, 13, 14, 15, 20}) {
    expect_resharded_stream(1, 1, batches, 2, 0);
  }
  expect_resharded_stream(1, 3, 3, 2, 3);
}

TEST(LoaderReshard, OtherWorldSizesContinueTheGlobalStream) {
  for (int batches : {1, 2, 3, 4}) {
    expect_resharded_stream(2, 1, batches, 3, 0);
    expect_resharded_stream(3, 1, batches, 2, 0);
    expect_resharded_stream(3, 1, batches, 1, 0);
  }
}

TEST(LoaderReshard, ASecondResumeWithTheSameWorldSizeIsExact) {
  // After a reshard the offset stays in the state until the shard ends, so stopping and resuming
  // again with the new world size continues exactly.
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {330, 170, 250}));
  auto one = group(data, 1, 1, 0, std::nullopt);
  windows_of(*one.front(), 3);  // 3 windows: 2 ranks then start at offset 1
  const LoaderState saved = one.front()->state();
  auto whole = group(data, 2, 1, 0, saved);
  const std::vector<Window> expected = group_windows(whole, 12);
  auto part = group(data, 2, 1, 0, saved);
  std::vector<Window> got = group_windows(part, 2);  // 3 + 4 windows: still in the first shard
  const LoaderState again = part.front()->state();
  EXPECT_EQ(again.offset, 1);
  EXPECT_EQ(LoaderState::parse(again.serialize()), again);
  auto resumed = group(data, 2, 1, 0, LoaderState::parse(again.serialize()));
  const std::vector<Window> rest = group_windows(resumed, 10);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(got, expected);
}

TEST(LoaderReshard, AnOffsetPastTheShardIsAnError) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {330, 170, 250}));
  auto one = group(data, 1, 1, 0, std::nullopt);
  windows_of(*one.front(), 3);
  LoaderState state = one.front()->state().for_world_size(2);
  state.offset = 1000;
  state.position = 0;
  EXPECT_DATA_ERROR(group(data, 2, 1, 0, state), "points past the data", "offset 1000");
}

TEST(Loader, ShardsTooShortForAWindowAreSkipped) {
  ScratchDir dir;
  // Shards 0 and 2 hold no window of 16 + 1 tokens; only shard 1's 4 windows are read.
  const auto data = open(make_dataset(dir, {16, 65, 3}));
  for (int prefetch : {0, 2}) {
    TrainLoader loader(data, loader_options(16, 2, 4, prefetch));
    EXPECT_EQ(loader.windows_per_epoch(), 4);
    for (const auto& w : windows_of(loader, 10)) EXPECT_EQ(w.first, 1);
  }
}

TEST(Loader, TooLittleDataIsAnError) {
  ScratchDir dir;
  const auto data = open(make_dataset(dir, {16, 10}));
  EXPECT_DATA_ERROR(TrainLoader(data, loader_options(16, 1, 1)), "give no sequence of 16 + 1",
                    "seq_len");
}

TEST(Loader, TokenOutsideVocabularyFailsNamingTheShard) {
  ScratchDir dir;
  const std::string folder = make_dataset(dir, {200, 200}, /*with_manifest=*/false);
  DatasetOptions options;
  options.vocab_size = 1100;  // shard 1 holds ids 1000..1199
  for (int prefetch : {0, 2}) {
    TrainLoader loader(open(folder, options), loader_options(8, 4, 3, prefetch));
    EXPECT_DATA_ERROR(take(loader, 50), "train_000001.bin", "vocabulary size 1100");
  }
}

TEST(Dataset, LlmcShardsWithoutManifestLoad) {
  ScratchDir dir;
  const std::string folder = make_dataset(dir, {100, 50}, /*with_manifest=*/false);
  const ShardSet set = open_shards(folder + "/train_*.bin", "train");
  EXPECT_EQ(set.shards.size(), 2u);
  EXPECT_EQ(set.tokens, 150);
  EXPECT_EQ(set.manifest, nullptr);
  EXPECT_EQ(open_shards(folder, "train").tokens, 150);
  EXPECT_EQ(open_shards(folder + "/train_000001.bin", "train").tokens, 50);
}

TEST(Dataset, ChecksumMismatchNamesShardAndManifest) {
  ScratchDir dir;
  const std::string folder = make_dataset(dir, {100, 50});
  std::string bytes = datatest::read_bytes(folder + "/train_000001.bin");
  bytes[1024 + 10] ^= 0x01;  // same size, one token changed
  write_file(folder + "/train_000001.bin", bytes);
  EXPECT_DATA_ERROR(open_shards(folder + "/train_*.bin", "train"), "train_000001.bin",
                    "checksum mismatch", "manifest.json");
  DatasetOptions fast;
  fast.verify_checksums = false;
  EXPECT_NO_THROW(open_shards(folder, "train", fast));
}

TEST(Dataset, ForeignShardsAndTokenizersAreRejected) {
  ScratchDir dir;
  const std::string folder = make_dataset(dir, {100, 50});
  write_file(dir / "other.model", "a different tokenizer");
  DatasetOptions options;
  options.tokenizer = dir / "other.model";
  EXPECT_DATA_ERROR(open_shards(folder, "train", options), "manifest.json", "different tokenizer",
                    "other.model");
  options.tokenizer = folder + "/tokenizer.model";
  EXPECT_NO_THROW(open_shards(folder, "train", options));
  options.vocab_size = 50257;
  EXPECT_DATA_ERROR(open_shards(folder, "train", options), "65536 tokens", "vocab_size is 50257");
  datatest::write_shard(folder + "/train_000009.bin", {1, 2, 3});
  EXPECT_DATA_ERROR(open_shards(folder + "/train_*.bin", "train"), "train_000009.bin",
                    "not listed");
  EXPECT_DATA_ERROR(open_shards(folder + "/nothing_*.bin", "train"), "matches no shard");
  EXPECT_DATA_ERROR(open_shards(dir / "absent.bin", "train"), "absent.bin", "no such");
}

TEST(Validation, FixedPrefixOfTheValShardsInOrder) {
  ScratchDir dir;
  const std::string folder = make_dataset(dir, {30, 40}, /*with_manifest=*/false);
  const ShardSet set = open_shards(folder, "val");
  const ValidationSet val(set, 60, 8, 0, 1);  // 7 sequences, crossing into shard 1
  EXPECT_EQ(val.sequences(), 7);
  EXPECT_EQ(val.batches(3), 3);
  std::vector<int32_t> stream = located_tokens(0, 30);
  const auto second = located_tokens(1, 40);
  stream.insert(stream.end(), second.begin(), second.end());
  for (int64_t b = 0; b < 3; ++b) {
    const Batch batch = val.batch(b, 3);
    EXPECT_EQ(batch.batch_size, b < 2 ? 3 : 1);
    for (int64_t r = 0; r < batch.batch_size; ++r) {
      const int64_t seq = b * 3 + r;
      for (int t = 0; t < 8; ++t) {
        ASSERT_EQ(batch.inputs[static_cast<size_t>(r * 8 + t)],
                  stream[static_cast<size_t>(seq * 8 + t)]);
        ASSERT_EQ(batch.targets[static_cast<size_t>(r * 8 + t)],
                  stream[static_cast<size_t>(seq * 8 + t + 1)]);
      }
    }
  }
  // The same set every time, and ranks split it.
  EXPECT_EQ(ValidationSet(set, 60, 8).batch(1, 3).inputs, val.batch(1, 3).inputs);
  const ValidationSet r0(set, 60, 8, 0, 2), r1(set, 60, 8, 1, 2);
  EXPECT_EQ(r0.sequences() + r1.sequences(), 7);
  EXPECT_EQ(r1.batch(0, 1).inputs[0], stream[8]);
  EXPECT_DATA_ERROR(ValidationSet(set, 80, 8), "needs 81 tokens", "hold 70", "data.val_tokens");
  EXPECT_EQ(ValidationSet(set, 0, 8).sequences(), 0);
}

}  // namespace
}  // namespace cca::data
