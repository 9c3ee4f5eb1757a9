// Hostile files: thousands of seeded mutations of a valid shard, manifest, loader state and JSONL
// line. Each load must either succeed with reads inside the file or throw cca::Error; a crash,
// hang or other exception fails the test (run it under ASan for out-of-bounds reads: docs/data.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "data_test_util.h"
#include "util/hash.h"
#include "util/json.h"

namespace cca::data {
namespace {

namespace fs = std::filesystem;
using datatest::ScratchDir;
using datatest::write_file;

constexpr int kMutations = 3000;

const int32_t kExtremes[] = {
    0,    1,     2,     -1,       3,         255,       256,           1023,
    1024, 65535, 65536, 20240520, INT32_MAX, INT32_MIN, INT32_MAX - 1, 0x7F7F7F7F};

std::string mutate_binary(std::string bytes, std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0: {  // flip a few bits anywhere
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < flips && !bytes.empty(); ++i) {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
      }
      break;
    }
    case 1:  // truncate
      bytes.resize(rng() % (bytes.size() + 1));
      break;
    case 2: {  // append garbage
      const size_t extra = 1 + rng() % 64;
      for (size_t i = 0; i < extra; ++i) bytes += static_cast<char>(rng());
      break;
    }
    default: {  // overwrite a header field (mostly the meaningful ones) with an extreme value
      const size_t field = rng() % 4 == 0 ? rng() % 256 : rng() % 3;
      int32_t value = kExtremes[rng() % (sizeof(kExtremes) / sizeof(kExtremes[0]))];
      if (rng() % 4 == 0) value = static_cast<int32_t>(rng());
      if (bytes.size() >= (field + 1) * 4) std::memcpy(&bytes[field * 4], &value, 4);
      break;
    }
  }
  return bytes;
}

// Loads a mutated shard; on success reads every token and checks the reads stayed in the file.
void load_and_read(const std::string& path, int64_t& loaded) {
  try {
    const MappedShard shard(path);
    const uint64_t size = fs::file_size(path);
    ASSERT_EQ(kShardHeaderBytes +
                  static_cast<uint64_t>(shard.tokens()) * shard_token_bytes(shard.version()),
              size);
    std::vector<int32_t> tokens(static_cast<size_t>(shard.tokens()));
    shard.copy(0, shard.tokens(), tokens.data(), 65536);
    (void)shard.checksum();
    ++loaded;
  } catch (const Error&) {
    // the expected outcome for most mutations
  }
}

TEST(Fuzz, MutatedShardsLoadOrFailCleanly) {
  ScratchDir dir;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 300; ++i) tokens.push_back((i * 131) % 60000);
  datatest::write_shard(dir / "v1.bin", tokens, kShardVersionU16);
  datatest::write_shard(dir / "v2.bin", tokens, kShardVersionU32);
  const std::string originals[] = {datatest::read_bytes(dir / "v1.bin"),
                                   datatest::read_bytes(dir / "v2.bin")};
  std::mt19937_64 rng(20240520);
  int64_t loaded = 0;
  for (int i = 0; i < kMutations; ++i) {
    const std::string path = dir / "m.bin";
    write_file(path, mutate_binary(originals[i % 2], rng));
    load_and_read(path, loaded);
    if (HasFatalFailure()) return;
  }
  // Some mutations (bit flips in token bytes) must still load, or the test proves little.
  EXPECT_GT(loaded, kMutations / 20);
  EXPECT_LT(loaded, kMutations);
}

std::string mutate_text(std::string text, std::mt19937_64& rng) {
  static const char* const inserts[] = {"{",
                                        "}",
                                        "[",
                                        "]",
                                        "\"",
                                        ",",
                                        ":",
                                        "-1",
                                        "1e308",
                                        "9223372036854775807",
                                        "-9223372036854775808",
                                        "99999999999999999999",
                                        "null",
                                        "true",
                                        "\\u0000",
                                        "\"../../etc/passwd\"",
                                        "0.5",
                                        "\xff"};
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    const size_t at = text.empty() ? 0 : rng() % text.size();
    switch (rng() % 5) {
      case 0:
        if (!text.empty()) text[at] = static_cast<char>(rng());
        break;
      case 1:
        text.resize(at);
        break;
      case 2:
        text.erase(at, 1 + rng() % 16);
        break;
      default: {  // swap a number for an extreme one, or insert JSON punctuation
        const size_t digit = text.find_first_of("0123456789", at);
        const std::string piece = inserts[rng() % (sizeof(inserts) / sizeof(inserts[0]))];
        if (digit != std::string::npos && rng() % 2 == 0) {
          const size_t end = text.find_first_not_of("0123456789", digit);
          text.replace(digit, (end == std::string::npos ? text.size() : end) - digit, piece);
        } else {
          text.insert(at, piece);
        }
      }
    }
  }
  return text;
}

TEST(Fuzz, MutatedManifestsParseAndLoadOrFailCleanly) {
  ScratchDir dir;
  Manifest m;
  m.tokenizer_file = "tokenizer.model";
  m.vocab_size = 65536;
  m.bos_id = 1;
  m.eos_id = 2;
  for (int s = 0; s < 2; ++s) {
    const std::string name = "train_00000" + std::to_string(s) + ".bin";
    const auto r = datatest::write_shard(dir / name, datatest::pattern_tokens(s, 200 + 50 * s));
    m.train.shards.push_back({name, r.tokens, r.bytes, r.xxh64});
    m.train.tokens += r.tokens;
  }
  const auto v = datatest::write_shard(dir / "val_000000.bin", datatest::pattern_tokens(9, 100));
  m.val = {1, v.tokens, {{"val_000000.bin", v.tokens, v.bytes, v.xxh64}}};
  const std::string original = render_manifest(m);
  std::mt19937_64 rng(7);
  int parsed = 0;
  for (int i = 0; i < kMutations; ++i) {
    const std::string text = mutate_text(original, rng);
    write_file(dir / "manifest.json", text);
    try {
      const Manifest back = parse_manifest(text, "manifest.json");
      ++parsed;
      const auto set = std::make_shared<const ShardSet>(open_shards(dir.path().string(), "train"));
      TrainLoader loader(set, LoaderOptions{16, 2, 1, 0, 1, 0, true});
      for (int b = 0; b < 3; ++b) loader.next();
    } catch (const Error&) {
      // expected for most mutations
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_LT(parsed, kMutations);
}

// A word as parse errors quote it (loader.h): 40 characters, non-printable bytes as \xNN.
std::string as_quoted(const std::string& word) {
  std::string out;
  for (const char c : word.substr(0, 40)) {
    const auto byte = static_cast<unsigned char>(c);
    char hex[5];
    std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
    out += byte >= 0x20 && byte < 0x7f ? std::string(1, c) : std::string(hex);
  }
  return out;
}

// The whitespace-separated words of a loader state, as LoaderState::parse splits them.
std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Every "key=..." word of `words` (in order): what parse sees of that field.
std::vector<std::string> field_words(const std::vector<std::string>& words,
                                     const std::string& key) {
  std::vector<std::string> out;
  for (size_t i = 2; i < words.size(); ++i) {
    if (words[i].compare(0, key.size() + 1, key + "=") == 0) out.push_back(words[i]);
  }
  return out;
}

// A parse error of `mutated` must have loader.h's shape, "loader state: <part>: <problem>", and
// <part> must name something the mutation changed: the magic word, the version, a field whose
// words differ from the original's, or (quoted) a word the original has no field like.
::testing::AssertionResult names_what_is_wrong(const std::string& message,
                                               const std::string& original,
                                               const std::string& mutated) {
  const std::string prefix = "loader state: ";
  const size_t end = message.find(": ", prefix.size());
  if (message.compare(0, prefix.size(), prefix) != 0 || end == std::string::npos ||
      end + 2 >= message.size()) {
    return ::testing::AssertionFailure() << "not 'loader state: <part>: <problem>': " << message;
  }
  const std::string part = message.substr(prefix.size(), end - prefix.size());
  const std::vector<std::string> before = words_of(original), after = words_of(mutated);
  const auto word = [](const std::vector<std::string>& w, size_t i) {
    return i < w.size() ? w[i] : std::string();
  };
  bool changed = false;
  if (part == "magic") {
    changed = word(after, 0) != word(before, 0);
  } else if (part == "version") {
    changed = word(after, 1) != word(before, 1);
  } else if (part.size() >= 2 && part.front() == '\'' && part.back() == '\'') {
    const std::string quoted = part.substr(1, part.size() - 2);  // at most 40 characters
    const bool in_mutated =
        std::any_of(after.begin() + std::min<size_t>(2, after.size()), after.end(),
                    [&](const std::string& w) { return as_quoted(w) == quoted; });
    // Among the key=value words: the version "1" may well turn up there as a stray word.
    changed = in_mutated && std::find(before.begin() + 2, before.end(), quoted) == before.end();
  } else {
    const char* const fields[] = {"epoch", "shard",   "position",   "offset",
                                  "seed",  "seq_len", "world_size", "fingerprint"};
    if (std::find(std::begin(fields), std::end(fields), part) == std::end(fields)) {
      return ::testing::AssertionFailure() << "<part> '" << part << "' names nothing: " << message;
    }
    changed = field_words(after, part) != field_words(before, part);
  }
  if (!changed) {
    return ::testing::AssertionFailure()
           << "'" << part << "' is not what the mutation changed: " << message;
  }
  return ::testing::AssertionSuccess();
}

// Every mutated state either parses to a state in range that survives a round trip, or throws
// cca::Error whose message names the part that is wrong (LoaderState::parse in loader.h).
TEST(Fuzz, MutatedLoaderStatesParseOrFailCleanly) {
  LoaderState s;
  s.epoch = 2;
  s.shard = 1;
  s.position = 40;
  s.offset = 3;  // as after resharding to 4 ranks mid-shard, so the text has every field
  s.seed = 1337;
  s.seq_len = 64;
  s.world_size = 4;
  s.fingerprint = 0x0123456789ABCDEFULL;
  const std::string original = s.serialize();
  std::mt19937_64 rng(11);
  int parsed = 0;
  int failed = 0;
  for (int i = 0; i < kMutations; ++i) {
    const std::string text = mutate_text(original, rng);
    SCOPED_TRACE(text);
    try {
      const LoaderState state = LoaderState::parse(text);
      ++parsed;
      EXPECT_GE(state.epoch, 0);
      EXPECT_GE(state.shard, 0);
      EXPECT_GE(state.position, 0);
      EXPECT_GE(state.offset, 0);
      EXPECT_GE(state.seq_len, 1);
      EXPECT_GE(state.world_size, 1);
      const std::string again = state.serialize();
      EXPECT_EQ(LoaderState::parse(again), state) << again;
      EXPECT_EQ(LoaderState::parse(again).serialize(), again);
    } catch (const Error& e) {
      ++failed;
      EXPECT_TRUE(names_what_is_wrong(e.what(), original, text));
    }
    if (HasFailure()) return;  // one example is enough
  }
  // Number swaps keep some states valid (other values, leading zeros); most mutations break one.
  EXPECT_GT(parsed, 0);
  EXPECT_GT(failed, kMutations / 2);
}

// The message shape, case by case: the part first, then what is wrong with it.
TEST(Fuzz, LoaderStateErrorsNameThePart) {
  LoaderState s;
  s.seq_len = 8;
  const std::string good = s.serialize();
  const auto message = [](const std::string& text) {
    try {
      LoaderState::parse(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(parsed)");
  };
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_EQ(message(""), "loader state: magic: empty text: not a cca loader state");
  EXPECT_EQ(message("cca-loader-stat 1"),
            "loader state: magic: not a cca loader state (starts with 'cca-loader-stat', "
            "expected 'cca-loader-state')");
  EXPECT_EQ(message("cca-loader-state"), "loader state: version: missing");
  EXPECT_EQ(message(with(" 1 ", " 2 ")),
            "loader state: version: unsupported version '2' (this build reads version 1)");
  EXPECT_EQ(message(with(" shard=0", "")), "loader state: shard: missing");
  EXPECT_EQ(message(with("seq_len=8", "seq_len=0")),
            "loader state: seq_len: seq_len=0 must be >= 1");
  EXPECT_EQ(message(with("epoch=0", "epoch=x")),
            "loader state: epoch: epoch=x is not a non-negative integer of at most 18 digits");
  EXPECT_EQ(message(with("seed=0", "seed=18446744073709551616")),
            "loader state: seed: seed=18446744073709551616 is not an integer in 0 .. 2^64 - 1");
  EXPECT_EQ(message(with("fingerprint=", "fingerprint=g")),
            "loader state: fingerprint: fingerprint=g0000000000000000 is not 16 hexadecimal "
            "digits");
  EXPECT_EQ(message(good + " epoch=1"), "loader state: epoch: repeated epoch=1 after epoch=0");
  EXPECT_EQ(message(good + " lr=1"),
            "loader state: 'lr=1': unknown fields are not allowed (known: epoch, shard, position, "
            "offset, seed, seq_len, world_size, fingerprint)");
  EXPECT_EQ(message(good + " extra"), "loader state: 'extra': expected key=value");
  EXPECT_EQ(message(good + " offset=0"), "loader state: offset: offset=0 must be >= 1");
  // A NUL or other control byte is shown, so it cannot cut the message short.
  EXPECT_EQ(message(with("epoch=0", std::string("epoch\0"
                                                "0",
                                                7))),
            "loader state: 'epoch\\x000': expected key=value");
  EXPECT_EQ(message(with("epoch=0", "epoch=0\xff")),
            "loader state: epoch: epoch=0\\xff is not a non-negative integer of at most 18 digits");
  EXPECT_EQ(message(with("epoch=0", "epoch=007")), "(parsed)");  // leading zeros are fine
}

TEST(Fuzz, MutatedJsonlReadsOrFailsCleanly) {
  ScratchDir dir;
  const std::string original = datatest::jsonl_of(datatest::make_documents(4, 2));
  std::mt19937_64 rng(13);
  for (int i = 0; i < kMutations / 3; ++i) {
    write_file(dir / "c.jsonl", mutate_text(original, rng));
    try {
      DocumentReader reader({dir / "c.jsonl"}, SourceOptions{});
      Document doc;
      while (reader.next(doc)) {
        ASSERT_EQ(find_invalid_utf8(doc.text), std::string_view::npos);
      }
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace cca::data
