// Token shards in the llm.c format, so llm.c and modded-nanogpt FineWeb shards load unchanged:
//
//   header: 256 little-endian int32: [0] magic 20240520, [1] version, [2] token count,
//           [3] vocabulary size (0 = not recorded), rest 0
//   body:   token count tokens; version 1 = uint16 (vocab <= 65,536), version 2 = uint32
//
// Version 2 and header[3] are our extensions; llm.c itself only reads version 1 and ignores
// header[3..] (its own shards have 0 there). A file must be exactly 1024 + count * token_bytes
// long: anything else is reported as truncated or as trailing garbage, never read past.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cca::data {

constexpr int32_t kShardMagic = 20240520;
constexpr int kShardHeaderInts = 256;
constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
constexpr int32_t kShardVersionU16 = 1;
constexpr int32_t kShardVersionU32 = 2;
// header[2] is an int32, so one shard holds at most this many tokens.
constexpr int64_t kMaxShardTokens = INT32_MAX;
// header[kShardVocabWord]: the vocabulary size the ids were made with, 0 when not recorded.
constexpr int kShardVocabWord = 3;

// The smallest version whose token type holds every id below `vocab_size`.
int32_t shard_version_for_vocab(int64_t vocab_size);
// Bytes per token of a version (2 or 4); throws cca::Error for any other version.
size_t shard_token_bytes(int32_t version);
// The largest vocabulary size a version's header can record: 65,536 (uint16 ids) or INT32_MAX.
int64_t shard_vocab_capacity(int32_t version);

// Writes one shard to `path` through `path + ".partial"`, renamed into place by finish(), so a
// crash or an error never leaves a half-written file under the final name.
class ShardWriter {
 public:
  // `vocab_size` > 0 is recorded in header[kShardVocabWord], and append() then refuses ids >= it;
  // 0 writes llm.c's header exactly. Throws cca::Error for a size the version cannot hold.
  ShardWriter(std::string path, int32_t version, int64_t vocab_size = 0);
  ~ShardWriter();  // removes the partial file unless finish() succeeded
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Throws cca::Error when an id does not fit the version's token type, is >= the recorded
  // vocabulary size, or the shard would exceed kMaxShardTokens.
  void append(const int32_t* ids, size_t count);
  void append(const std::vector<int32_t>& ids) { append(ids.data(), ids.size()); }
  int64_t tokens() const { return tokens_; }

  struct Result {
    std::string path;
    int64_t tokens = 0;
    uint64_t bytes = 0;
    uint64_t xxh64 = 0;  // of the whole file, header included
  };
  Result finish();

 private:
  void flush_buffer();

  std::string path_;
  std::string partial_path_;
  int32_t version_;
  int64_t vocab_size_;
  int fd_ = -1;
  int64_t tokens_ = 0;
  std::vector<unsigned char> buffer_;
  bool finished_ = false;
};

// A read-only memory map of one shard, validated on open.
class MappedShard {
 public:
  // Throws cca::Error naming `path` for an unreadable, truncated, oversized or foreign file.
  explicit MappedShard(std::string path);
  ~MappedShard();
  MappedShard(const MappedShard&) = delete;
  MappedShard& operator=(const MappedShard&) = delete;

  const std::string& path() const { return path_; }
  int32_t version() const { return version_; }
  int64_t tokens() const { return tokens_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // The raw header words (for inspect).
  const int32_t* header() const { return reinterpret_cast<const int32_t*>(map_); }
  // header[kShardVocabWord] as written: 0 when not recorded (llm.c's shards). Not validated on
  // open, so a damaged word never stops a load; `cca-data inspect --verify` checks it.
  int64_t header_vocab_size() const { return header()[kShardVocabWord]; }

  // Token `index` (0 <= index < tokens(), checked).
  uint32_t token(int64_t index) const;
  // Copies tokens [start, start + count) as int32; throws cca::Error when the range is outside the
  // shard, or when a token is >= `vocab_size` (when vocab_size > 0), naming file and position.
  void copy(int64_t start, int64_t count, int32_t* out, int64_t vocab_size = 0) const;
  // The first position holding a token >= vocab_size, or -1.
  int64_t find_token_at_least(int64_t vocab_size) const;
  // XXH64 of the whole file (header included), as recorded in manifests.
  uint64_t checksum() const;

 private:
  std::string path_;
  const unsigned char* map_ = nullptr;
  uint64_t file_bytes_ = 0;
  int32_t version_ = 0;
  int64_t tokens_ = 0;
};

// Describes a bad token for an error message: "<path>: token id X at position P is >= the
// vocabulary size V (...)".
std::string bad_token_message(const std::string& path, int64_t position, uint32_t id,
                              int64_t vocab_size);

}  // namespace cca::data
