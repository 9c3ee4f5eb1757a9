// The prose corpus's readers on tiny fixtures written here (CI installs none of the packages):
// SWORD modules and their OSIS markup, dictd dictionaries, R databases, fortune files.
#include <gtest/gtest.h>

#include "corpus_fixtures.h"
#include "data/corpus_text.h"
#include "data/dictd_text.h"
#include "data/rdata.h"
#include "data/sword.h"

namespace cca::datatest {
namespace {

using namespace cca::data;

TEST(Osis, StripsTagsDropsNotesAndDecodesEntities) {
  const std::string osis =
      "<title type=\"main\">The Book</title><chapter n=\"1\" osisID=\"Gen.1\" sID=\"Gen.1\"/>"
      "In the <w lemma=\"strong:H7225\">beginning</w> God<note type=\"x-study\">a <hi>note</hi>"
      "</note> created &amp; made &#233;den &lt;all&gt;. <div type=\"x-p\" sID=\"p1\"/>And "
      "<transChange type=\"added\">it was</transChange> so.<chapter eID=\"Gen.1\"/>";
  EXPECT_EQ(strip_osis(osis),
            "\nThe Book\n\fIn the beginning God created & made \xC3\xA9"
            "den <all>. \nAnd it was "
            "so.\n");
}

TEST(Osis, DropsACutTagAtTheEnd) {
  EXPECT_EQ(strip_osis("word <w lemma=\"x"), "word ");
}

TEST(Sword, ReadsBlocksThroughBothIndexesOneDocumentPerChapter) {
  ScratchDir dir;
  const std::string module = dir / "kjv";
  write_sword_testament(
      module, "ot.b",
      {{"<chapter n=\"1\" sID=\"Gen.1\"/>", "In the beginning. ", "And the earth. "},
       {"<chapter n=\"2\" sID=\"Gen.2\"/>", "Thus the heavens. "}},
      10);
  SwordStats stats;
  const std::vector<Document> docs = read_sword_module(module, &stats);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "In the beginning. And the earth.");
  EXPECT_EQ(docs[1].text, "Thus the heavens.");
  EXPECT_EQ(stats.entries, 5);
  EXPECT_EQ(stats.duplicates, 0);
}

TEST(Sword, TwelveByteRecordsAndLinkedEntriesCountOnce) {
  ScratchDir dir;
  const std::string module = dir / "tdavid";
  write_sword_testament(module, "ot.c",
                        {{"<chapter n=\"1\" sID=\"Ps.1\"/>",
                          "<div type=\"x-p\" sID=\"a\"/>Blessed "
                          "is the man.<div type=\"x-p\" eID=\"a\"/>",
                          "<p>He shall be like a tree.</p>"}},
                        12, /*links=*/2);
  SwordStats stats;
  const std::vector<Document> docs = read_sword_module(module, &stats);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].text, "Blessed is the man.\nHe shall be like a tree.");
  EXPECT_EQ(stats.duplicates, 2);
}

TEST(Sword, BlockIndexErrorsNameTheFile) {
  EXPECT_DATA_ERROR(parse_sword_block_index(std::string(13, '\0'), "ot.bzs"), "ot.bzs", "12-byte");
  std::string index;
  put_le(index, 0, 4), put_le(index, 100, 4), put_le(index, 10, 4);
  const auto blocks = parse_sword_block_index(index, "ot.bzs");
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].compressed_size, 100u);
  EXPECT_EQ(blocks[0].uncompressed_size, 10u);
  EXPECT_DATA_ERROR(inflate_sword_blocks("short", blocks, "ot.bzz"), "ot.bzz", "past the end");
  const std::string packed = zlib_compress("0123456789x");  // 11 bytes, index says 10
  EXPECT_DATA_ERROR(
      inflate_sword_blocks(packed, {{0, static_cast<uint32_t>(packed.size()), 10}}, "ot.bzz"),
      "ot.bzz", "block 0", "10 bytes");
}

TEST(Sword, EntryPastItsBlockIsAnError) {
  ScratchDir dir;
  const std::string module = dir / "bad";
  write_sword_testament(module, "nt.b", {{"Some text. "}}, 10);
  std::string zv;
  put_le(zv, 0, 4), put_le(zv, 5, 4), put_le(zv, 500, 2);
  write_file(module + "/nt.bzv", zv);
  EXPECT_DATA_ERROR(read_sword_module(module), "nt.bzv", "outside");
  EXPECT_DATA_ERROR(read_sword_module(dir / "none"), "no SWORD module");
}

TEST(Dictd, CleansWordNetStyleEntries) {
  const std::string raw =
      "tree\n    n 1: a tall perennial woody plant [syn: {tree},\n         {arbor}]\n"
      "    2: a figure that branches from a single root; \"{genealogical}\n       tree\"\n";
  EXPECT_EQ(clean_dictd_entry(raw),
            "tree\nn 1: a tall perennial woody plant\n2: a figure that branches from a single "
            "root; \"genealogical tree\"");
}

TEST(Dictd, ReadsEntriesSkippingMetadataAndInvalidUtf8) {
  ScratchDir dir;
  write_dictd(dir / "devil", {{"ABSURDITY",
                               "ABSURDITY, n.  A statement or belief\nmanifestly "
                               "inconsistent with one's own opinion.\n\n"},
                              {"BAD", "BAD, \xFF broken.\n"},
                              {"ACCORD", "ACCORD, n.  Harmony.\n"}});
  DictdStats stats;
  const auto docs = read_dictd_documents(dir / "devil.dict.dz", dir / "devil.index", &stats);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text,
            "ABSURDITY, n. A statement or belief manifestly inconsistent with one's own opinion.");
  EXPECT_EQ(docs[1].text, "ACCORD, n. Harmony.");
  EXPECT_EQ(stats.entries, 3);
  EXPECT_EQ(stats.skipped_invalid, 1);
}

TEST(RData, ParsesCharacterVectorsFromZlibRecords) {
  ScratchDir dir;
  const std::string rdb = dir / "Rdata.rdb";
  write_rdb(rdb, {r_strings({"EMMA", "", "CHAPTER I", "", "Emma Woodhouse, handsome,",
                             "clever, and rich.", "", "She was the youngest.", "\x01NA",
                             "CHAPTER II", "", "Mr. Weston was a native."}),
                  r_strings({"PERSUASION", "Chapter 1", "Sir Walter Elliot."})});
  const auto records = read_rdb_records(rdb);
  ASSERT_EQ(records.size(), 2u);
  const RStrings first = parse_r_strings(records[0], "first");
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.values.size(), 12u);
  EXPECT_EQ(first.values[8], "");  // NA
  const auto docs = read_rdb_novels(rdb);
  ASSERT_EQ(docs.size(), 5u);
  EXPECT_EQ(docs[0].text, "EMMA");
  EXPECT_EQ(docs[1].text,
            "CHAPTER I\nEmma Woodhouse, handsome, clever, and rich.\nShe was the youngest.");
  EXPECT_EQ(docs[2].text, "CHAPTER II\nMr. Weston was a native.");
  EXPECT_EQ(docs[4].text, "Chapter 1 Sir Walter Elliot.");
}

TEST(RData, OtherObjectsAreSkippedAndDamageIsReported) {
  std::string list = r_strings({"a"});
  list[2 + 16 + 5 + 3] = 19;  // VECSXP instead of STRSXP
  EXPECT_FALSE(parse_r_strings(list, "x").ok);
  EXPECT_DATA_ERROR(parse_r_strings("RDX2", "obj"), "obj", "XDR");
  std::string cut = r_strings({"hello"});
  cut.resize(cut.size() - 2);
  EXPECT_DATA_ERROR(parse_r_strings(cut, "obj"), "obj", "ends early");
  ScratchDir dir;
  std::string rdb;
  put_be(rdb, 100);
  rdb += zlib_compress("too short");
  write_file(dir / "x.rdb", rdb);
  EXPECT_DATA_ERROR(read_rdb_records(dir / "x.rdb"), "x.rdb", "100 bytes");
}

TEST(CorpusText, TidiesUnwrapsAndSplits) {
  EXPECT_EQ(tidy_lines("  a \t b \n\n   \nc  "), "a b\nc");
  EXPECT_EQ(unwrap_paragraphs("one\n two\n\n\nthree\n"), "one two\nthree");
  const auto parts = split_at_lines("A fortune.\n\t-- Someone\n%\nAnother.\n%\n", "%");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "A fortune.\n\t-- Someone\n");
  EXPECT_EQ(parts[1], "Another.\n");
  EXPECT_EQ(parts[2], "");
}

}  // namespace
}  // namespace cca::datatest
