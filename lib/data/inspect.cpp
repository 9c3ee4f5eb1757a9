#include "data/inspect.h"

#include <cmath>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "util/hash.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace cca::data {

namespace {

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return (n < 0 ? "-" : "") + digits;
}

struct Context {
  const InspectOptions& options;
  std::shared_ptr<const Manifest> manifest;
  std::string manifest_path;
  std::unique_ptr<Tokenizer> tokenizer;
  InspectReport report;

  void line(const std::string& text) { report.text += text + "\n"; }
  void problem(const std::string& text) {
    ++report.problems;
    line("  PROBLEM: " + text);
  }
};

void load_manifest(Context& ctx, const std::string& dir) {
  const std::string path = files::join(dir, kManifestName);
  if (!files::exists(path)) return;
  ctx.manifest_path = path;
  ctx.manifest = std::make_shared<const Manifest>(read_manifest(ctx.manifest_path));
}

void load_tokenizer(Context& ctx) {
  std::string path = ctx.options.tokenizer;
  if (path.empty() && ctx.manifest) {
    path = manifest_tokenizer_path(ctx.manifest_path, *ctx.manifest);
    if (!files::exists(path)) return;
  }
  if (path.empty()) return;
  ctx.tokenizer = std::make_unique<Tokenizer>(path);
  if (ctx.manifest && ctx.tokenizer->file_xxh64() != ctx.manifest->tokenizer_xxh64) {
    ctx.problem(
        format("the shards were made with a different tokenizer: {} records xxh64 {}, "
               "{} has {}",
               ctx.manifest_path, hex64(ctx.manifest->tokenizer_xxh64), path,
               hex64(ctx.tokenizer->file_xxh64())));
  }
}

// The vocabulary size a shard's ids must stay below, and where it comes from: the tokenizer
// (--tokenizer or the manifest's), else the size recorded in the shard's header, else the
// manifest's; {0, ""} when none is known.
struct VocabLimit {
  int64_t size = 0;
  std::string source;
};

VocabLimit vocab_limit(const Context& ctx, const MappedShard& shard) {
  if (ctx.tokenizer) return {ctx.tokenizer->vocab_size(), "the tokenizer"};
  const int64_t recorded = shard.header_vocab_size();
  if (recorded > 0 && recorded <= shard_vocab_capacity(shard.version())) {
    return {recorded, "the shard's header"};
  }
  if (ctx.manifest) return {ctx.manifest->vocab_size, ctx.manifest_path};
  return {};
}

// The header's vocabulary word: in range for the version, and (when recorded) the same as the
// tokenizer's or manifest's vocabulary.
void check_header_vocab(Context& ctx, const MappedShard& shard) {
  const int64_t recorded = shard.header_vocab_size();
  if (recorded < 0 || recorded > shard_vocab_capacity(shard.version())) {
    ctx.problem(
        format("{}: header word {} (vocabulary size) is {}, outside 0 .. {} for a "
               "version-{} shard",
               shard.path(), kShardVocabWord, recorded, shard_vocab_capacity(shard.version()),
               shard.version()));
    return;
  }
  if (recorded == 0) return;
  const int64_t other = ctx.tokenizer  ? ctx.tokenizer->vocab_size()
                        : ctx.manifest ? ctx.manifest->vocab_size
                                       : 0;
  if (other > 0 && other != recorded) {
    ctx.problem(format("{}: the header records vocabulary size {} but {} has {}", shard.path(),
                       recorded, ctx.tokenizer ? "the tokenizer" : ctx.manifest_path, other));
  }
}

void show_leading_tokens(Context& ctx, const MappedShard& shard) {
  const int64_t n = std::min(ctx.options.decode_tokens, shard.tokens());
  if (n <= 0) return;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  shard.copy(0, n, ids.data());
  std::string text = format("  first {} tokens:", n);
  for (int32_t id : ids) text += " " + std::to_string(id);
  ctx.line(text);
  if (!ctx.tokenizer) {
    ctx.line("  (no tokenizer to decode with: pass --tokenizer)");
    return;
  }
  const int64_t vocab = ctx.tokenizer->vocab_size();
  for (int32_t id : ids) {
    if (id >= vocab) {
      ctx.line(format("  (cannot decode: id {} is outside the tokenizer's {} ids)", id, vocab));
      return;
    }
  }
  ctx.line("  decoded: " + ctx.tokenizer->decode(ids));
}

void check_shard(Context& ctx, const MappedShard& shard, bool detailed) {
  const ShardEntry* entry =
      ctx.manifest ? ctx.manifest->find_shard(files::file_name(shard.path())) : nullptr;
  if (ctx.manifest && entry == nullptr) {
    ctx.problem(format("{} is not listed in {}", shard.path(), ctx.manifest_path));
  }
  if (detailed || ctx.options.verify) {
    const uint64_t sum = shard.checksum();
    std::string status =
        entry ? (sum == entry->xxh64 ? "matches the manifest" : "MISMATCH") : "no manifest entry";
    ctx.line(format("  xxh64 {} ({})", hex64(sum), status));
    if (entry && sum != entry->xxh64) {
      ctx.problem(format("{}: checksum mismatch: the manifest records {}", shard.path(),
                         hex64(entry->xxh64)));
    }
  }
  if (entry && (entry->tokens != shard.tokens())) {
    ctx.problem(format("{} holds {} tokens but the manifest records {}", shard.path(),
                       shard.tokens(), entry->tokens));
  }
  if (!ctx.options.verify) return;
  check_header_vocab(ctx, shard);
  const VocabLimit vocab = vocab_limit(ctx, shard);
  if (vocab.size == 0) {
    ctx.line(
        "  token ids: not checked: no tokenizer, no manifest and no vocabulary size in the "
        "header (pass --tokenizer)");
    return;
  }
  const int64_t bad = shard.find_token_at_least(vocab.size);
  if (bad >= 0) {
    ctx.problem(format("{}: token id {} at position {} is >= the vocabulary size {} (from {})",
                       shard.path(), shard.token(bad), bad, vocab.size, vocab.source));
  } else {
    ctx.line(format("  token ids: all below the vocabulary size {} (from {})", vocab.size,
                    vocab.source));
  }
}

void inspect_file(Context& ctx, const std::string& path) {
  load_manifest(ctx, files::parent_path(path));
  const MappedShard shard(path);
  ctx.line(path);
  load_tokenizer(ctx);
  const int32_t* header = shard.header();
  int nonzero = 0;
  for (int i = kShardVocabWord + 1; i < kShardHeaderInts; ++i) nonzero += header[i] != 0;
  const int64_t vocab = shard.header_vocab_size();
  ctx.line(format(
      "  header: magic {}, version {} ({} tokens), {} tokens, vocabulary {}; reserved words {}",
      header[0], header[1], shard.version() == kShardVersionU16 ? "uint16" : "uint32",
      grouped(header[2]), vocab == 0 ? "not recorded" : grouped(vocab),
      nonzero == 0 ? "all zero" : format("{} non-zero", nonzero)));
  ctx.line(format("  size: {} bytes ({})", grouped(static_cast<int64_t>(shard.file_bytes())),
                  human_bytes(static_cast<double>(shard.file_bytes()))));
  ctx.line(ctx.manifest ? "  manifest: " + ctx.manifest_path
                        : "  manifest: none (plain llm.c shard)");
  check_shard(ctx, shard, /*detailed=*/true);
  show_leading_tokens(ctx, shard);
}

void count_tokens(const MappedShard& shard, std::vector<int64_t>& counts) {
  for (int64_t i = 0; i < shard.tokens(); ++i) {
    const uint32_t token = shard.token(i);
    if (token >= counts.size()) counts.resize(token + 1, 0);
    ++counts[token];
  }
}

void show_entropy(Context& ctx, const std::vector<int64_t>& counts) {
  const double nats = unigram_entropy(counts);
  ctx.line(
      format("  unigram entropy: {:.3f} nats/token ({:.3f} bits): a validation loss below "
             "this means the model uses context",
             nats, nats / std::log(2.0)));
}

void inspect_split(Context& ctx, const std::string& dir, const std::string& name) {
  const SplitInfo& split = ctx.manifest->split(name);
  ctx.line(format("{}: {} documents, {} tokens in {} shard(s)", name, grouped(split.documents),
                  grouped(split.tokens), split.shards.size()));
  std::vector<int64_t> counts;
  for (const ShardEntry& entry : split.shards) {
    const std::string path = files::join(dir, entry.file);
    try {
      const MappedShard shard(path);
      ctx.line(format("  {}  {} tokens", entry.file, grouped(shard.tokens())));
      check_shard(ctx, shard, /*detailed=*/false);
      if (ctx.options.entropy) count_tokens(shard, counts);
    } catch (const Error& e) {
      ctx.problem(e.what());
    }
  }
  if (ctx.options.entropy) show_entropy(ctx, counts);
}

void inspect_folder(Context& ctx, const std::string& path) {
  load_manifest(ctx, path);
  if (!ctx.manifest) {
    // No manifest: every *.bin, header checks only.
    const ShardSet set = open_shards(path, "train", DatasetOptions{"", 0, false});
    ctx.line(format("{}: no {}; {} shard(s), {} tokens", path, kManifestName, set.shards.size(),
                    grouped(set.tokens)));
    for (const auto& shard : set.shards) {
      ctx.line(format("  {}  version {}, {} tokens", files::file_name(shard->path()),
                      shard->version(), grouped(shard->tokens())));
      if (ctx.options.verify) check_shard(ctx, *shard, false);
    }
    if (ctx.options.entropy) {
      std::vector<int64_t> counts;
      for (const auto& shard : set.shards) count_tokens(*shard, counts);
      show_entropy(ctx, counts);
    }
    if (!set.shards.empty()) show_leading_tokens(ctx, *set.shards.front());
    return;
  }
  load_tokenizer(ctx);
  const Manifest& m = *ctx.manifest;
  ctx.line(ctx.manifest_path);
  ctx.line(format("  tokenizer: {} (xxh64 {}), vocabulary {}, BOS {}, EOS {}", m.tokenizer_file,
                  hex64(m.tokenizer_xxh64), m.vocab_size, m.bos_id, m.eos_id));
  ctx.line(
      format("  documents separated by {}; shard version {}; source {} ({}), {} documents "
             "skipped for invalid UTF-8",
             m.separator == "bos" ? "a leading BOS" : "a trailing EOS", m.shard_version,
             m.sources.empty() ? "?" : m.sources.front(), human_bytes(m.source_bytes),
             m.skipped_invalid_utf8));
  inspect_split(ctx, path, "train");
  inspect_split(ctx, path, "val");
  if (!m.train.shards.empty()) {
    try {
      const MappedShard first(files::join(path, m.train.shards.front().file));
      show_leading_tokens(ctx, first);
    } catch (const Error&) {
      // already reported as a problem above
    }
  }
}

}  // namespace

double unigram_entropy(const std::vector<int64_t>& counts) {
  double total = 0;
  for (int64_t c : counts) total += static_cast<double>(c);
  double entropy = 0;
  for (int64_t c : counts) {
    if (c > 0) entropy -= static_cast<double>(c) / total * std::log(static_cast<double>(c) / total);
  }
  return entropy;
}

InspectReport inspect_path(const std::string& path, const InspectOptions& options) {
  if (options.decode_tokens < 0) throw Error("--decode must be >= 0");
  Context ctx{options, nullptr, "", nullptr, {}};
  if (files::is_directory(path)) {
    inspect_folder(ctx, path);
  } else if (files::exists(path)) {
    inspect_file(ctx, path);
  } else {
    throw Error(format("{}: no such file or folder", path));
  }
  if (options.verify) {
    ctx.line(ctx.report.problems == 0 ? "verify: OK"
                                      : format("verify: {} problem(s)", ctx.report.problems));
  }
  return ctx.report;
}

}  // namespace cca::data
