// `cca-data tokenize`: a JSONL file of texts -> a JSONL file of their ids and decoded texts, one
// line per input line, in order. For checking a tokenizer against another implementation (the
// interop tests compare with Hugging Face `tokenizers`) and for timing its encoder on one thread.
#pragma once

#include <cstdint>
#include <string>

namespace cca::data {

struct TokenizeFileOptions {
  std::string tokenizer;
  std::string input;   // JSONL: one JSON string, or an object holding `field`, per line
  std::string output;  // JSONL: {"ids": [...], "decoded": "..."} per input line
  std::string field = "text";
};

struct TokenizeFileResult {
  int64_t texts = 0;
  int64_t tokens = 0;
  uint64_t bytes = 0;             // of text encoded
  double encode_seconds = 0;      // encoding alone, one thread, word cache cold at the start
  double encode_cpu_seconds = 0;  // the same in the thread's CPU time (steadier on a busy machine)
  double mb_per_second() const { return encode_seconds > 0 ? bytes / 1e6 / encode_seconds : 0; }
};

// Throws cca::Error naming the file and line of a bad input line.
TokenizeFileResult tokenize_file(const TokenizeFileOptions& options);

}  // namespace cca::data
