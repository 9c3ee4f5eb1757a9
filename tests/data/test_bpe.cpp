// Byte-level BPE from tokenizer.json, piece by piece: the byte alphabet, merge order, added-token
// rules, normalization, UTF-8 repair, the errors for what is not supported, and tokenizer.json
// datasets (prepare, inspect --verify, uint32 shards). tests/interop/bpe_tokenizer.py checks the
// whole encoder against Hugging Face `tokenizers`.
#include <gtest/gtest.h>

#include "data/bpe_tables.h"
#include "data/dataset.h"
#include "data/inspect.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "data/unicode_regex.h"
#include "data/unicode_text.h"
#include "data_test_util.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::data {
namespace {

using datatest::ScratchDir;
using datatest::write_file;

const ByteLevelAlphabet& alphabet() {
  return byte_level_alphabet();
}

// A tokenizer.json: the 256 byte tokens (id = byte), then one token per merge in order, then
// the added tokens; the pre-tokenizer, normalizer and post-processor as given (JSON text).
struct JsonSpec {
  std::vector<std::pair<std::string, std::string>> merges;  // raw text, not byte-level spelling
  std::string added_tokens = "[]";
  std::string pre_tokenizer =
      R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})";
  std::string normalizer = "null";
  std::string post_processor = R"({"type": "ByteLevel", "trim_offsets": true})";
  std::string decoder = R"({"type": "ByteLevel"})";
  std::string model_type = "BPE";
  std::string model_extra;  // more "key": value, pairs for "model"
};

std::string make_json(const JsonSpec& spec) {
  Json::Object vocab;
  int64_t next = 0;
  for (int b = 0; b < 256; ++b) vocab[alphabet().chars[b]] = Json(next++);
  Json::Array merges;
  for (const auto& [left, right] : spec.merges) {
    const std::string l = alphabet().encode(left), r = alphabet().encode(right);
    if (vocab.count(l + r) == 0) vocab[l + r] = Json(next++);
    merges.push_back(Json(Json::Array{Json(l), Json(r)}));
  }
  const std::string model =
      format(R"({{"type": "{}", {} "vocab": {}, "merges": {}}})", spec.model_type, spec.model_extra,
             Json(vocab).dump(), Json(merges).dump());
  return format(
      R"({{"version": "1.0", "added_tokens": {}, "normalizer": {}, "pre_tokenizer": {},
          "post_processor": {}, "decoder": {}, "model": {}}})",
      spec.added_tokens, spec.normalizer, spec.pre_tokenizer, spec.post_processor, spec.decoder,
      model);
}

std::string write_tokenizer(const ScratchDir& dir, const JsonSpec& spec,
                            const std::string& name = "tokenizer.json") {
  const std::string path = dir / name;
  write_file(path, make_json(spec));
  return path;
}

std::vector<std::string> pieces(const Tokenizer& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int32_t id : tok.encode(text)) out.push_back(tok.decode({id}));
  return out;
}

std::string added(int id, const std::string& content, const std::string& flags = "") {
  return format(R"({{"id": {}, "content": "{}", "special": true, "normalized": false {}}})", id,
                content, flags);
}

TEST(ByteLevelAlphabet, IsGpt2sBytesToUnicode) {
  EXPECT_EQ(alphabet().chars[' '], "\xC4\xA0");   // Ġ
  EXPECT_EQ(alphabet().chars['\n'], "\xC4\x8A");  // Ċ
  EXPECT_EQ(alphabet().chars['a'], "a");
  EXPECT_EQ(alphabet().chars[0xAD], "\xC5\x83");  // the soft hyphen is not printable: U+0143
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(alphabet().decode(alphabet().encode(all)), all);
  EXPECT_EQ(alphabet().decode("<|endoftext|>"), "<|endoftext|>");
  EXPECT_EQ(alphabet().decode("a b"), "a b");  // a space is outside the alphabet: raw bytes
}

TEST(MergeTable, LowestRankFirstThenLeftmost) {
  const auto apply = [](std::vector<std::pair<std::string, std::string>> merges,
                        const std::string& word) {
    std::unordered_map<std::string, int32_t> vocab;
    std::vector<std::string> by_id;
    const auto add = [&](const std::string& t) {
      if (vocab.emplace(t, static_cast<int32_t>(by_id.size())).second) by_id.push_back(t);
    };
    for (char c : std::string("abcd")) add(std::string(1, c));
    for (const auto& [l, r] : merges) add(l + r);
    std::vector<int32_t> symbols;
    for (char c : word) symbols.push_back(vocab.at(std::string(1, c)));
    MergeTable(merges, vocab).apply(symbols);
    std::string out;
    for (int32_t id : symbols) out += (out.empty() ? "" : "|") + by_id[id];
    return out;
  };
  EXPECT_EQ(apply({{"a", "b"}, {"b", "c"}}, "abc"), "ab|c");
  EXPECT_EQ(apply({{"b", "c"}, {"a", "b"}}, "abc"), "a|bc");
  EXPECT_EQ(apply({{"a", "a"}}, "aaa"), "aa|a");
  EXPECT_EQ(apply({{"a", "a"}, {"aa", "aa"}}, "aaaaa"), "aaaa|a");
  EXPECT_EQ(apply({{"c", "d"}, {"a", "b"}, {"ab", "cd"}}, "abcdab"), "abcd|ab");
  EXPECT_EQ(apply({}, "dcba"), "d|c|b|a");
}

TEST(BpeTokenizer, EncodesDecodesAndNamesItsDocumentTokens) {
  ScratchDir dir;
  JsonSpec spec;
  spec.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}};
  spec.added_tokens = "[" + added(300, "<|endoftext|>") + "]";
  const Tokenizer tok(write_tokenizer(dir, spec));
  EXPECT_EQ(tok.kind(), Tokenizer::Kind::byte_level_bpe);
  EXPECT_STREQ(tok.dataset_file_name(), "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 301);
  EXPECT_EQ(tok.bos_id(), 300);  // GPT-2's one special token both begins and ends documents
  EXPECT_EQ(tok.eos_id(), 300);
  EXPECT_TRUE(tok.word_cache_safe());
  EXPECT_EQ(pieces(tok, "hello world"), (std::vector<std::string>{"hello", " w", "or", "l", "d"}));
  EXPECT_EQ(pieces(tok, "hello<|endoftext|>hello"),
            (std::vector<std::string>{"hello", "<|endoftext|>", "hello"}));
  EXPECT_EQ(tok.piece(tok.encode(" w")[0]), "\xC4\xA0w");  // as the file spells it: "Ġw"
  const std::string text = "h\xC3\xA9llo \t\r\n w\xF0\x9F\x98\x80rld 123 <|endoftext|>'s";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EncodeCache cache;
  std::vector<int32_t> cached;
  tok.encode_cached(text, cached, cache);
  EXPECT_EQ(cached, tok.encode(text));
  EXPECT_GT(cache.size(), 0u);
  // A character cut between tokens decodes as U+FFFD, as in `tokenizers`.
  const std::vector<int32_t> smile = tok.encode("\xF0\x9F\x98\x80");
  ASSERT_EQ(smile.size(), 4u);
  EXPECT_EQ(tok.decode({smile[0], smile[1]}), "\xEF\xBF\xBD");
  EXPECT_DATA_ERROR(tok.decode({301}), "tokenizer.json", "cannot decode token id 301");
  EXPECT_DATA_ERROR(tok.decode({299}), "no token has this id");
  EXPECT_DATA_ERROR(tok.encode("bad \xFF byte"), "invalid UTF-8", "at byte 4");
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  ScratchDir dir;
  JsonSpec spec;
  // "abc" is a token, but the merges alone would give "ab" + "c".
  spec.merges = {{"a", "b"}, {"b", "c"}, {"a", "bc"}};
  EXPECT_EQ(pieces(Tokenizer(write_tokenizer(dir, spec, "plain.json")), "abc"),
            (std::vector<std::string>{"ab", "c"}));
  spec.model_extra = R"("ignore_merges": true,)";
  EXPECT_EQ(pieces(Tokenizer(write_tokenizer(dir, spec, "ignore.json")), "abc"),
            (std::vector<std::string>{"abc"}));
}

TEST(BpeTokenizer, SplitRegexSequenceAndTemplate) {
  ScratchDir dir;
  JsonSpec spec;
  spec.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}|[^\\p{N}]+"}, "behavior": "Isolated",
       "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  spec.merges = {{"1", "2"}, {"12", "3"}, {"123", "4"}};
  spec.added_tokens =
      "[" + added(400, "<|begin_of_text|>") + "," + added(401, "<|end_of_text|>") + "]";
  spec.post_processor = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                     "ids": [400], "tokens": ["<|begin_of_text|>"]}}})";
  const Tokenizer tok(write_tokenizer(dir, spec));
  EXPECT_EQ(pieces(tok, "x1234"), (std::vector<std::string>{"x", "123", "4"}));
  EXPECT_EQ(tok.bos_id(), 400);
  EXPECT_EQ(tok.eos_id(), 401);
  EXPECT_EQ(tok.vocab_size(), 402);
}

TEST(BpeTokenizer, AddedTokenRules) {
  ScratchDir dir;
  JsonSpec spec;
  spec.added_tokens = "[" + added(300, "<mask>", R"(, "lstrip": true, "rstrip": true)") + "," +
                      added(301, "cat", R"(, "single_word": true)") + "," + added(302, "<a>") +
                      "," + added(303, "<a><b>") + "]";
  const Tokenizer tok(write_tokenizer(dir, spec));
  const auto has = [&](const std::string& text, int32_t id) {
    const auto ids = tok.encode(text);
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  EXPECT_EQ(tok.decode(tok.encode("a  <mask>\t b")), "a<mask>b");  // the spaces go with it
  EXPECT_TRUE(has("the cat sat", 301));
  EXPECT_TRUE(has("cat.", 301));
  EXPECT_FALSE(has("concatenate", 301));  // single_word: not inside a word
  EXPECT_FALSE(has("cats", 301));
  EXPECT_TRUE(has("x<a><b>y", 303));  // the longest token at the leftmost match
  EXPECT_FALSE(has("x<a><b>y", 302));
}

TEST(BpeTokenizer, NfcNormalizerAndPrefixSpace) {
  ScratchDir dir;
  JsonSpec spec;
  spec.normalizer = R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})";
  spec.pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": true})";
  const Tokenizer tok(write_tokenizer(dir, spec));
  EXPECT_EQ(tok.encode("e\xCC\x81"), tok.encode("\xC3\xA9"));  // e + U+0301 -> é
  EXPECT_EQ(tok.decode(tok.encode("word")), " word");
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", UnicodeForm::nfkc), "fi");
}

TEST(BpeTokenizer, UnsupportedComponentsAreNamedErrors) {
  ScratchDir dir;
  const auto load = [&](const JsonSpec& spec) { Tokenizer tok(write_tokenizer(dir, spec)); };
  JsonSpec spec;
  spec.pre_tokenizer = R"({"type": "Whitespace"})";
  EXPECT_DATA_ERROR(load(spec), "tokenizer.json", "pre_tokenizer.type", "\"Whitespace\"",
                    "ByteLevel, Split");
  spec = JsonSpec();
  spec.normalizer = R"({"type": "Sequence", "normalizers": [{"type": "Lowercase"}]})";
  EXPECT_DATA_ERROR(load(spec), "normalizer.normalizers[0].type", "\"Lowercase\"", "NFC");
  spec = JsonSpec();
  spec.model_extra = R"("byte_fallback": true,)";
  EXPECT_DATA_ERROR(load(spec), "model.byte_fallback", "tokenizer.model");
  spec = JsonSpec();
  spec.model_extra = R"("continuing_subword_prefix": "##",)";
  EXPECT_DATA_ERROR(load(spec), "model.continuing_subword_prefix", "\"##\"");
  spec = JsonSpec();
  spec.decoder = "null";
  EXPECT_DATA_ERROR(load(spec), "decoder is null", "ByteLevel");
  spec = JsonSpec();
  spec.pre_tokenizer = R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Isolated"})";
  EXPECT_DATA_ERROR(load(spec), "exactly one ByteLevel");
  spec = JsonSpec();
  spec.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
      {"type": "ByteLevel", "use_regex": false}]})";
  EXPECT_DATA_ERROR(load(spec), "tokenizer.json", "\"(unclosed\" does not compile");
  spec = JsonSpec();
  spec.model_type = "Unigram";
  EXPECT_DATA_ERROR(load(spec), "model.type", "\"Unigram\"");
  write_file(dir / "broken.json", "{\"model\": ");
  EXPECT_DATA_ERROR(Tokenizer(dir / "broken.json"), "broken.json", "invalid JSON");
}

TEST(BpeTokenizer, MergesOutsideTheVocabularyAreErrors) {
  ScratchDir dir;
  std::string text = make_json(JsonSpec());
  const std::string merges = "\"merges\": []";
  ASSERT_NE(text.find(merges), std::string::npos);
  text.replace(text.find(merges), merges.size(), R"("merges": ["a b", "q r s"])");
  write_file(dir / "t.json", text);
  EXPECT_DATA_ERROR(Tokenizer(dir / "t.json"), "model.merges[1]", "\"q r s\"", "one space");
  text.replace(text.find("\"q r s\""), 7, "[\"a\", \"c\"]");
  write_file(dir / "t.json", text);
  EXPECT_DATA_ERROR(Tokenizer(dir / "t.json"), "model.merges[0]", "result \"ab\"",
                    "not in model.vocab");
}

TEST(UnicodeText, LossyUtf8AndPatterns) {
  EXPECT_EQ(utf8_lossy("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(utf8_lossy("\xE2\x82"), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"
                       "a"),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // never valid: one each
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(translate_oniguruma_pattern("\\s+(?!\\S)|[^\\s\\p{L}]|\\\\s|[]\\s]"),
            "[\\p{White_Space}]+(?![\\P{White_Space}])|[^\\p{White_Space}\\p{L}]|\\\\s|"
            "[]\\p{White_Space}]");
  // U+0085 (NEL) is White_Space for Oniguruma; U+180E is not, whatever PCRE2's \s says.
  const UnicodeRegex space("\\s+", "test");
  std::vector<std::pair<size_t, size_t>> found;
  space.for_each_match(
      "a\xC2\x85"
      "b\xE1\xA0\x8E"
      "c",
      [&](size_t s, size_t e) {
        found.push_back({s, e});
      });
  EXPECT_EQ(found, (std::vector<std::pair<size_t, size_t>>{{1, 3}}));
  EXPECT_TRUE(text_ends_with_word_char("x\xC3\xA9"));
  EXPECT_FALSE(text_starts_with_word_char(". x"));
  EXPECT_EQ(trailing_white_space_start("ab \t"), 2u);
  EXPECT_EQ(leading_white_space("\xE3\x80\x80 x"), 4u);  // ideographic space + space
}

PrepareOptions prepare_json(const ScratchDir& dir, const std::string& tokenizer) {
  write_file(dir / "corpus.jsonl", datatest::jsonl_of(datatest::make_documents(40, 5)));
  PrepareOptions options;
  options.inputs = {dir / "corpus.jsonl"};
  options.tokenizer = tokenizer;
  options.output_dir = dir / "out";
  options.val_fraction = 0.1;
  options.shard_tokens = 3000;
  options.threads = 2;
  options.progress = false;
  return options;
}

TEST(BpeTokenizer, PreparedDatasetRecordsTheJsonAndVerifies) {
  ScratchDir dir;
  JsonSpec spec;
  spec.merges = {{"t", "h"}, {"th", "e"}, {" ", "the"}, {" ", "a"}};
  spec.added_tokens = "[" + added(300, "<|endoftext|>") + "]";
  const std::string path = write_tokenizer(dir, spec, "gpt2-like.json");
  const PrepareResult r = prepare_dataset(prepare_json(dir, path));
  const Manifest m = read_manifest(r.manifest_path);
  EXPECT_EQ(m.tokenizer_file, "tokenizer.json");
  EXPECT_EQ(m.shard_version, kShardVersionU16);
  EXPECT_EQ(m.bos_id, 300);
  EXPECT_EQ(datatest::read_bytes(dir / "out/tokenizer.json"), datatest::read_bytes(path));
  const Tokenizer copy(manifest_tokenizer_path(r.manifest_path, m));
  const MappedShard first(dir / "out" + "/" + m.train.shards[0].file);
  EXPECT_EQ(first.token(0), 300u);  // <|endoftext|> before each document, as llm.c's shards
  InspectOptions verify;
  verify.verify = true;
  verify.decode_tokens = 8;
  const InspectReport report = inspect_path(dir / "out", verify);
  EXPECT_EQ(report.problems, 0) << report.text;
  EXPECT_NE(report.text.find("decoded: <|endoftext|>"), std::string::npos) << report.text;
}

TEST(BpeTokenizer, VocabularyBeyondUint16MakesUint32Shards) {
  ScratchDir dir;
  JsonSpec spec;
  spec.added_tokens =
      "[" + added(128000, "<|begin_of_text|>") + "," + added(128001, "<|end_of_text|>") + "]";
  const PrepareResult r = prepare_dataset(prepare_json(dir, write_tokenizer(dir, spec)));
  const Manifest m = read_manifest(r.manifest_path);
  EXPECT_EQ(m.vocab_size, 128002);
  EXPECT_EQ(m.shard_version, kShardVersionU32);
  const MappedShard first(dir / "out" + "/" + m.train.shards[0].file);
  EXPECT_EQ(first.version(), kShardVersionU32);
  EXPECT_EQ(first.token(0), 128000u);
  InspectOptions verify;
  verify.verify = true;
  const InspectReport report = inspect_path(dir / "out", verify);
  EXPECT_EQ(report.problems, 0) << report.text;
}

}  // namespace
}  // namespace cca::data

namespace cca::data {
namespace {

TEST(DecodeStream, HoldsBackACharacterSplitAcrossTokens) {
  ScratchDir dir;
  const Tokenizer tok(write_tokenizer(dir, JsonSpec()));
  const std::string text = "hi \xF0\x9F\x98\x80 caf\xC3\xA9!";
  const std::vector<int32_t> ids = tok.encode(text);
  ASSERT_EQ(ids.size(), text.size());  // no merges: one token per byte
  DecodeStream stream(tok, {ids[0]});
  EXPECT_EQ(stream.shown(), "h");
  std::string printed = stream.shown();
  std::vector<std::string> steps;
  for (size_t i = 1; i < ids.size(); ++i) {
    steps.push_back(stream.push(ids[i]));
    printed += steps.back();
    EXPECT_EQ(printed.find("\xEF\xBF\xBD"), std::string::npos) << "after id " << i;
  }
  printed += stream.finish();
  EXPECT_EQ(printed, text);
  // steps[k] is ids[k + 1]'s: the emoji's first three bytes print nothing, its last all of it.
  EXPECT_EQ(steps[2] + steps[3] + steps[4], "");
  EXPECT_EQ(steps[5], "\xF0\x9F\x98\x80");
  // An incomplete character at the very end is shown as U+FFFD once generation stops.
  DecodeStream cut(tok, {ids[3], ids[4]});
  EXPECT_EQ(cut.shown(), "");
  EXPECT_EQ(cut.finish(), "\xEF\xBF\xBD");
}

TEST(DatasetManifest, FoundInADatasetFolderOrBesideShards) {
  ScratchDir dir;
  write_file(dir / "set/train_000000.bin", "x");
  EXPECT_EQ(manifest_path_for_shards(dir / "set"), dir / "set/manifest.json");
  EXPECT_EQ(manifest_path_for_shards(dir / "set/"), dir / "set/manifest.json");
  EXPECT_EQ(manifest_path_for_shards(dir / "set/train_000000.bin"), dir / "set/manifest.json");
  EXPECT_EQ(manifest_path_for_shards(dir / "set/train_*.bin"), dir / "set/manifest.json");
}

}  // namespace
}  // namespace cca::data
