#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/log.h"

namespace cca {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Log, LevelsParseAndReject) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::debug);
  EXPECT_STREQ(log::level_name(log::Level::warn), "warn");
  try {
    log::parse_level("verbose");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("allowed: trace, debug, info, warn, error, off"),
              std::string::npos);
  }
}

TEST(Log, RankFileGetsEveryMessageAtItsLevelAndAppends) {
  const auto dir = std::filesystem::temp_directory_path() / "cca_test_log";
  std::filesystem::create_directories(dir);
  const auto path = dir / "rank3.log";
  std::filesystem::remove(path);
  log::Options options;
  options.level = log::Level::info;
  options.rank = 3;
  options.rank_file_path = path.string();
  log::init(options);
  log::debug("hidden {}", 1);
  log::info("step {} loss {:.2f}", 7, 2.345);
  log::warn("slow step");
  log::flush();
  log::init(options);  // a resumed run appends
  log::info("resumed");
  log::flush();
  const std::string text = read_file(path);
  EXPECT_NE(text.find("[rank 3] [info] step 7 loss 2.35"), std::string::npos) << text;
  EXPECT_NE(text.find("[warning] slow step"), std::string::npos) << text;
  EXPECT_NE(text.find("resumed"), std::string::npos);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_FALSE(log::enabled(log::Level::debug));
  EXPECT_TRUE(log::enabled(log::Level::info));
  log::init(log::Options{});
}

TEST(Log, UnwritableFileIsAClearError) {
  // A regular file where a folder should be: not creatable even by root.
  const auto blocker = std::filesystem::temp_directory_path() / "cca_test_log_blocker";
  std::ofstream(blocker) << "x";
  log::Options options;
  options.rank_file_path = (blocker / "rank0.log").string();
  EXPECT_THROW(log::init(options), Error);
}

}  // namespace
}  // namespace cca
