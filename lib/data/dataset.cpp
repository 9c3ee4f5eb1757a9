#include "data/dataset.h"

#include <glob.h>

#include <algorithm>
#include <map>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/parallel.h"

namespace cca::data {

namespace {

std::vector<std::string> glob_files(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) out.emplace_back(matches.gl_pathv[i]);
  }
  globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    throw Error(format("{}: cannot expand pattern (glob error {})", pattern, rc));
  }
  return out;
}

std::vector<std::string> folder_shards(const std::string& dir, const std::string& split) {
  const std::string manifest_path = files::join(dir, kManifestName);
  std::vector<std::string> out;
  if (files::exists(manifest_path)) {
    const Manifest m = read_manifest(manifest_path);
    for (const ShardEntry& e : m.split(split).shards) out.push_back(files::join(dir, e.file));
    if (out.empty()) throw Error(format("{}: lists no {} shards", manifest_path, split));
    return out;
  }
  for (const std::string& name : files::list_directory(dir)) {
    const std::string path = files::join(dir, name);
    const bool bin = name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0;
    if (bin && files::is_regular_file(path)) out.push_back(path);
  }
  return out;
}

std::vector<std::string> resolve_spec(const std::string& spec, const std::string& split) {
  if (spec.empty()) throw Error("no shards given (empty path)");
  std::vector<std::string> paths;
  if (files::is_directory(spec)) {
    paths = folder_shards(spec, split);
  } else if (files::exists(spec)) {
    paths.push_back(spec);
  } else if (spec.find_first_of("*?[") != std::string::npos) {
    paths = glob_files(spec);
  } else {
    throw Error(format("{}: no such shard file or folder", spec));
  }
  if (paths.empty()) throw Error(format("{}: matches no shard", spec));
  std::sort(paths.begin(), paths.end());
  return paths;
}

struct ManifestUse {
  std::shared_ptr<const Manifest> manifest;
  std::string path;
};

// Checks that a manifest's tokenizer is the one the run names and that its ids fit the model.
void check_manifest_against_run(const ManifestUse& use, const DatasetOptions& options,
                                uint64_t tokenizer_hash) {
  const Manifest& m = *use.manifest;
  if (!options.tokenizer.empty() && m.tokenizer_xxh64 != tokenizer_hash) {
    throw Error(format(
        "{}: the shards were made with a different tokenizer: the manifest records {} (xxh64 {}) "
        "but the run's tokenizer {} has xxh64 {}",
        use.path, m.tokenizer_file, hex64(m.tokenizer_xxh64), options.tokenizer,
        hex64(tokenizer_hash)));
  }
  if (options.vocab_size > 0 && m.vocab_size > options.vocab_size) {
    throw Error(format("{}: the shards' tokenizer has {} tokens but the model's vocab_size is {}",
                       use.path, m.vocab_size, options.vocab_size));
  }
}

void verify_checksums_parallel(const ShardSet& set, const std::vector<const ShardEntry*>& entries,
                               const std::vector<std::string>& manifests) {
  // A failure names the first failing shard in path order (parallel_for's promise).
  parallel_for(set.shards.size(), static_cast<size_t>(thread_count(0)), [&](size_t, size_t i) {
    if (entries[i] != nullptr) verify_shard(*set.shards[i], *entries[i], manifests[i], true);
  });
}

}  // namespace

std::string manifest_path_for_shards(const std::string& spec) {
  const std::string folder = files::is_directory(spec) ? spec : files::parent_path(spec);
  return files::join(folder, kManifestName);
}

std::string manifest_tokenizer_path(const std::string& manifest_path, const Manifest& manifest) {
  const std::string& file = manifest.tokenizer_file;
  if (!file.empty() && file[0] == '/') return file;
  return files::join(files::parent_path(manifest_path), file);
}

ShardSet open_shards(const std::string& spec, const std::string& split,
                     const DatasetOptions& options) {
  ShardSet set;
  set.spec = spec;
  set.vocab_size = options.vocab_size;
  const uint64_t tokenizer_hash = options.tokenizer.empty() ? 0 : xxh64_file(options.tokenizer);
  std::map<std::string, ManifestUse> manifests;  // by folder
  std::vector<const ShardEntry*> entries;
  std::vector<std::string> entry_manifests;
  Xxh64 fingerprint;
  for (const std::string& file : resolve_spec(spec, split)) {
    auto shard = std::make_shared<const MappedShard>(file);
    const std::string folder = files::parent_path(file);
    auto it = manifests.find(folder);
    if (it == manifests.end()) {
      ManifestUse use;
      const std::string manifest_path = files::join(folder, kManifestName);
      if (files::exists(manifest_path)) {
        use.path = manifest_path;
        use.manifest = std::make_shared<const Manifest>(read_manifest(use.path));
        check_manifest_against_run(use, options, tokenizer_hash);
        if (set.manifest && set.manifest->tokenizer_xxh64 != use.manifest->tokenizer_xxh64) {
          throw Error(format("{} and {}: the shards were made with different tokenizers",
                             set.manifest_path, use.path));
        }
        if (!set.manifest) {
          set.manifest = use.manifest;
          set.manifest_path = use.path;
        }
      } else if (!options.tokenizer.empty()) {
        log::warn("{}: no {} beside the shards, so nothing shows they were made with {}", folder,
                  kManifestName, options.tokenizer);
      }
      it = manifests.emplace(folder, use).first;
    }
    const ShardEntry* entry = nullptr;
    if (it->second.manifest) {
      entry = it->second.manifest->find_shard(files::file_name(file));
      if (entry == nullptr) {
        throw Error(format("{}: not listed in {} (a stale shard from another run?)", file,
                           it->second.path));
      }
      verify_shard(*shard, *entry, it->second.path, /*checksum=*/false);
    }
    const std::string name = files::file_name(file);
    fingerprint.update(name.data(), name.size() + 1);
    const int64_t count = shard->tokens();
    fingerprint.update(&count, sizeof(count));
    set.tokens += count;
    entries.push_back(entry);
    entry_manifests.push_back(it->second.path);
    set.shards.push_back(std::move(shard));
  }
  if (options.verify_checksums) verify_checksums_parallel(set, entries, entry_manifests);
  set.fingerprint = fingerprint.digest();
  return set;
}

}  // namespace cca::data
