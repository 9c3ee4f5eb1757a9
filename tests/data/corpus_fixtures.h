// Fixture writers for the prose corpus's tests: tiny SWORD modules, dictd dictionaries and R
// databases built on the spot with zlib, in the layout the Debian packages install.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data_test_util.h"

namespace cca::datatest {

inline std::string zlib_compress(const std::string& text) {
  uLongf size = compressBound(text.size());
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size,
            reinterpret_cast<const Bytef*>(text.data()), text.size(), 9);
  out.resize(size);
  return out;
}

inline void put_le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

inline void put_be(std::string& out, uint32_t value) {
  for (int i = 3; i >= 0; --i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

// One testament of a SWORD module in `dir`: each block is a list of entries (OSIS strings);
// `prefix` is "ot.b" (10-byte entry records) or "ot.c" with record_bytes 12. `links` repeats
// earlier entries' records, as commentaries do for verses sharing one note.
inline void write_sword_testament(const std::string& dir, const std::string& prefix,
                                  const std::vector<std::vector<std::string>>& blocks,
                                  int record_bytes, int links = 0) {
  std::string zs, zz, zv;
  std::vector<std::string> records;
  for (size_t b = 0; b < blocks.size(); ++b) {
    std::string text;
    for (const std::string& entry : blocks[b]) {
      std::string record;
      put_le(record, static_cast<uint32_t>(b), 4);
      put_le(record, static_cast<uint32_t>(text.size()), 4);
      put_le(record, static_cast<uint32_t>(entry.size()), record_bytes - 8);
      records.push_back(record);
      text += entry;
    }
    const std::string packed = zlib_compress(text);
    put_le(zs, static_cast<uint32_t>(zz.size()), 4);
    put_le(zs, static_cast<uint32_t>(packed.size()), 4);
    put_le(zs, static_cast<uint32_t>(text.size()), 4);
    zz += packed;
  }
  std::string empty;  // a verse without text: size 0
  put_le(empty, 0, 4), put_le(empty, 0, 4), put_le(empty, 0, record_bytes - 8);
  zv += empty;
  for (const std::string& r : records) zv += r;
  for (int i = 0; i < links && i < static_cast<int>(records.size()); ++i) zv += records[i];
  write_file(dir + "/" + prefix + "zs", zs);
  write_file(dir + "/" + prefix + "zz", zz);
  write_file(dir + "/" + prefix + "zv", zv);
}

// dictd's base64 numbers.
inline std::string dictd_number(uint64_t value) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  do {
    out.insert(out.begin(), alphabet[value % 64]);
    value /= 64;
  } while (value > 0);
  return out;
}

// A dictd dictionary: `entries` are (headword, text); writes PATH.dict.dz (gzip) and PATH.index.
inline void write_dictd(const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string dict, index;
  const std::string meta = "00databaseinfo\nA fixture.\n";
  index += "00databaseinfo\t" + dictd_number(0) + "\t" + dictd_number(meta.size()) + "\n";
  dict += meta;
  for (const auto& [word, text] : entries) {
    index += word + "\t" + dictd_number(dict.size()) + "\t" + dictd_number(text.size()) + "\n";
    dict += text;
  }
  fs::create_directories(fs::path(path).parent_path());
  gzFile gz = gzopen((path + ".dict.dz").c_str(), "wb9");
  gzwrite(gz, dict.data(), static_cast<unsigned>(dict.size()));
  gzclose(gz);
  write_file(path + ".index", index);
}

// R's XDR serialization (version 3) of a character vector; an element "\x01NA" stands for NA.
inline std::string r_strings(const std::vector<std::string>& values) {
  std::string out = "X\n";
  put_be(out, 3), put_be(out, 0x040201), put_be(out, 0x030500), put_be(out, 5);
  out += "UTF-8";
  put_be(out, 16);  // STRSXP
  put_be(out, static_cast<uint32_t>(values.size()));
  for (const std::string& v : values) {
    put_be(out, 0x00040009);  // CHARSXP, UTF-8
    if (v == "\x01NA") {
      put_be(out, 0xFFFFFFFFu);
      continue;
    }
    put_be(out, static_cast<uint32_t>(v.size()));
    out += v;
  }
  return out;
}

// An .rdb file: each object as a 4-byte big-endian length and a zlib stream.
inline void write_rdb(const std::string& path, const std::vector<std::string>& objects) {
  std::string out;
  for (const std::string& o : objects) {
    put_be(out, static_cast<uint32_t>(o.size()));
    out += zlib_compress(o);
  }
  write_file(path, out);
}

}  // namespace cca::datatest
