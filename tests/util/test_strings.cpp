#include <gtest/gtest.h>

#include "util/strings.h"

namespace cca {
namespace {

TEST(Strings, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("d_model", "d_modle"), 2u);
}

TEST(Strings, DidYouMean) {
  const std::vector<std::string> keys = {"model.d_model", "optim.lr", "train.steps"};
  EXPECT_EQ(did_you_mean("model.d_modle", keys), "model.d_model");
  EXPECT_EQ(did_you_mean("train.lr", keys), "optim.lr");  // same leaf, other section
  EXPECT_EQ(did_you_mean("completely.different", keys), "");
}

TEST(Strings, Divisors) {
  EXPECT_EQ(divisors_text(12), "1, 2, 3, 4, 6, 12");
  EXPECT_EQ(divisors_text(7), "1, 7");
  EXPECT_EQ(divisors_text(1024, 3), "1, 2, 4");
}

TEST(Strings, QuotedEscapesWhatJsonAndYamlNeed) {
  std::string out;
  append_quoted(out, std::string("a\"b\\c\nd\te\x01"));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
}

TEST(Strings, NonblankLinesKeepTheirNumbers) {
  std::vector<std::pair<std::string, int64_t>> seen;
  for_each_nonblank_line("a\n\n \t\r\n{\"b\": 1}\r\nlast", [&](std::string_view line, int64_t n) {
    seen.emplace_back(std::string(line), n);
  });
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"a", 1}, {"{\"b\": 1}\r", 4}, {"last", 5}};
  EXPECT_EQ(seen, want);
  int calls = 0;
  for_each_nonblank_line("", [&](std::string_view, int64_t) { ++calls; });
  for_each_nonblank_line("\n\n", [&](std::string_view, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
// The one UTF-8 encoder: each length class at its boundaries, and surrogates in their raw
// 3-byte form (the callers' policy decides whether they stay).
TEST(Strings, Utf8EncodesEveryLengthAndLeavesSurrogatesToTheCaller) {
  const auto utf8 = [](uint32_t cp) {
    std::string out;
    append_utf8(out, cp);
    return out;
  };
  EXPECT_EQ(utf8(0x41), "A");
  EXPECT_EQ(utf8(0x7F), "\x7F");
  EXPECT_EQ(utf8(0xE9), "\xC3\xA9");
  EXPECT_EQ(utf8(0x7FF), "\xDF\xBF");
  EXPECT_EQ(utf8(0x20AC), "\xE2\x82\xAC");
  EXPECT_EQ(utf8(0xFFFF), "\xEF\xBF\xBF");
  EXPECT_EQ(utf8(0x1F600), "\xF0\x9F\x98\x80");
  EXPECT_EQ(utf8(0x10FFFF), "\xF4\x8F\xBF\xBF");
  EXPECT_EQ(utf8(0xD800), "\xED\xA0\x80");
  EXPECT_TRUE(is_surrogate(0xD800) && is_surrogate(0xDFFF));
  EXPECT_FALSE(is_surrogate(0xD7FF) || is_surrogate(0xE000));
}

}  // namespace cca
