// Every file in tests/config/invalid/ must fail to load with the messages its "# expect:" lines
// name. Helper files that other cases include live in invalid/includes/ and are not cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/loader.h"
#include "util/error.h"

namespace cca {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMinimumCases = 15;

const fs::path& invalid_dir() {
  static const fs::path dir = fs::path(CCA_SOURCE_DIR) / "tests" / "config" / "invalid";
  return dir;
}

// The case files, sorted, directly inside the folder (sub-folders hold helpers).
std::vector<std::string> case_files() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(invalid_dir(), ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The text after "# expect:" on each such line, trimmed.
std::vector<std::string> expectations(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  const std::string marker = "# expect:";
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, marker.size(), marker) != 0) continue;
    std::string text = line.substr(marker.size());
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t\r") + 1);
    out.push_back(text);
  }
  return out;
}

TEST(InvalidConfigs, FolderHoldsEnoughCases) {
  ASSERT_TRUE(fs::is_directory(invalid_dir())) << invalid_dir();
  EXPECT_GE(case_files().size(), kMinimumCases);
}

TEST(InvalidConfigs, HelperFilesAreNotCases) {
  // The include helpers sit one level down, where the case iterator does not look.
  EXPECT_TRUE(fs::exists(invalid_dir() / "includes" / "cycle_a.yaml"));
  const std::vector<std::string> files = case_files();
  EXPECT_EQ(std::count(files.begin(), files.end(), "cycle_a.yaml"), 0);
}

class InvalidConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidConfig, FailsWithTheExpectedMessages) {
  const fs::path file = invalid_dir() / GetParam();
  const std::vector<std::string> expected = expectations(file);
  ASSERT_FALSE(expected.empty()) << file << " has no '# expect: <substring>' line";
  for (const std::string& text : expected) {
    ASSERT_FALSE(text.empty()) << file << " has an empty '# expect:' line";
  }
  try {
    load_config(file.string());
    FAIL() << file << " loaded without error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_FALSE(e.diagnostics().empty());
    EXPECT_TRUE(what.find("invalid configuration '" + file.string() + "'") != std::string::npos)
        << what;
    for (const std::string& text : expected) {
      EXPECT_TRUE(what.find(text) != std::string::npos)
          << "expected \"" << text << "\" in the error of " << file << ":\n"
          << what;
    }
  } catch (const std::exception& e) {
    FAIL() << file << " threw something other than ConfigError: " << e.what();
  }
}

std::string case_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Files, InvalidConfig, ::testing::ValuesIn(case_files()), case_name);

}  // namespace
}  // namespace cca
