#include "data/manifest.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "data/shard.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/hash.h"
#include "util/json.h"

namespace cca::data {
namespace {

Json shard_json(const ShardEntry& entry) {
  return Json(Json::Object{{"file", entry.file},
                           {"tokens", entry.tokens},
                           {"bytes", static_cast<int64_t>(entry.bytes)},
                           {"xxh64", hex64(entry.xxh64)}});
}

Json split_json(const SplitInfo& split) {
  Json::Array shards;
  for (const ShardEntry& entry : split.shards) shards.push_back(shard_json(entry));
  return Json(Json::Object{{"documents", split.documents},
                           {"tokens", split.tokens},
                           {"shards", Json(std::move(shards))}});
}

Json provenance_json(const std::vector<SourceProvenance>& provenance) {
  Json::Array out;
  for (const SourceProvenance& p : provenance) {
    out.push_back(Json(Json::Object{{"name", p.name},
                                    {"registry", p.registry},
                                    {"packages", p.packages},
                                    {"licence", p.licence},
                                    {"documents", p.documents},
                                    {"tokens", p.tokens},
                                    {"bytes", p.bytes},
                                    {"duplicate_bytes", p.duplicate_bytes}}));
  }
  return Json(std::move(out));
}

void parse_provenance(const Json& json, Manifest& m) {
  const Json::Array& entries = json.as_array("provenance");
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string what = format("provenance[{}]", i);
    const Json& e = entries[i];
    SourceProvenance p;
    p.name = e.at("name", what).as_string(what + ".name");
    p.registry = e.at("registry", what).as_string(what + ".registry");
    p.packages = e.at("packages", what).as_string(what + ".packages");
    p.licence = e.at("licence", what).as_string(what + ".licence");
    p.documents = e.at("documents", what).as_int(what + ".documents", 0);
    p.tokens = e.at("tokens", what).as_int(what + ".tokens", 0);
    p.bytes = e.at("bytes", what).as_int(what + ".bytes", 0);
    p.duplicate_bytes = e.at("duplicate_bytes", what).as_int(what + ".duplicate_bytes", 0);
    m.provenance.push_back(std::move(p));
  }
}

uint64_t parse_hash_field(const Json& value, const std::string& what) {
  uint64_t hash = 0;
  if (!parse_hex64(value.as_string(what), hash)) throw Error(what + " must be 16 hex digits");
  return hash;
}

// A shard's file name may not lead out of the manifest's folder.
std::string parse_file_name(const Json& value, const std::string& what) {
  const std::string& name = value.as_string(what);
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Error(format("{} \"{}\" must be a plain file name in the manifest's folder", what,
                       name.substr(0, 200)));
  }
  return name;
}

ShardEntry parse_shard(const Json& json, const std::string& what, int32_t version) {
  ShardEntry entry;
  entry.file = parse_file_name(json.at("file", what), what + ".file");
  entry.tokens = json.at("tokens", what).as_int(what + ".tokens", 0, kMaxShardTokens);
  entry.bytes = static_cast<uint64_t>(json.at("bytes", what).as_int(what + ".bytes", 0));
  entry.xxh64 = parse_hash_field(json.at("xxh64", what), what + ".xxh64");
  const uint64_t expected =
      kShardHeaderBytes + static_cast<uint64_t>(entry.tokens) * shard_token_bytes(version);
  if (entry.bytes != expected) {
    throw Error(format("{}.bytes is {} but {} tokens of version {} take {} bytes", what,
                       entry.bytes, entry.tokens, version, expected));
  }
  return entry;
}

SplitInfo parse_split(const Json& json, const std::string& what, int32_t version) {
  SplitInfo split;
  split.documents = json.at("documents", what).as_int(what + ".documents", 0);
  split.tokens = json.at("tokens", what).as_int(what + ".tokens", 0);
  const Json::Array& shards = json.at("shards", what).as_array(what + ".shards");
  int64_t sum = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    split.shards.push_back(parse_shard(shards[i], format("{}.shards[{}]", what, i), version));
    sum += split.shards.back().tokens;  // each <= INT32_MAX, so no overflow for sane counts
    if (sum < 0) throw Error(what + ": token counts overflow");
  }
  if (sum != split.tokens) {
    throw Error(format("{}.tokens is {} but its shards hold {} tokens", what, split.tokens, sum));
  }
  return split;
}

void parse_tokenizer(const Json& json, Manifest& m) {
  m.tokenizer_file = json.at("file", "tokenizer").as_string("tokenizer.file");
  if (m.tokenizer_file.empty()) throw Error("tokenizer.file must not be empty");
  m.tokenizer_xxh64 = parse_hash_field(json.at("xxh64", "tokenizer"), "tokenizer.xxh64");
  m.vocab_size = json.at("vocab_size", "tokenizer").as_int("tokenizer.vocab_size", 1, INT32_MAX);
  m.bos_id = static_cast<int32_t>(
      json.at("bos_id", "tokenizer").as_int("tokenizer.bos_id", -1, m.vocab_size - 1));
  m.eos_id = static_cast<int32_t>(
      json.at("eos_id", "tokenizer").as_int("tokenizer.eos_id", -1, m.vocab_size - 1));
}

void parse_body(const Json& root, Manifest& m) {
  root.as_object("the manifest");
  const std::string& kind = root.at("format", "").as_string("format");
  if (kind != "cca-data-manifest") {
    throw Error(format("format is \"{}\", expected \"cca-data-manifest\"", kind.substr(0, 100)));
  }
  const int64_t version = root.at("version", "").as_int("version");
  if (version != kManifestFormatVersion) {
    throw Error(format("manifest version {} is not supported (this build reads version {})",
                       version, kManifestFormatVersion));
  }
  parse_tokenizer(root.at("tokenizer", ""), m);
  m.separator = root.at("separator", "").as_string("separator");
  if (m.separator != "bos" && m.separator != "eos") {
    throw Error("separator must be \"bos\" or \"eos\"");
  }
  m.shard_version = static_cast<int32_t>(
      root.at("shard_version", "").as_int("shard_version", kShardVersionU16, kShardVersionU32));
  if (m.shard_version < shard_version_for_vocab(m.vocab_size)) {
    throw Error(
        format("shard_version {} cannot hold a vocabulary of {}", m.shard_version, m.vocab_size));
  }
  const Json& splits = root.at("splits", "");
  m.train = parse_split(splits.at("train", "splits"), "splits.train", m.shard_version);
  m.val = parse_split(splits.at("val", "splits"), "splits.val", m.shard_version);
  if (const Json* source = root.find("source")) {
    for (const Json& s : source->at("inputs", "source").as_array("source.inputs")) {
      m.sources.push_back(s.as_string("source.inputs[]"));
    }
    m.source_bytes = source->at("bytes", "source").as_int("source.bytes", 0);
    m.val_fraction = source->at("val_fraction", "source").as_double("source.val_fraction");
    m.skipped_invalid_utf8 =
        source->at("skipped_invalid_utf8", "source").as_int("source.skipped_invalid_utf8", 0);
    m.skipped_empty = source->at("skipped_empty", "source").as_int("source.skipped_empty", 0);
  }
  if (const Json* provenance = root.find("provenance")) parse_provenance(*provenance, m);
}

}  // namespace

const SplitInfo& Manifest::split(const std::string& name) const {
  if (name == "train") return train;
  if (name == "val") return val;
  throw Error("unknown split \"" + name + "\" (train or val)");
}

const ShardEntry* Manifest::find_shard(const std::string& file_name) const {
  for (const SplitInfo* split : {&train, &val}) {
    for (const ShardEntry& entry : split->shards) {
      if (entry.file == file_name) return &entry;
    }
  }
  return nullptr;
}

std::string render_manifest(const Manifest& m) {
  Json::Array inputs;
  for (const std::string& s : m.sources) inputs.emplace_back(s);
  Json::Object object{
      {"format", "cca-data-manifest"},
      {"version", kManifestFormatVersion},
      {"tokenizer", Json(Json::Object{{"file", m.tokenizer_file},
                                      {"xxh64", hex64(m.tokenizer_xxh64)},
                                      {"vocab_size", m.vocab_size},
                                      {"bos_id", m.bos_id},
                                      {"eos_id", m.eos_id}})},
      {"separator", m.separator},
      {"shard_version", m.shard_version},
      {"splits", Json(Json::Object{{"train", split_json(m.train)}, {"val", split_json(m.val)}})},
      {"source", Json(Json::Object{{"inputs", Json(std::move(inputs))},
                                   {"bytes", m.source_bytes},
                                   {"val_fraction", m.val_fraction},
                                   {"skipped_invalid_utf8", m.skipped_invalid_utf8},
                                   {"skipped_empty", m.skipped_empty}})}};
  // Only corpus builds carry it, so every other manifest renders exactly as before.
  if (!m.provenance.empty()) object["provenance"] = provenance_json(m.provenance);
  return Json(std::move(object)).dump(2) + "\n";
}

void write_manifest(const Manifest& manifest, const std::string& path) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(format("{}: cannot create: {}", partial, std::strerror(errno)));
    out << render_manifest(manifest);
    out.flush();
    if (!out) throw Error(format("{}: write failed", partial));
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    throw Error(format("{}: cannot rename from {}: {}", path, partial, std::strerror(errno)));
  }
}

Manifest parse_manifest(const std::string& text, const std::string& path) {
  Manifest m;
  try {
    parse_body(parse_json(text, path), m);
  } catch (const Error& e) {
    const std::string what = e.what();
    // parse_json already names the file; field errors get it prefixed here.
    if (what.rfind(path + ":", 0) == 0) throw;
    throw Error(format("{}: {}", path, what));
  }
  return m;
}

Manifest read_manifest(const std::string& path) {
  return parse_manifest(files::read_file(path, "manifest", 64u << 20), path);
}

void verify_shard(const MappedShard& shard, const ShardEntry& entry,
                  const std::string& manifest_path, bool checksum) {
  if (shard.tokens() != entry.tokens || shard.file_bytes() != entry.bytes) {
    throw Error(format("{}: holds {} tokens ({} bytes) but {} records {} tokens ({} bytes)",
                       shard.path(), shard.tokens(), shard.file_bytes(), manifest_path,
                       entry.tokens, entry.bytes));
  }
  if (!checksum) return;
  const uint64_t actual = shard.checksum();
  if (actual != entry.xxh64) {
    throw Error(
        format("{}: checksum mismatch: the file's xxh64 is {} but {} records {} (the shard changed "
               "after it was written, or is corrupt)",
               shard.path(), hex64(actual), manifest_path, hex64(entry.xxh64)));
  }
}

}  // namespace cca::data
