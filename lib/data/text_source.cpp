#include "data/text_source.h"

#include <glob.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "util/files.h"
#include "util/json.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::data {
namespace {

constexpr size_t kReadBlock = 1 << 20;
constexpr size_t kMaxDocumentBytes = size_t{1} << 30;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

void add_folder(const std::string& folder, std::vector<std::string>& out) {
  const size_t before = out.size();
  files::walk_files(folder, out);
  if (out.size() == before) throw Error(format("{}: folder holds no (non-hidden) files", folder));
}

void add_glob(const std::string& pattern, std::vector<std::string>& out) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
  if (rc == GLOB_NOMATCH) {
    globfree(&matches);
    throw Error(format("{}: pattern matches no file", pattern));
  }
  if (rc != 0) {
    globfree(&matches);
    throw Error(format("{}: cannot expand pattern (glob error {})", pattern, rc));
  }
  size_t added = 0;
  for (size_t i = 0; i < matches.gl_pathc; ++i) {
    if (files::is_regular_file(matches.gl_pathv[i])) {
      out.emplace_back(matches.gl_pathv[i]);
      ++added;
    }
  }
  globfree(&matches);
  if (added == 0) throw Error(format("{}: pattern matches no regular file", pattern));
}

}  // namespace

InvalidUtf8 parse_invalid_utf8(const std::string& name) {
  if (name == "skip") return InvalidUtf8::skip;
  if (name == "error") return InvalidUtf8::error;
  throw Error(format("invalid UTF-8 policy \"{}\" (allowed: skip, error)", name));
}

TextUnit parse_text_unit(const std::string& name) {
  if (name == "file") return TextUnit::file;
  if (name == "paragraph") return TextUnit::paragraph;
  if (name == "line") return TextUnit::line;
  throw Error(format("text unit \"{}\" (allowed: file, paragraph, line)", name));
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

std::vector<std::string> resolve_inputs(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw Error("no input given");
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    if (input.find_first_of("*?[") != std::string::npos && !files::exists(input)) {
      add_glob(input, files);
    } else if (files::is_directory(input)) {
      add_folder(input, files);
    } else if (files::exists(input)) {
      files.push_back(input);
    } else {
      throw Error(format("{}: no such file or folder", input));
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

bool is_jsonl_path(const std::string& path) {
  std::string p = path;
  if (ends_with(p, ".gz")) p.resize(p.size() - 3);
  return ends_with(p, ".jsonl") || ends_with(p, ".ndjson");
}

// One open input file; zlib reads gzip and plain files alike.
class DocumentReader::File {
 public:
  explicit File(const std::string& path) : path_(path), jsonl_(is_jsonl_path(path)) {
    errno = 0;
    gz_ = gzopen(path.c_str(), "rb");
    if (gz_ == nullptr) {
      throw Error(format("{}: cannot open: {}", path, errno ? std::strerror(errno) : "zlib error"));
    }
    gzbuffer(gz_, 1 << 17);
  }
  ~File() { gzclose(gz_); }

  const std::string& path() const { return path_; }
  bool jsonl() const { return jsonl_; }
  int64_t line() const { return line_; }
  uint64_t offset() const { return static_cast<uint64_t>(std::max<z_off64_t>(0, gzoffset64(gz_))); }

  // The next line without its '\n' (and '\r'); false at the end of the file.
  bool read_line(std::string& line) {
    line.clear();
    for (;;) {
      if (pos_ == buffer_.size() && !fill()) {
        if (line.empty() && !partial_line_) return false;
        partial_line_ = false;
        break;
      }
      const char* start = buffer_.data() + pos_;
      const void* nl = std::memchr(start, '\n', buffer_.size() - pos_);
      const size_t take = nl ? static_cast<const char*>(nl) - start : buffer_.size() - pos_;
      line.append(start, take);
      pos_ += take;
      if (line.size() > kMaxDocumentBytes) fail("a line longer than 1 GiB");
      if (nl) {
        ++pos_;
        break;
      }
      partial_line_ = true;
    }
    partial_line_ = false;
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }

  void read_all(std::string& out) {
    out.clear();
    while (pos_ < buffer_.size() || fill()) {
      out.append(buffer_.data() + pos_, buffer_.size() - pos_);
      pos_ = buffer_.size();
      if (out.size() > kMaxDocumentBytes) fail("a document longer than 1 GiB (use --text-unit)");
    }
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(format("{}: {}", path_, problem));
  }

 private:
  bool fill() {
    buffer_.resize(kReadBlock);
    const int got = gzread(gz_, buffer_.data(), static_cast<unsigned>(kReadBlock));
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(gz_, &code);
      fail(format("read error: {}", code == Z_ERRNO ? std::strerror(errno) : message));
    }
    buffer_.resize(static_cast<size_t>(got));
    pos_ = 0;
    return got > 0;
  }

  std::string path_;
  bool jsonl_;
  gzFile gz_ = nullptr;
  std::string buffer_;
  size_t pos_ = 0;
  int64_t line_ = 0;
  bool partial_line_ = false;
};

DocumentReader::DocumentReader(std::vector<std::string> files, SourceOptions options)
    : files_(std::move(files)), options_(std::move(options)) {
  for (const std::string& file : files_) {
    const uint64_t size = files::file_size(file);
    bytes_total_ += size;
    file_sizes_.push_back(size);
  }
}

DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::bytes_done() const {
  if (!file_) return bytes_before_file_;
  return bytes_before_file_ + std::min<uint64_t>(file_->offset(), file_sizes_[next_file_ - 1]);
}

bool DocumentReader::next(Document& doc) {
  for (;;) {
    if (!next_raw(doc)) return false;
    if (accept(doc)) return true;
  }
}

bool DocumentReader::accept(Document& doc) {
  if (is_blank(doc.text)) {
    ++counters_.skipped_empty;
    return false;
  }
  const size_t bad = find_invalid_utf8(doc.text);
  if (bad != std::string_view::npos) {
    if (options_.invalid_utf8 == InvalidUtf8::error) {
      throw Error(
          format("{}: invalid UTF-8 at byte {} of the document (byte 0x{:x}); pass "
                 "--invalid-utf8 skip to drop such documents",
                 doc.origin, bad, static_cast<int>(static_cast<unsigned char>(doc.text[bad]))));
    }
    if (counters_.skipped_invalid_utf8++ == 0) {
      counters_.first_invalid = format("{} (byte {})", doc.origin, bad);
    }
    return false;
  }
  ++counters_.documents;
  return true;
}

bool DocumentReader::next_raw(Document& doc) {
  std::string line;
  for (;;) {
    if (!file_) {
      if (next_file_ == files_.size()) return false;
      file_ = std::make_unique<File>(files_[next_file_++]);
    }
    File& f = *file_;
    if (f.jsonl()) {
      while (f.read_line(line)) {
        if (is_blank(line)) continue;
        doc.origin = format("{}:{}", f.path(), f.line());
        const Json row = parse_json(line, doc.origin);
        if (!row.is_object()) throw Error(doc.origin + ": expected a JSON object per line");
        const Json* field = row.find(options_.jsonl_field);
        if (field == nullptr) {
          throw Error(format("{}: no field \"{}\" (choose it with --jsonl-field)", doc.origin,
                             options_.jsonl_field));
        }
        if (field->is_null()) {
          doc.text.clear();
        } else if (field->is_string()) {
          doc.text = field->as_string("");
        } else {
          throw Error(format("{}: field \"{}\" is not a string", doc.origin, options_.jsonl_field));
        }
        return true;
      }
    } else if (options_.text_unit == TextUnit::file) {
      f.read_all(doc.text);
      if (doc.text.compare(0, 3, "\xEF\xBB\xBF") == 0) doc.text.erase(0, 3);  // BOM
      doc.origin = f.path();
      finish_file();
      return true;
    } else if (options_.text_unit == TextUnit::line) {
      if (f.read_line(doc.text)) {
        doc.origin = format("{}:{}", f.path(), f.line());
        return true;
      }
    } else {
      doc.text.clear();
      int64_t first = 0;
      while (f.read_line(line)) {
        if (is_blank(line)) {
          if (first > 0) break;
          continue;
        }
        if (first == 0) first = f.line();
        if (!doc.text.empty()) doc.text += '\n';
        doc.text += line;
        if (doc.text.size() > kMaxDocumentBytes) f.fail("a paragraph longer than 1 GiB");
      }
      if (first > 0) {
        doc.origin = format("{}:{}", f.path(), first);
        return true;
      }
    }
    finish_file();
  }
}

void DocumentReader::finish_file() {
  bytes_before_file_ += file_sizes_[next_file_ - 1];
  file_.reset();
}

}  // namespace cca::data
