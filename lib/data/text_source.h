// Where training text comes from: files, folders (recursive) and globs, each file plain text or
// JSONL (one JSON object per line, text in a configurable field), optionally gzip-compressed.
// Documents come out in a deterministic order (sorted paths, file order within a file), which
// makes tokenizer training and shard contents reproducible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cca::data {

enum class InvalidUtf8 { skip, error };
// How a plain-text file splits into documents: the whole file, blank-line separated paragraphs,
// or one document per line. JSONL files always give one document per line.
enum class TextUnit { file, paragraph, line };

InvalidUtf8 parse_invalid_utf8(const std::string& name);  // "skip" | "error"
TextUnit parse_text_unit(const std::string& name);        // "file" | "paragraph" | "line"

struct SourceOptions {
  std::string jsonl_field = "text";
  InvalidUtf8 invalid_utf8 = InvalidUtf8::skip;
  TextUnit text_unit = TextUnit::file;
};

// The byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// past U+10FFFF included), or std::string_view::npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// Expands inputs into a sorted, de-duplicated list of files. A folder contributes every regular,
// non-hidden file below it; a pattern with * ? or [ is a glob. Throws cca::Error for a missing
// path, a glob matching nothing or an input that yields no file.
std::vector<std::string> resolve_inputs(const std::vector<std::string>& inputs);

// True for *.jsonl, *.ndjson (optionally followed by .gz).
bool is_jsonl_path(const std::string& path);

struct Document {
  std::string text;
  std::string origin;  // "file" or "file:line", for messages
};

struct SourceCounters {
  int64_t documents = 0;             // returned by next()
  int64_t skipped_invalid_utf8 = 0;  // dropped (InvalidUtf8::skip)
  int64_t skipped_empty = 0;         // whitespace-only or null
  std::string first_invalid;         // where the first invalid document was, for the log
};

// Reads documents from resolved files one after another.
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> files, SourceOptions options);
  ~DocumentReader();
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;

  // The next non-empty valid document; false at the end. Throws cca::Error naming file and line
  // for unreadable files, malformed JSONL and (InvalidUtf8::error) invalid UTF-8.
  bool next(Document& doc);

  const SourceCounters& counters() const { return counters_; }
  // Bytes of input files consumed so far (compressed bytes for .gz) and in total, for progress.
  uint64_t bytes_done() const;
  uint64_t bytes_total() const { return bytes_total_; }

 private:
  class File;
  bool next_raw(Document& doc);
  bool accept(Document& doc);
  void finish_file();

  std::vector<std::string> files_;
  SourceOptions options_;
  size_t next_file_ = 0;
  std::unique_ptr<File> file_;
  std::vector<uint64_t> file_sizes_;
  uint64_t bytes_before_file_ = 0;  // sizes of the files already finished
  uint64_t bytes_total_ = 0;
  SourceCounters counters_;
};

}  // namespace cca::data
