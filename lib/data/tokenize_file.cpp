#include "data/tokenize_file.h"

#include <chrono>
#include <fstream>

#include "data/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/strings.h"

namespace cca::data {

namespace {

std::vector<std::string> read_texts(const TokenizeFileOptions& options) {
  const std::string content = files::read_file(options.input, "input");
  std::vector<std::string> texts;
  for_each_nonblank_line(content, [&](std::string_view line, int64_t line_number) {
    const std::string where = format("{}:{}", options.input, line_number);
    const Json value = parse_json(line, where);
    texts.push_back(value.is_string()
                        ? value.as_string(where)
                        : value.at(options.field, where)
                              .as_string(where + ": field \"" + options.field + "\""));
  });
  return texts;
}

}  // namespace

TokenizeFileResult tokenize_file(const TokenizeFileOptions& options) {
  const Tokenizer tokenizer(options.tokenizer);
  const std::vector<std::string> texts = read_texts(options);
  std::vector<std::vector<int32_t>> encoded(texts.size());
  EncodeCache cache;
  TokenizeFileResult result;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  for (size_t i = 0; i < texts.size(); ++i) {
    tokenizer.encode_cached(texts[i], encoded[i], cache);
    result.bytes += texts[i].size();
    result.tokens += static_cast<int64_t>(encoded[i].size());
  }
  result.encode_cpu_seconds = thread_cpu_seconds() - cpu_start;
  result.encode_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.texts = static_cast<int64_t>(texts.size());

  std::ofstream out(options.output, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(format("{}: cannot open it for writing", options.output));
  for (const std::vector<int32_t>& ids : encoded) {
    Json::Array id_list(ids.begin(), ids.end());
    const Json line(
        Json::Object{{"ids", Json(std::move(id_list))}, {"decoded", Json(tokenizer.decode(ids))}});
    out << line.dump() << '\n';
  }
  out.close();
  if (!out) throw Error(format("{}: writing failed", options.output));
  return result;
}

}  // namespace cca::data
