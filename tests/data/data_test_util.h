// Shared by the data test suites: scratch folders, fixture text and shards made on the spot, a
// tiny tokenizer trained once per test binary, and EXPECT_DATA_ERROR for "throws cca::Error whose
// message contains these words".
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/shard.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "testing/scratch_dir.h"
#include "util/error.h"

namespace cca::datatest {

namespace fs = std::filesystem;

using ScratchDir = cca::testing::ScratchDir;

// Replaces the file rather than truncating it: ext4 flushes a truncated-and-rewritten file to disk
// on close (auto_da_alloc), which made the fuzz loops I/O-bound.
inline void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Seeded English-like prose: sentences from a fixed word list, a few paragraphs per document.
inline std::string make_document(std::mt19937_64& rng, int sentences) {
  static const char* const words[] = {
      "the",     "a",      "dictionary", "of",    "english", "word",    "meaning", "is",
      "to",      "and",    "in",         "that",  "which",   "an",      "old",     "form",
      "used",    "as",     "or",         "from",  "river",   "stone",   "light",   "sound",
      "water",   "house",  "tree",       "small", "great",   "quickly", "slowly",  "bright",
      "ancient", "modern", "language",   "teach", "learn",   "write",   "read",    "speak",
      "number",  "twelve", "seven",      "1913",  "colour",  "plant",   "animal",  "bird",
      "city",    "road",   "ship"};
  constexpr size_t kWords = sizeof(words) / sizeof(words[0]);
  std::string text;
  for (int s = 0; s < sentences; ++s) {
    const int length = 4 + static_cast<int>(rng() % 9);
    for (int w = 0; w < length; ++w) {
      std::string word = words[rng() % kWords];
      if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      text += (w == 0 ? "" : " ") + word;
    }
    text += (rng() % 5 == 0) ? ".\n" : ". ";
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

inline std::vector<std::string> make_documents(int count, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> docs;
  for (int i = 0; i < count; ++i)
    docs.push_back(make_document(rng, 3 + static_cast<int>(rng() % 6)));
  return docs;
}

inline std::string jsonl_of(const std::vector<std::string>& docs,
                            const std::string& field = "text");

// A small BPE tokenizer (vocabulary 400, byte fallback) trained once per test binary.
inline const std::string& tiny_tokenizer_path() {
  static ScratchDir dir;  // removed when the process exits
  static std::string path;
  if (path.empty()) {
    const std::string corpus = dir / "corpus.jsonl";
    write_file(corpus, jsonl_of(make_documents(400, 99)));
    data::DocumentReader reader({corpus}, data::SourceOptions{});
    data::TokenizerTrainOptions options;
    options.output_prefix = dir / "tiny";
    options.vocab_size = 400;
    options.byte_fallback = true;
    options.threads = 1;
    path = data::train_tokenizer(reader, options).model_path;
  }
  return path;
}

inline std::string jsonl_of(const std::vector<std::string>& docs, const std::string& field) {
  std::string out;
  for (const std::string& doc : docs) {
    out += "{\"" + field + "\": \"";
    for (char c : doc) {
      if (c == '\n') {
        out += "\\n";
      } else if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else {
        out += c;
      }
    }
    out += "\"}\n";
  }
  return out;
}

// Writes a shard of `tokens` with the library's writer.
inline data::ShardWriter::Result write_shard(const std::string& path,
                                             const std::vector<int32_t>& tokens,
                                             int32_t version = data::kShardVersionU16) {
  data::ShardWriter writer(path, version);
  writer.append(tokens);
  return writer.finish();
}

// Token i of a synthetic shard: a recognisable pattern (shard id in the high digits).
inline std::vector<int32_t> pattern_tokens(int shard, int64_t count) {
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    tokens[static_cast<size_t>(i)] = static_cast<int32_t>((shard * 10007 + i) % 50000);
  return tokens;
}

// Runs `body` and checks it throws cca::Error whose message contains every one of `parts`.
template <class Body>
::testing::AssertionResult throws_data_error(Body&& body, const std::vector<std::string>& parts) {
  try {
    body();
  } catch (const cca::Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks \"" << part << "\": " << message;
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-cca exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

#define EXPECT_DATA_ERROR(statement, ...) \
  EXPECT_TRUE(::cca::datatest::throws_data_error([&] { statement; }, {__VA_ARGS__}))

}  // namespace cca::datatest
