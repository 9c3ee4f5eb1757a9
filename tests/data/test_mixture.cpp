// Weighted mixtures and stages: proportions at every point, each source read once per epoch,
// disjoint ranks, exact resume (mid-mixture, across and at a stage boundary, with prefetch),
// exhaustion (wrap or error) and the shared-tokenizer check.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/mixture.h"
#include "data_test_util.h"
#include "testing/error_of.h"
#include "util/hash.h"

namespace cca::data {
namespace {

namespace fs = std::filesystem;
using datatest::ScratchDir;
using testing::error_of;

constexpr int kSourceUnit = 10000;  // token = source * 10000 + shard * 1000 + position
constexpr int64_t kSeqLen = 9;

// A dataset folder for source `source` with one shard per count, and a manifest recording
// `vocab_size` (the tokenizer fact the mixture compares).
std::string make_source(const ScratchDir& dir, const std::string& name, int source,
                        const std::vector<int>& counts, int64_t vocab_size = 65536) {
  const std::string folder = dir / name;
  fs::create_directories(folder);
  Manifest m;
  m.tokenizer_file = "tokenizer.model";
  datatest::write_file(folder + "/tokenizer.model", "stand-in tokenizer bytes");
  m.tokenizer_xxh64 = xxh64_file(folder + "/tokenizer.model");
  m.vocab_size = vocab_size;
  m.bos_id = 1;
  m.eos_id = 2;
  for (size_t s = 0; s < counts.size(); ++s) {
    std::vector<int32_t> tokens;
    for (int i = 0; i < counts[s]; ++i) {
      tokens.push_back(source * kSourceUnit + static_cast<int>(s) * 1000 + i);
    }
    const std::string file = "train_" + std::to_string(s) + ".bin";
    const auto r = datatest::write_shard(folder + "/" + file, tokens);
    m.train.shards.push_back({file, r.tokens, r.bytes, r.xxh64});
    m.train.tokens += r.tokens;
  }
  write_manifest(m, folder + "/manifest.json");
  return folder;
}

struct Fixture {
  ScratchDir dir;
  std::vector<MixtureSource> sources;

  Fixture() {
    // web: 10 + 6 windows of 9 + 1; code: 5 windows.
    sources.push_back({"web", std::make_shared<const ShardSet>(
                                  open_shards(make_source(dir, "web", 1, {91, 60}), "train"))});
    sources.push_back({"code", std::make_shared<const ShardSet>(
                                   open_shards(make_source(dir, "code", 2, {50}), "train"))});
  }
};

MixtureOptions stages(std::vector<MixtureStage> list) {
  MixtureOptions o;
  o.stages = std::move(list);
  return o;
}

LoaderOptions options(int prefetch = 0, int64_t rank = 0, int64_t world = 1, int64_t batch = 4) {
  LoaderOptions o;
  o.seq_len = kSeqLen;
  o.batch_size = batch;
  o.seed = 5;
  o.prefetch = prefetch;
  o.rank = rank;
  o.world_size = world;
  return o;
}

// (source, shard*1000 + start) of each sequence of the next `batches` batches.
std::vector<std::pair<int, int>> sequences(TrainLoader& loader, int batches) {
  std::vector<std::pair<int, int>> out;
  for (int b = 0; b < batches; ++b) {
    const Batch batch = loader.next();
    for (int64_t r = 0; r < batch.batch_size; ++r) {
      const int32_t first = batch.inputs[static_cast<size_t>(r * kSeqLen)];
      EXPECT_EQ(batch.targets[static_cast<size_t>(r * kSeqLen)], first + 1);
      out.emplace_back(first / kSourceUnit, first % kSourceUnit);
    }
  }
  return out;
}

TEST(Mixture, ProportionsHoldAtEveryPrefix) {
  Fixture f;
  TrainLoader loader(f.sources, stages({{"all", 0, {3.0, 1.0}}}), options());
  const auto seen = sequences(loader, 4);  // 16 sequences
  int web = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    web += seen[i].first == 1;
    // The greedy schedule keeps every prefix within one sequence of 3:1.
    EXPECT_NEAR(web, 0.75 * static_cast<double>(i + 1), 1.0) << "after " << i + 1;
  }
  EXPECT_EQ(web, 12);
  const MixtureState& state = loader.mixture_state();
  EXPECT_EQ(state.sequences, 16);
  EXPECT_EQ(state.sources[0].tokens, 12 * kSeqLen);
  EXPECT_EQ(state.sources[1].tokens, 4 * kSeqLen);
}

TEST(Mixture, NoWindowTwiceBeforeTheSourceIsExhaustedThenWrapsInANewOrder) {
  Fixture f;
  TrainLoader loader(f.sources, stages({{"all", 0, {1.0, 1.0}}}), options());
  std::map<int, std::vector<int>> by_source;
  bool wrapped_code = false;
  for (int b = 0; b < 5; ++b) {  // 20 sequences: code's 5 windows twice
    const Batch batch = loader.next();
    for (const std::string& line : batch.wrapped)
      wrapped_code |= line.find("'code'") != std::string::npos;
    for (int64_t r = 0; r < batch.batch_size; ++r) {
      const int32_t first = batch.inputs[static_cast<size_t>(r * kSeqLen)];
      by_source[first / kSourceUnit].push_back(first % kSourceUnit);
    }
  }
  const std::vector<int>& code = by_source[2];
  ASSERT_EQ(code.size(), 10u);
  const std::set<int> first_epoch(code.begin(), code.begin() + 5);
  const std::set<int> second_epoch(code.begin() + 5, code.end());
  EXPECT_EQ(first_epoch.size(), 5u);
  EXPECT_EQ(first_epoch, second_epoch);
  EXPECT_NE(std::vector<int>(code.begin(), code.begin() + 5),
            std::vector<int>(code.begin() + 5, code.end()));
  EXPECT_TRUE(wrapped_code);
  const std::set<int> web(by_source[1].begin(), by_source[1].end());
  EXPECT_EQ(web.size(), by_source[1].size());
}

TEST(Mixture, ExhaustionIsAnErrorNamingTheSourceWhenAskedFor) {
  Fixture f;
  MixtureOptions mix = stages({{"all", 0, {1.0, 1.0}}});
  mix.on_exhausted = OnExhausted::error;
  TrainLoader loader(f.sources, mix, options());
  sequences(loader, 2);  // 4 of code's 5 windows
  const std::string error = error_of([&] { sequences(loader, 2); });
  EXPECT_NE(error.find("source 'code'"), std::string::npos) << error;
  EXPECT_NE(error.find("data.on_exhausted"), std::string::npos) << error;
}

TEST(Mixture, StagesSwitchWeightsAtTheirStart) {
  Fixture f;
  TrainLoader loader(f.sources, stages({{"web", 0, {1.0, 0.0}}, {"code", 8, {0.0, 1.0}}}),
                     options());
  const auto seen = sequences(loader, 4);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].first, i < 8 ? 1 : 2) << i;
  EXPECT_EQ(loader.mixture_state().stage, 1);
  EXPECT_EQ(loader.mixture_state().sources[1].stage_tokens, 8 * kSeqLen);
}

void expect_exact_resume(const MixtureOptions& mix, int prefetch, int stop_after) {
  Fixture f;
  TrainLoader reference(f.sources, mix, options(prefetch));
  const auto expected = sequences(reference, 12);
  TrainLoader first(f.sources, mix, options(prefetch));
  sequences(first, stop_after);
  const std::string saved = first.mixture_state().serialize();
  TrainLoader resumed(f.sources, mix, options(prefetch), MixtureState::parse(saved));
  EXPECT_EQ(resumed.mixture_state(), first.mixture_state());
  const auto rest = sequences(resumed, 12 - stop_after);
  const std::vector<std::pair<int, int>> tail(expected.begin() + stop_after * 4, expected.end());
  EXPECT_EQ(rest, tail) << "resumed after batch " << stop_after << ", prefetch " << prefetch;
}

TEST(Mixture, ResumeIsExactMidMixtureAndAcrossAndAtAStageBoundary) {
  const MixtureOptions one = stages({{"all", 0, {2.0, 1.0}}});
  const MixtureOptions two = stages({{"a", 0, {2.0, 1.0}}, {"b", 20, {1.0, 3.0}}});
  for (int stop : {1, 3, 7}) {
    expect_exact_resume(one, 0, stop);
    expect_exact_resume(one, 3, stop);
  }
  for (int stop : {4, 5, 8}) {  // 5 batches = 20 sequences: exactly at the boundary
    expect_exact_resume(two, 0, stop);
    expect_exact_resume(two, 2, stop);
  }
}

// Two batches of 4 x 9 tokens, then a stage of 2 x 18 (the tokens per batch kept).
MixtureOptions longer_second_stage() {
  MixtureOptions mix = stages({{"short", 0, {1.0, 1.0}}, {"long", 8, {1.0, 1.0}, 18, 2}});
  return mix;
}

// Every batch's shape and inputs, checking each row is one window of its length.
std::vector<std::vector<int32_t>> batch_inputs(TrainLoader& loader, int batches) {
  std::vector<std::vector<int32_t>> out;
  for (int b = 0; b < batches; ++b) {
    const Batch batch = loader.next();
    EXPECT_EQ(batch.inputs.size(), static_cast<size_t>(batch.batch_size * batch.seq_len));
    for (int64_t r = 0; r < batch.batch_size; ++r) {
      const int32_t first = batch.inputs[static_cast<size_t>(r * batch.seq_len)];
      EXPECT_EQ(first % 1000 % batch.seq_len, 0) << "a window starts at a multiple of seq_len";
      EXPECT_EQ(batch.inputs[static_cast<size_t>((r + 1) * batch.seq_len - 1)],
                first + batch.seq_len - 1);
    }
    out.push_back(batch.inputs);
    out.back().push_back(static_cast<int32_t>(batch.seq_len));
  }
  return out;
}

TEST(Mixture, AStageOfItsOwnSeqLenCutsItsWindowsAndResumesExactlyAtAndAfterTheSwitch) {
  Fixture f;
  TrainLoader reference(f.sources, longer_second_stage(), options());
  const auto expected = batch_inputs(reference, 8);
  EXPECT_EQ(expected[1].back(), kSeqLen);
  EXPECT_EQ(expected[2].back(), 18);
  EXPECT_EQ(expected[2].size(), 2u * 18 + 1);
  for (const SourcePosition& p : reference.mixture_state().sources) {
    EXPECT_EQ(p.state.seq_len, 18) << p.name;
  }
  for (int prefetch : {0, 2}) {
    for (int stop : {1, 2, 3, 5}) {  // 2: exactly at the switch, the states still of 9 tokens
      TrainLoader first(f.sources, longer_second_stage(), options(prefetch));
      batch_inputs(first, stop);
      const MixtureState saved = MixtureState::parse(first.mixture_state().serialize());
      EXPECT_EQ(saved.sources[0].state.seq_len, stop <= 2 ? kSeqLen : 18);
      TrainLoader resumed(f.sources, longer_second_stage(), options(prefetch), saved);
      const auto rest = batch_inputs(resumed, 8 - stop);
      EXPECT_EQ(rest, decltype(rest)(expected.begin() + stop, expected.end()))
          << "resumed after batch " << stop << ", prefetch " << prefetch;
    }
  }
}

TEST(Mixture, RanksDrawTheSameSourcesInLockstepAndDisjointWindows) {
  Fixture f;
  const MixtureOptions mix = stages({{"all", 0, {1.0, 1.0}}});
  TrainLoader rank0(f.sources, mix, options(0, 0, 2, 2));
  TrainLoader rank1(f.sources, mix, options(0, 1, 2, 2));
  const auto a = sequences(rank0, 2);
  const auto b = sequences(rank1, 2);
  std::set<std::pair<int, int>> all;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << i;
    all.insert(a[i]);
    all.insert(b[i]);
  }
  EXPECT_EQ(all.size(), 2 * a.size());
  EXPECT_EQ(rank0.mixture_state(), rank1.mixture_state());
  EXPECT_EQ(rank0.mixture_state().sequences, 8);
  // Two ranks' state continues on one rank without reading a window of this epoch again (code's
  // 2 x 2 windows are its whole epoch for two ranks, so only web's are compared).
  TrainLoader single(f.sources, mix, options(), rank0.mixture_state());
  for (const auto& seen : sequences(single, 1)) {
    if (seen.first == 1) {
      EXPECT_EQ(all.count(seen), 0u);
    }
  }
}

TEST(Mixture, StateSerialisesAndRejectsGarbage) {
  Fixture f;
  TrainLoader loader(f.sources, stages({{"all", 0, {1.0, 2.0}}}), options());
  sequences(loader, 3);
  const MixtureState state = loader.mixture_state();
  EXPECT_TRUE(MixtureState::is_mixture(state.serialize()));
  EXPECT_FALSE(MixtureState::is_mixture(state.sources[0].state.serialize()));
  EXPECT_EQ(MixtureState::parse(state.serialize()), state);
  EXPECT_THROW(MixtureState::parse("cca-mixture-state 2 sequences=1 stage=0"), Error);
  EXPECT_THROW(MixtureState::parse("cca-mixture-state 1 sequences=x stage=0"), Error);
  EXPECT_THROW(MixtureState::parse("cca-mixture-state 1 sequences=1 stage=0"), Error);
  EXPECT_THROW(MixtureState::parse(state.serialize() + "\nsource=web tokens=1 stage_tokens=1 x"),
               Error);
}

TEST(Mixture, ResumeRejectsOtherSources) {
  Fixture f;
  const MixtureOptions mix = stages({{"all", 0, {1.0, 1.0}}});
  TrainLoader loader(f.sources, mix, options());
  sequences(loader, 1);
  std::vector<MixtureSource> renamed = f.sources;
  renamed[1].name = "books";
  const std::string error =
      error_of([&] { TrainLoader resumed(renamed, mix, options(), loader.mixture_state()); });
  EXPECT_NE(error.find("code, web"), std::string::npos) << error;
  EXPECT_NE(error.find("books, web"), std::string::npos) << error;
}

TEST(Mixture, SourcesMustShareTheTokenizer) {
  Fixture f;
  check_same_tokenizer(f.sources, "data.train");  // the fixture's sources agree
  std::vector<MixtureSource> mixed = f.sources;
  mixed.push_back({"books", std::make_shared<const ShardSet>(open_shards(
                                make_source(f.dir, "books", 3, {50}, 32000), "train"))});
  const std::string what = error_of([&] { check_same_tokenizer(mixed, "data.train"); });
  EXPECT_NE(what.find("'web'"), std::string::npos) << what;
  EXPECT_NE(what.find("'books'"), std::string::npos) << what;
  EXPECT_NE(what.find("vocab_size 65536 vs 32000"), std::string::npos) << what;
}

}  // namespace
}  // namespace cca::data
