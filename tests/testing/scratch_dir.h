// A folder under the system temp dir that exists for one test and is removed afterwards; named
// after the test and the process so parallel ctest runs never share one. Creation and removal go
// through cca::files: std::filesystem's remove_all crashes in binaries that link LibTorch.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/files.h"

namespace cca::testing {

class ScratchDir {
 public:
  ScratchDir() {
    namespace fs = std::filesystem;
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info != nullptr ? std::string(info->test_suite_name()) + "_" + info->name()
                                       : std::string("shared");
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    static int counter = 0;
    path_ = fs::path(::testing::TempDir()) / ("cca_test_" + std::to_string(::getpid()) + "_" +
                                              std::to_string(counter++) + "_" + name);
    files::remove_tree(path_.string());
    files::make_directories(path_.string());
  }
  ~ScratchDir() { files::remove_tree(path_.string()); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

  // Writes `text` to `relative` (creating folders) and returns the file's full path.
  std::string write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path file = path_ / relative;
    files::make_directories(file.parent_path().string());
    std::ofstream out(file, std::ios::binary);
    out << text;
    out.close();
    EXPECT_TRUE(out) << "could not write " << file;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace cca::testing
