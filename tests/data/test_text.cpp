// Text sources, tokenizer training and `prepare`: text -> shards -> tokens -> text round trips,
// and the errors for bad inputs.
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include "data/dataset.h"
#include "data/gcide.h"
#include "util/hash.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "data_test_util.h"

namespace cca::data {
namespace {

namespace fs = std::filesystem;
using datatest::ScratchDir;
using datatest::write_file;

std::vector<Document> read_documents(const std::vector<std::string>& inputs,
                                     SourceOptions options = {}) {
  DocumentReader reader(resolve_inputs(inputs), options);
  std::vector<Document> docs;
  Document doc;
  while (reader.next(doc)) docs.push_back(doc);
  return docs;
}

TEST(Utf8, ValidatorAcceptsValidAndFindsInvalid) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x92"
                              "cd"),
            2u);                                         // Windows-1252 quote
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xE2\x82"), 2u);        // truncated sequence
}

TEST(TextSource, FilesFoldersGlobsAndJsonl) {
  ScratchDir dir;
  write_file(dir / "a/one.txt", "first file\n");
  write_file(dir / "a/sub/two.txt", "second file");
  write_file(dir / "a/.hidden", "never read");
  write_file(dir / "b.jsonl", "{\"body\": \"json one\", \"id\": 1}\n\n{\"body\": \"json two\"}\n");
  write_file(dir / "c1.txt", "glob one");
  write_file(dir / "c2.txt", "glob two");
  SourceOptions options;
  options.jsonl_field = "body";
  const auto docs =
      read_documents({dir / "a", dir / "b.jsonl", dir / "c*.txt", dir / "c1.txt"}, options);
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"first file\n", "second file", "json one", "json two",
                                             "glob one", "glob two"}));
  EXPECT_EQ(docs[3].origin, dir / "b.jsonl" + ":3");
}

TEST(TextSource, ParagraphAndLineUnits) {
  ScratchDir dir;
  write_file(dir / "t.txt", "para one\nstill one\n\n\npara two\r\n");
  SourceOptions options;
  options.text_unit = TextUnit::paragraph;
  auto docs = read_documents({dir / "t.txt"}, options);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "para one\nstill one");
  EXPECT_EQ(docs[1].text, "para two");
  options.text_unit = TextUnit::line;
  EXPECT_EQ(read_documents({dir / "t.txt"}, options).size(), 3u);
}

TEST(TextSource, InvalidUtf8SkippedWithCountOrError) {
  ScratchDir dir;
  write_file(dir / "t.jsonl",
             "{\"text\": \"good\"}\n{\"text\": \"bad \x92 quote\"}\n{\"text\": \"\\ud800\"}\n");
  DocumentReader reader({dir / "t.jsonl"}, SourceOptions{});
  Document doc;
  ASSERT_TRUE(reader.next(doc));
  EXPECT_EQ(doc.text, "good");
  EXPECT_FALSE(reader.next(doc));
  EXPECT_EQ(reader.counters().skipped_invalid_utf8, 2);
  EXPECT_NE(reader.counters().first_invalid.find("t.jsonl:2"), std::string::npos);

  SourceOptions strict;
  strict.invalid_utf8 = InvalidUtf8::error;
  EXPECT_DATA_ERROR(read_documents({dir / "t.jsonl"}, strict), "t.jsonl:2", "invalid UTF-8",
                    "byte 4", "0x92");
}

TEST(TextSource, BadInputsNameTheFile) {
  ScratchDir dir;
  EXPECT_DATA_ERROR(resolve_inputs({dir / "nope.txt"}), "nope.txt", "no such file");
  EXPECT_DATA_ERROR(resolve_inputs({dir / "*.none"}), "*.none", "matches no file");
  fs::create_directories(dir / "empty");
  EXPECT_DATA_ERROR(resolve_inputs({dir / "empty"}), "empty", "no (non-hidden) files");
  EXPECT_DATA_ERROR(resolve_inputs({}), "no input");
  write_file(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 5}\n");
  EXPECT_DATA_ERROR(read_documents({dir / "bad.jsonl"}), "bad.jsonl:2", "not a string");
  write_file(dir / "bad2.jsonl", "{\"other\": \"x\"}\n");
  EXPECT_DATA_ERROR(read_documents({dir / "bad2.jsonl"}), "bad2.jsonl:1", "no field \"text\"",
                    "--jsonl-field");
  write_file(dir / "bad3.jsonl", "{\"text\": \"x\"\n");
  EXPECT_DATA_ERROR(read_documents({dir / "bad3.jsonl"}), "bad3.jsonl:1", "invalid JSON");
  write_file(dir / "locked.txt", "x");
  fs::permissions(dir / "locked.txt", fs::perms::none);
  if (::geteuid() != 0) {  // root reads anything
    EXPECT_DATA_ERROR(read_documents({dir / "locked.txt"}), "locked.txt", "cannot open");
  }
}

TEST(Tokenizer, RoundTripsTextExactly) {
  const Tokenizer tok(datatest::tiny_tokenizer_path());
  EXPECT_GT(tok.vocab_size(), 300);
  EXPECT_LE(tok.vocab_size(), 400);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_TRUE(tok.byte_fallback());
  for (const std::string& text :
       {std::string("The river is old.\nA  bird,\tspeaks 1913!"), std::string(" leading space"),
        std::string("caf\xC3\xA9 \xE2\x82\xAC unseen \xF0\x9F\x98\x80 chars")}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
  EXPECT_DATA_ERROR(tok.decode({1, 5000}), "token id 5000");
}

std::vector<std::string> awkward_texts() {
  auto texts = datatest::make_documents(40, 12);
  for (const char* t : {"", " ", "  ", "x ", " x", "a  b   c ", "\tindented\n\n  line\r\n",
                        "caf\xC3\xA9  \xF0\x9F\x98\x80 end ", "(1913) [Webster] --Bp.  Hall."}) {
    texts.emplace_back(t);
  }
  return texts;
}

TEST(Tokenizer, WordCacheGivesTheSameIdsAsPlainEncoding) {
  const Tokenizer tok(datatest::tiny_tokenizer_path());
  ASSERT_TRUE(tok.word_cache_safe());
  EncodeCache cache;
  for (int round = 0; round < 2; ++round) {  // cold, then warm cache
    for (const std::string& text : awkward_texts()) {
      std::vector<int32_t> cached;
      tok.encode_cached(text, cached, cache);
      ASSERT_EQ(cached, tok.encode(text)) << "\"" << text << "\"";
    }
  }
  EXPECT_GT(cache.size(), 20u);
}

// Pieces that span words (a model trained without splitting at spaces) make the cut unsafe: the
// tokenizer must notice and encode_cached must fall back to plain encoding.
TEST(Tokenizer, WordCacheOffWhenPiecesSpanWords) {
  ScratchDir dir;
  write_file(dir / "corpus.txt", [] {
    std::string text;
    for (const auto& doc : datatest::make_documents(300, 21)) text += doc + "\n";
    return text;
  }());
  const auto status = sentencepiece::SentencePieceTrainer::Train({{"input", dir / "corpus.txt"},
                                                                  {"model_prefix", dir / "span"},
                                                                  {"vocab_size", "300"},
                                                                  {"model_type", "bpe"},
                                                                  {"split_by_whitespace", "false"},
                                                                  {"num_threads", "1"}});
  ASSERT_TRUE(status.ok()) << status.ToString();
  const Tokenizer tok(dir / "span.model");
  EXPECT_FALSE(tok.word_cache_safe());
  EncodeCache cache;
  for (const std::string& text : awkward_texts()) {
    std::vector<int32_t> cached;
    tok.encode_cached(text, cached, cache);
    ASSERT_EQ(cached, tok.encode(text)) << "\"" << text << "\"";
  }
  EXPECT_EQ(cache.size(), 0u);
}

TEST(Tokenizer, BadModelAndOptionsAreErrors) {
  ScratchDir dir;
  EXPECT_DATA_ERROR(Tokenizer(dir / "none.model"), "none.model", "cannot open");
  write_file(dir / "junk.model", "this is not a protobuf");
  EXPECT_DATA_ERROR(Tokenizer(dir / "junk.model"), "junk.model", "not a SentencePiece model");
  write_file(dir / "t.txt", "some text");
  DocumentReader reader({dir / "t.txt"}, SourceOptions{});
  TokenizerTrainOptions options;
  options.output_prefix = dir / "m";
  options.vocab_size = 100;
  options.byte_fallback = true;
  EXPECT_DATA_ERROR(train_tokenizer(reader, options), "vocabulary size 100", "byte fallback");
  options.model_type = "wordpiece";
  EXPECT_DATA_ERROR(train_tokenizer(reader, options), "wordpiece");
}

TEST(Tokenizer, EmptyCorpusIsAnError) {
  ScratchDir dir;
  write_file(dir / "blank.txt", "  \n\n");
  DocumentReader reader({dir / "blank.txt"}, SourceOptions{});
  TokenizerTrainOptions options;
  options.output_prefix = dir / "m";
  options.vocab_size = 300;
  EXPECT_DATA_ERROR(train_tokenizer(reader, options), "empty corpus");
}

PrepareOptions prepare_options(const ScratchDir& dir, const std::vector<std::string>& docs) {
  write_file(dir / "corpus.jsonl", datatest::jsonl_of(docs));
  PrepareOptions options;
  options.inputs = {dir / "corpus.jsonl"};
  options.tokenizer = datatest::tiny_tokenizer_path();
  options.output_dir = dir / "out";
  options.val_fraction = 0.1;
  options.shard_tokens = 2000;
  options.threads = 3;
  options.progress = false;
  return options;
}

// Reads a split back as documents: split the token stream at BOS and decode each piece.
std::vector<std::string> decode_split(const std::string& dir, const Manifest& m,
                                      const SplitInfo& split) {
  const Tokenizer tok(manifest_tokenizer_path(dir + "/manifest.json", m));
  std::vector<int32_t> stream;
  for (const ShardEntry& e : split.shards) {
    const MappedShard shard(dir + "/" + e.file);
    EXPECT_EQ(shard.header_vocab_size(), m.vocab_size) << e.file;  // recorded for inspect
    const size_t at = stream.size();
    stream.resize(at + static_cast<size_t>(shard.tokens()));
    shard.copy(0, shard.tokens(), stream.data() + at, m.vocab_size);
  }
  std::vector<std::string> docs;
  std::vector<int32_t> current;
  for (size_t i = 0; i <= stream.size(); ++i) {
    if (i == stream.size() || stream[i] == m.bos_id) {
      if (i > 0) docs.push_back(tok.decode(current));
      current.clear();
    } else {
      current.push_back(stream[i]);
    }
  }
  return docs;
}

TEST(Prepare, TextToShardsToTextRoundTrip) {
  ScratchDir dir;
  const auto docs = datatest::make_documents(60, 3);
  const PrepareResult r = prepare_dataset(prepare_options(dir, docs));
  const Manifest m = read_manifest(r.manifest_path);
  EXPECT_EQ(m.train.documents + m.val.documents, 60);
  EXPECT_EQ(m.val.documents, 6);  // every 10th document
  EXPECT_GT(m.train.shards.size(), 1u);
  for (const ShardEntry& e : m.train.shards) EXPECT_LE(e.tokens, 2000);
  EXPECT_EQ(m.tokenizer_xxh64, xxh64_file(datatest::tiny_tokenizer_path()));
  std::vector<std::string> train, val;
  for (int i = 0; i < 60; ++i) (is_validation_document(i, 0.1) ? val : train).push_back(docs[i]);
  EXPECT_EQ(decode_split(dir / "out", m, m.train), train);
  EXPECT_EQ(decode_split(dir / "out", m, m.val), val);
  // The shards open through the loader's path, checksums included.
  const ShardSet set = open_shards(dir / "out", "train");
  EXPECT_EQ(set.tokens, m.train.tokens);
  EXPECT_FALSE(fs::exists(dir / "out/.prepare.partial"));
}

TEST(Prepare, OutputDoesNotDependOnThreadCount) {
  ScratchDir dir;
  auto options = prepare_options(dir, datatest::make_documents(80, 4));
  options.threads = 1;
  prepare_dataset(options);
  const std::string one = datatest::read_bytes(dir / "out/manifest.json");
  options.threads = 4;
  options.force = true;
  prepare_dataset(options);
  EXPECT_EQ(datatest::read_bytes(dir / "out/manifest.json"), one);
}

TEST(Prepare, RefusesToOverwriteWithoutForceAndKeepsOldDataOnFailure) {
  ScratchDir dir;
  auto options = prepare_options(dir, datatest::make_documents(30, 5));
  prepare_dataset(options);
  const std::string before = datatest::read_bytes(dir / "out/manifest.json");
  EXPECT_DATA_ERROR(prepare_dataset(options), "already holds a dataset", "--force");
  // A failing forced rebuild (empty corpus) leaves the previous dataset as it was.
  write_file(dir / "blank.txt", "\n  \n");
  options.inputs = {dir / "blank.txt"};
  options.force = true;
  EXPECT_DATA_ERROR(prepare_dataset(options), "empty corpus");
  EXPECT_EQ(datatest::read_bytes(dir / "out/manifest.json"), before);
  EXPECT_NO_THROW(open_shards(dir / "out", "train"));
}

TEST(Prepare, BadInputsAreClearErrors) {
  ScratchDir dir;
  auto options = prepare_options(dir, datatest::make_documents(5, 6));
  options.val_fraction = 0.1;  // 5 documents: no 10th one for validation
  EXPECT_DATA_ERROR(prepare_dataset(options), "5 documents are too few", "--val-fraction");
  options.val_fraction = 0;
  options.tokenizer = dir / "missing.model";
  EXPECT_DATA_ERROR(prepare_dataset(options), "missing.model", "cannot open");
  options.tokenizer = datatest::tiny_tokenizer_path();
  options.inputs = {dir / "missing.txt"};
  EXPECT_DATA_ERROR(prepare_dataset(options), "missing.txt");
  write_file(dir / "bad.txt", "caf\xE9 in latin-1");
  options.inputs = {dir / "bad.txt"};
  options.source.invalid_utf8 = InvalidUtf8::error;
  EXPECT_DATA_ERROR(prepare_dataset(options), "bad.txt", "invalid UTF-8");
  options.source.invalid_utf8 = InvalidUtf8::skip;
  EXPECT_DATA_ERROR(prepare_dataset(options), "empty corpus", "1 with invalid UTF-8");
  options.shard_tokens = 0;
  EXPECT_DATA_ERROR(prepare_dataset(options), "shard size 0");
}

TEST(Prepare, SkippedInvalidDocumentsAreCountedInTheManifest) {
  ScratchDir dir;
  auto options = prepare_options(dir, datatest::make_documents(20, 8));
  write_file(dir / "extra.txt", "bad \xFF byte");
  options.inputs.push_back(dir / "extra.txt");
  const auto r = prepare_dataset(options);
  EXPECT_EQ(r.manifest.skipped_invalid_utf8, 1);
  EXPECT_EQ(r.documents, 20);
}

TEST(Progress, RendersRateAndEta) {
  const std::string line = prepare_progress_text(50 << 20, 100 << 20, 2000000, 10.0);
  EXPECT_NE(line.find("50.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("5.00 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("200.0K tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:10"), std::string::npos) << line;
}

TEST(Gcide, CleansEntryMarkup) {
  const std::string raw =
      "Dichotomize \\Di*chot\"o*mize\\, v. t. [See\n"
      "   {Dichotomous}.]\n"
      "   1. To cut into two parts; to bisect. [R.]\n"
      "      [1913 Webster]\n"
      "\n"
      "            The apostolical benediction dichotomizes all good\n"
      "            things.          --Bp. Hall.\n"
      "      [1913 Webster]\n"
      "\n"
      "   2. A r['e]sum['e] of [ae]ther [Gr. ? in two].\n";
  EXPECT_EQ(clean_gcide_entry(raw),
            "Dichotomize, v. t. [See Dichotomous.] 1. To cut into two parts; to bisect. [R.]\n"
            "The apostolical benediction dichotomizes all good things. --Bp. Hall.\n"
            "2. A r\xC3\xA9sum\xC3\xA9 of \xC3\xA6ther [Gr. in two].");
  EXPECT_EQ(decode_dictd_number("l4vn"), 9931751u);  // l=37 4=56 v=47 n=39, base 64
  EXPECT_DATA_ERROR(decode_dictd_number("a b"), "not a dictd number");
}

}  // namespace
}  // namespace cca::data
