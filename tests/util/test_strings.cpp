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
}  // namespace cca
