#include "data/rdata.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "data/corpus_text.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace cca::data {
namespace {

constexpr int kCharSxp = 9;
constexpr int kStrSxp = 16;

// Big-endian reads with bounds checks.
class XdrReader {
 public:
  XdrReader(std::string_view bytes, const std::string& what) : bytes_(bytes), what_(what) {}
  int32_t int32() {
    need(4);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data() + at_);
    at_ += 4;
    return static_cast<int32_t>(uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
                                uint32_t{p[3]});
  }
  std::string_view bytes(size_t n) {
    need(n);
    const std::string_view s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }

 private:
  void need(size_t n) const {
    if (bytes_.size() - at_ < n) {
      throw Error(format("{}: serialized object ends early (at byte {})", what_, at_));
    }
  }
  std::string_view bytes_;
  std::string what_;
  size_t at_ = 0;
};

bool is_chapter_heading(const std::string& line) {
  for (const char* word : {"CHAPTER ", "Chapter "}) {
    if (line.rfind(word, 0) != 0) continue;
    const std::string rest = line.substr(std::string(word).size());
    if (rest.empty() || rest.size() > 8) return false;
    for (char c : rest) {
      if (!std::isdigit(static_cast<unsigned char>(c)) && std::strchr("IVXLC.", c) == nullptr) {
        return false;
      }
    }
    return true;
  }
  return false;
}

}  // namespace

RStrings parse_r_strings(std::string_view bytes, const std::string& what) {
  RStrings result;
  if (bytes.substr(0, 2) != "X\n") {
    throw Error(format("{}: not R's XDR serialization (no \"X\\n\" header)", what));
  }
  XdrReader in(bytes.substr(2), what);
  const int32_t version = in.int32();
  in.int32();  // the writing R's version
  in.int32();  // the oldest R that reads it
  if (version == 3) in.bytes(static_cast<size_t>(std::max(0, in.int32())));  // native encoding
  if (version != 2 && version != 3) {
    throw Error(format("{}: serialization version {} (2 or 3 supported)", what, version));
  }
  if ((in.int32() & 0xFF) != kStrSxp) return result;
  int64_t count = in.int32();
  if (count == -1) count = int64_t{in.int32()} << 32 | static_cast<uint32_t>(in.int32());
  if (count < 0) throw Error(format("{}: negative vector length {}", what, count));
  result.values.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if ((in.int32() & 0xFF) != kCharSxp) {
      throw Error(format("{}: element {} of a character vector is not a string", what, i));
    }
    const int32_t length = in.int32();
    result.values.emplace_back(length < 0 ? std::string_view() : in.bytes(length));
  }
  result.ok = true;
  return result;
}

std::vector<std::string> read_rdb_records(const std::string& path) {
  const std::string data = files::read_file(path, "R database");
  std::vector<std::string> records;
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 4) throw Error(format("{}: record at byte {} is cut", path, at));
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
    const uint32_t length =
        uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    std::string out(length, '\0');
    z_stream z{};
    inflateInit(&z);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + at + 4));
    z.avail_in = static_cast<uInt>(data.size() - at - 4);
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = length;
    const int rc = inflate(&z, Z_FINISH);
    const size_t consumed = z.total_in;
    const size_t produced = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != length) {
      throw Error(
          format("{}: record at byte {} does not inflate to its recorded {} bytes (zlib "
                 "code {}; only zlib-compressed databases are supported)",
                 path, at, length, rc));
    }
    records.push_back(std::move(out));
    at += 4 + consumed;
  }
  return records;
}

std::vector<Document> novel_chapters(const std::vector<std::string>& lines,
                                     const std::string& origin) {
  std::vector<Document> docs;
  std::string chapter;
  auto flush = [&] {
    std::string text = unwrap_paragraphs(chapter);
    if (!text.empty()) docs.push_back({std::move(text), format("{} #{}", origin, docs.size())});
    chapter.clear();
  };
  for (const std::string& line : lines) {
    if (is_chapter_heading(line)) flush();
    chapter += line;
    chapter += '\n';
  }
  flush();
  return docs;
}

std::vector<Document> read_rdb_novels(const std::string& rdb_path) {
  std::vector<Document> docs;
  const std::vector<std::string> records = read_rdb_records(rdb_path);
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string what = format("{} record {}", rdb_path, i);
    const RStrings strings = parse_r_strings(records[i], what);
    if (!strings.ok) continue;  // not a character vector: no text to take
    for (Document& d : novel_chapters(strings.values, what)) docs.push_back(std::move(d));
  }
  if (docs.empty()) throw Error(format("{}: holds no character vectors", rdb_path));
  return docs;
}

}  // namespace cca::data
