// The safetensors reader and writer: round trips, a file built byte by byte as the reference
// writer lays it out, every malformation the reader must name, and a seeded mutation fuzz that
// may only ever end in cca::Error (run under ASan to catch out-of-bounds reads).
#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>

#include "testing/scratch_dir.h"
#include "util/error.h"

namespace cca::safetensors {
namespace {

using cca::testing::ScratchDir;

// Throws cca::Error whose message contains every one of `words`.
#define EXPECT_ERROR_WITH(statement, ...)                              \
  do {                                                                 \
    try {                                                              \
      statement;                                                       \
      ADD_FAILURE() << "expected a cca::Error from " #statement;       \
    } catch (const ::cca::Error& e) {                                  \
      for (const char* word : {__VA_ARGS__}) {                         \
        EXPECT_NE(std::string(e.what()).find(word), std::string::npos) \
            << "message lacks \"" << word << "\": " << e.what();       \
      }                                                                \
    }                                                                  \
  } while (0)

std::string le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

// A file as the reference writer lays it out: length, header (padded with spaces to a multiple of
// 8 when `pad`), buffer.
std::string assemble(std::string header, const std::string& buffer, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + buffer;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(Safetensors, DtypeSizes) {
  EXPECT_EQ(dtype_size("BOOL"), 1u);
  EXPECT_EQ(dtype_size("BF16"), 2u);
  EXPECT_EQ(dtype_size("F32"), 4u);
  EXPECT_EQ(dtype_size("U64"), 8u);
  EXPECT_ERROR_WITH(dtype_size("F8_E4M3"), "unknown safetensors dtype", "F8_E4M3", "BF16");
}

struct Sample {
  std::vector<float> f32{1.5f, -2.0f, 3.25f, 0.0f, 1e30f, -7.0f};
  std::vector<uint16_t> bf16{0x3F80, 0xC000, 0x7F80, 0x0001};
  int64_t scalar = -1234567890123;
  std::vector<uint8_t> flags{1, 0, 1};
  std::vector<double> f64{3.141592653589793};

  Writer writer() const {
    Writer w;
    w.add("layers.0.weight", "F32", {2, 3}, f32.data(), f32.size() * 4);
    w.add("norm.bf16", "BF16", {4}, bf16.data(), bf16.size() * 2);
    w.add("empty", "U8", {0, 5}, nullptr, 0);
    w.add("step", "I64", {}, &scalar, 8);
    w.add("mask", "BOOL", {3}, flags.data(), flags.size());
    w.add("pi", "F64", {1, 1}, f64.data(), 8);
    w.set_metadata("format", "cca");
    w.set_metadata("note", "quotes \" and\nnewlines and ünïcode");
    return w;
  }
};

void expect_sample(const File& f, const Sample& s) {
  ASSERT_EQ(f.tensors().size(), 6u);
  const char* order[] = {"layers.0.weight", "norm.bf16", "empty", "step", "mask", "pi"};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(f.tensors()[i].name, order[i]);
  const TensorInfo& w = f.at("layers.0.weight");
  EXPECT_EQ(w.dtype, "F32");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w.numel(), 6);
  EXPECT_EQ(std::memcmp(f.data(w), s.f32.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data(f.at("norm.bf16")), s.bf16.data(), 8), 0);
  const TensorInfo& empty = f.at("empty");
  EXPECT_EQ(empty.shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(empty.bytes(), 0u);
  const TensorInfo& step = f.at("step");
  EXPECT_TRUE(step.shape.empty());
  EXPECT_EQ(step.numel(), 1);
  int64_t scalar = 0;
  std::memcpy(&scalar, f.data(step), 8);
  EXPECT_EQ(scalar, s.scalar);
  EXPECT_EQ(std::memcmp(f.data(f.at("mask")), s.flags.data(), 3), 0);
  EXPECT_EQ(std::memcmp(f.data(f.at("pi")), s.f64.data(), 8), 0);
  EXPECT_EQ(f.metadata().at("format"), "cca");
  EXPECT_EQ(f.metadata().at("note"), "quotes \" and\nnewlines and ünïcode");
  EXPECT_EQ(f.buffer_bytes(), 24u + 8 + 0 + 8 + 3 + 8);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_ERROR_WITH(f.at("nope"), "no tensor 'nope'");
}

TEST(Safetensors, RoundTripThroughAFile) {
  ScratchDir dir;
  const Sample sample;
  const Writer w = sample.writer();
  const std::string path = dir / "model.safetensors";
  w.write(path);
  const std::string bytes = read_file(path);
  EXPECT_EQ(bytes, w.to_bytes());
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u) << "the buffer must start 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');

  File f = File::open(path);
  expect_sample(f, sample);
  EXPECT_EQ(f.source(), path);
  File moved = std::move(f);  // the mapping moves with it
  expect_sample(moved, sample);
  expect_sample(File::parse(w.to_bytes(), "memory"), sample);
}

TEST(Safetensors, EmptyFileRoundTrips) {
  const Writer w;
  const File f = File::parse(w.to_bytes(), "empty");
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, ReadsAFileLaidOutByTheReferenceWriter) {
  // The Python package writes the metadata first and orders tensors by dtype alignment; keys in
  // the JSON need not follow buffer order, and third-party headers need not be padded.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"bias":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
      R"("weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::vector<float> weight{0.5f, -1.0f};
  const std::vector<int32_t> bias{42};
  const std::string buffer = bytes_of(weight) + bytes_of(bias);
  for (bool pad : {true, false}) {
    const File f = File::parse(assemble(header, buffer, pad), "reference.safetensors");
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.tensors()[0].name, "weight") << "tensors() is in buffer order";
    float w[2];
    std::memcpy(w, f.data(f.at("weight")), 8);
    EXPECT_EQ(w[0], 0.5f);
    EXPECT_EQ(w[1], -1.0f);
    int32_t b = 0;
    std::memcpy(&b, f.data(f.at("bias")), 4);
    EXPECT_EQ(b, 42);
    EXPECT_EQ(f.metadata().at("format"), "pt");
  }
  // Whitespace and key order inside entries are free.
  const std::string spaced =
      "{ \"x\" : { \"data_offsets\" : [ 0 , 2 ] , \"shape\" : [ ] , \"dtype\" : \"F16\" } }";
  EXPECT_EQ(File::parse(assemble(spaced, "ab"), "s").at("x").dtype, "F16");
}

TEST(Safetensors, WriterRejectsBadTensors) {
  const std::vector<float> four(4);
  Writer w;
  w.add("a", "F32", {4}, four.data(), 16);
  EXPECT_ERROR_WITH(w.add("a", "F32", {4}, four.data(), 16), "'a'", "twice");
  EXPECT_ERROR_WITH(w.add("", "F32", {4}, four.data(), 16), "empty tensor name");
  EXPECT_ERROR_WITH(w.add("__metadata__", "F32", {4}, four.data(), 16), "reserved");
  EXPECT_ERROR_WITH(w.add("b", "F32", {2, 3}, four.data(), 16), "got 16 bytes", "expected 24");
  EXPECT_ERROR_WITH(w.add("b", "Q4", {4}, four.data(), 16), "unknown safetensors dtype");
  EXPECT_ERROR_WITH(w.add("b", "F32", {-4}, four.data(), 16), "negative dimension");
  EXPECT_ERROR_WITH(w.add("b", "U8", {INT64_MAX, 4}, four.data(), 16), "overflows");
  EXPECT_ERROR_WITH(w.add("b", "F32", {4}, nullptr, 16), "null data");
  EXPECT_ERROR_WITH(w.add("\xff", "F32", {4}, four.data(), 16), "UTF-8");
  EXPECT_EQ(w.tensors().size(), 1u);
}

TEST(Safetensors, WriteFailureNamesThePath) {
  const Writer w;
  EXPECT_ERROR_WITH(w.write("/nonexistent-ckptio-dir/x.safetensors"),
                    "/nonexistent-ckptio-dir/x.safetensors", "cannot create");
}

// A one-tensor file whose header is `json`, with a buffer of `buffer_bytes` zero bytes.
std::string with_header(const std::string& json, size_t buffer_bytes = 8) {
  return assemble(json, std::string(buffer_bytes, '\0'));
}

std::string entry(const std::string& fields) {
  return R"({"t":{)" + fields + "}}";
}

TEST(Safetensors, MalformedFilesAreNamedErrors) {
  const std::string ok_fields = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  EXPECT_NO_THROW(File::parse(with_header(entry(ok_fields)), "ok"));
  struct Case {
    std::string bytes;
    std::vector<const char*> words;
  };
  const std::vector<Case> cases = {
      {"\x01\x02\x03", {"bad.st:", "3 bytes", "too short"}},
      {le64(0) + "xx", {"header length is 0"}},
      {le64(100'000'001) + "{}", {"header length 100000001 exceeds", "limit"}},
      {le64(uint64_t{1} << 63) + "{}", {"exceeds"}},
      {le64(64) + "{}", {"header length 64 runs past the end", "truncated"}},
      {with_header("{\"t\": nope}"), {"bad.st header: invalid JSON at byte"}},
      {with_header("{\"t\xff\": 1}"), {"not valid UTF-8"}},
      {with_header("{\"t\xed\xa0\x80\": 1}"), {"not valid UTF-8"}},  // a surrogate
      {with_header("[1, 2]"), {"header is [1,2]", "expected a JSON object"}},
      {with_header(R"({"t": 3})"), {"tensor 't' is 3", "expected an object"}},
      {with_header(entry(R"("shape":[2],"data_offsets":[0,8])")), {"dtype is missing"}},
      {with_header(entry(R"("dtype":"Q4","shape":[2],"data_offsets":[0,8])")),
       {"dtype is \"Q4\"", "expected one of", "BF16"}},
      {with_header(entry(R"("dtype":7,"shape":[2],"data_offsets":[0,8])")), {"dtype is 7"}},
      {with_header(entry(R"("dtype":"F32","data_offsets":[0,8])")), {"shape is missing"}},
      {with_header(entry(R"("dtype":"F32","shape":2,"data_offsets":[0,8])")),
       {"shape is 2", "non-negative integers"}},
      {with_header(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])")), {"shape is [-2]"}},
      {with_header(entry(R"("dtype":"F32","shape":[2.5],"data_offsets":[0,8])")),
       {"non-negative integers"}},
      {with_header(entry(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])")),
       {"non-negative integers"}},
      {with_header(entry(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8])")),
       {"more bytes than fit in 63 bits"}},
      {with_header(entry(R"("dtype":"U8","shape":[4611686018427387904,2,0],"data_offsets":[0,0])"),
                   0),
       {"more bytes than fit in 63 bits"}},
      {with_header(entry(R"("dtype":"F32","shape":[2])")), {"data_offsets is missing"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])")),
       {"data_offsets is [8,0]", "begin <= end"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0])")),
       {"two non-negative integers"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[-8,0])")),
       {"two non-negative integers"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":"0,8")")),
       {"data_offsets is \"0,8\""}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])")),
       {"span 4 bytes", "expected 8 for F32 [2]"}},
      {with_header(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0,16])")),
       {"run past the end of the 8-byte data buffer", "truncated"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[8,16])"), 16),
       {"bytes [0, 8) of the data buffer belong to no tensor", "without holes"}},
      {with_header(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"), 12),
       {"bytes [8, 12) at the end of the data buffer belong to no tensor"}},
      {with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
       {"tensors 'a' [0, 8] and 'b' [4, 8] overlap"}},
      {with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})"),
       {"overlap"}},
      {with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
       {"duplicate key \"t\""}},
      {with_header(R"({"__metadata__":{"k":1},"t":{"dtype":"F32","shape":[2],)"
                   R"("data_offsets":[0,8]}})"),
       {"__metadata__ value of 'k' is 1", "expected a string"}},
      {with_header(R"({"__metadata__":["k"],"t":{"dtype":"F32","shape":[2],)"
                   R"("data_offsets":[0,8]}})"),
       {"__metadata__ is [\"k\"]", "expected an object of string values"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bytes.substr(0, 120));
    try {
      File::parse(c.bytes, "bad.st");
      ADD_FAILURE() << "parsed without an error";
    } catch (const Error& e) {
      for (const char* word : c.words) {
        EXPECT_NE(std::string(e.what()).find(word), std::string::npos)
            << "message lacks \"" << word << "\": " << e.what();
      }
      EXPECT_EQ(std::string(e.what()).rfind("bad.st", 0), 0u) << e.what();
    }
  }
}

TEST(Safetensors, OpenNamesUnreadableFiles) {
  ScratchDir dir;
  EXPECT_ERROR_WITH(File::open(dir / "missing.safetensors"), "missing.safetensors", "cannot open");
  EXPECT_ERROR_WITH(File::open(dir.path().string()), "not a regular file");
  EXPECT_ERROR_WITH(File::open(dir.write("short.st", "abc")), "short.st", "too short");
  EXPECT_ERROR_WITH(File::open(dir.write("empty.st", "")), "empty.st", "0 bytes");
  EXPECT_ERROR_WITH(File::open(dir.write("trunc.st", le64(100) + "{}")), "trunc.st",
                    "runs past the end");
}

// --- Fuzz --------------------------------------------------------------------------------------

constexpr int kMutations = 10000;

std::string mutate(std::string bytes, std::mt19937_64& rng) {
  static const char* const pieces[] = {"{",     "}",
                                       "[",     "]",
                                       "\"",    ",",
                                       ":",     "-1",
                                       "0",     "1",
                                       "7",     "1.5",
                                       "1e308", "18446744073709551615",
                                       "8",     "4294967296",
                                       "null",  "true",
                                       "[]",    "\"__metadata__\"",
                                       "\xff"};
  if (bytes.size() <= 8) return bytes + static_cast<char>(rng());  // a second mutation of a stub
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  const size_t header_end = header < bytes.size() - 8 ? 8 + header : bytes.size();
  switch (rng() % 6) {
    case 0: {  // flip bits, mostly in the header
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips; ++i) {
        const size_t at = rng() % 4 != 0 ? rng() % header_end : rng() % bytes.size();
        bytes[at] ^= static_cast<char>(1 << (rng() % 8));
      }
      break;
    }
    case 1:  // truncate
      bytes.resize(rng() % (bytes.size() + 1));
      break;
    case 2: {  // a different header length: near the real one or extreme
      const int64_t deltas[] = {-9, -8, -1, 1, 7, 8, 64};
      uint64_t v = rng() % 2 ? header + static_cast<uint64_t>(deltas[rng() % 7]) : rng();
      if (rng() % 4 == 0) v = rng() % 2 ? 0 : UINT64_MAX;
      const std::string le = le64(v);
      bytes.replace(0, 8, le);
      break;
    }
    default: {  // splice a number or JSON punctuation into the header
      const size_t at = 8 + rng() % (header_end - 8 + 1);
      const std::string piece = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
      const size_t digit = bytes.find_first_of("0123456789", at);
      if (digit != std::string::npos && digit < header_end && rng() % 3 != 0) {
        const size_t end = bytes.find_first_not_of("0123456789", digit);
        const size_t stop = end == std::string::npos ? header_end : std::min(end, header_end);
        bytes.replace(digit, stop - digit, piece);
      } else {
        bytes.insert(at, piece);
      }
      if (rng() % 2 == 0) bytes.replace(0, 8, le64(header + piece.size()));  // keep it framed
    }
  }
  return bytes;
}

// On success every tensor must lie inside the buffer and the tensors must tile it.
void check_loaded(const File& f) {
  uint64_t total = 0, sum = 0;
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_LE(t.begin, t.end);
    ASSERT_LE(t.end, f.buffer_bytes());
    ASSERT_EQ(t.bytes(), static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype));
    const uint8_t* p = f.data(t);
    for (uint64_t i = 0; i < t.bytes(); ++i) sum += p[i];
    total += t.bytes();
  }
  ASSERT_EQ(total, f.buffer_bytes());
  (void)sum;
}

TEST(Safetensors, FuzzedFilesLoadOrFailCleanly) {
  const Sample sample;
  const std::string original = sample.writer().to_bytes();
  std::mt19937_64 rng(20250101);
  int loaded = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kMutations; ++i) {
    std::string bytes = mutate(original, rng);
    if (rng() % 8 == 0) bytes = mutate(std::move(bytes), rng);  // some double mutations
    try {
      const File f = File::parse(std::move(bytes), "fuzz.safetensors");
      check_loaded(f);
      if (HasFatalFailure()) return;
      ++loaded;
    } catch (const Error& e) {
      ASSERT_EQ(std::string(e.what()).rfind("fuzz.safetensors", 0), 0u) << e.what();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Bit flips in the data and harmless header edits must still load, or the fuzz proves little.
  EXPECT_GT(loaded, kMutations / 50);
  EXPECT_LT(loaded, kMutations / 2);
  EXPECT_LT(seconds, 10.0);
  std::printf("%d of %d mutations loaded in %.2f s\n", loaded, kMutations, seconds);
}

}  // namespace
}  // namespace cca::safetensors
