#include "data/builtin.h"

#include <chrono>

#include "util/files.h"
#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

namespace cca::data {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void require_file(const std::string& path) {
  if (!files::is_regular_file(path)) {
    throw Error(
        format("{}: not found; the built-in corpus needs the Debian package dict-gcide "
               "(bash scripts/setup.sh installs it, or: apt-get install dict-gcide)",
               path));
  }
}

// Intermediate files live here until the dataset is complete.
class WorkDir {
 public:
  explicit WorkDir(const std::string& output) : dir_(files::join(output, ".builtin.partial")) {
    files::remove_tree(dir_);
    files::make_directories(dir_);
  }
  ~WorkDir() { files::remove_tree(dir_); }
  std::string operator/(const std::string& name) const { return files::join(dir_, name); }

 private:
  std::string dir_;
};

}  // namespace

BuiltinResult build_builtin(const BuiltinOptions& options) {
  BuiltinResult result;
  const std::string& output = options.output_dir;
  result.manifest_path = files::join(output, kManifestName);
  if (!options.force && files::exists(result.manifest_path)) {
    result.manifest = read_manifest(result.manifest_path);
    return result;
  }
  require_file(options.dict_path);
  require_file(options.index_path);
  files::make_directories(output);
  const WorkDir work(output);

  auto start = std::chrono::steady_clock::now();
  // Written aside and renamed, so corpus.jsonl is always complete; it is the input of the steps
  // below and stays for anyone who wants to read the text.
  const std::string corpus = files::join(output, "corpus.jsonl");
  result.corpus = write_gcide_jsonl(options.dict_path, options.index_path, work / "corpus.jsonl");
  files::rename_path(work / "corpus.jsonl", corpus);
  result.corpus_seconds = seconds_since(start);
  log::info(
      "corpus: {} GCIDE entries -> {} documents ({}) in {:.1f} s; {} entries skipped for "
      "invalid UTF-8 in the source",
      result.corpus.entries, result.corpus.documents, human_bytes(result.corpus.bytes),
      result.corpus_seconds, result.corpus.skipped_invalid);

  start = std::chrono::steady_clock::now();
  TokenizerTrainOptions tok;
  tok.output_prefix = work / "tokenizer";
  tok.vocab_size = options.vocab_size;
  tok.model_type = "bpe";
  tok.byte_fallback = true;
  tok.character_coverage = 1.0;
  tok.max_sentences = options.tokenizer_sentences;
  tok.threads = options.threads;
  DocumentReader reader({corpus}, SourceOptions{});
  const TokenizerTrainResult trained = train_tokenizer(reader, tok);
  result.tokenizer_seconds = seconds_since(start);
  log::info("tokenizer: BPE, vocabulary {}, byte fallback, from {} sampled of {} lines in {:.1f} s",
            trained.vocab_size, std::min(trained.sentences, options.tokenizer_sentences),
            trained.sentences, result.tokenizer_seconds);

  PrepareOptions prep;
  prep.inputs = {corpus};
  prep.tokenizer = trained.model_path;
  prep.output_dir = options.output_dir;
  prep.val_fraction = options.val_fraction;
  prep.shard_tokens = options.shard_tokens;
  prep.threads = options.threads;
  prep.force = true;  // the user asked for a (re)build
  prep.progress = options.progress;
  const PrepareResult prepared = prepare_dataset(prep);
  result.prepare_seconds = prepared.seconds;
  files::rename_path(trained.vocab_path, files::join(output, "tokenizer.vocab"));
  result.manifest = prepared.manifest;
  result.rebuilt = true;
  return result;
}

}  // namespace cca::data
