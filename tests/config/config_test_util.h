// Helpers shared by the config test suites: a fresh scratch folder per test, and catching the
// ConfigError a load is expected to throw.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "util/error.h"

namespace cca::testutil {

namespace fs = std::filesystem;

// A folder under the system temp dir that exists for one test and is removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info != nullptr ? std::string(info->test_suite_name()) + "_" + info->name()
                                       : std::string("scratch");
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    static int counter = 0;
    path_ = fs::path(::testing::TempDir()) / ("cca_cfg_" + std::to_string(::getpid()) + "_" +
                                              std::to_string(counter++) + "_" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const fs::path& path() const { return path_; }

  // Writes `text` to `relative` (creating folders) and returns the file's full path.
  std::string write(const std::string& relative, const std::string& text) const {
    const fs::path file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out << text;
    out.close();
    EXPECT_TRUE(out) << "could not write " << file;
    return file.string();
  }

 private:
  fs::path path_;
};

// Runs `body`, which must throw ConfigError, and returns that error (records a failure if not).
inline ConfigError expect_config_error(const std::function<void()>& body) {
  try {
    body();
  } catch (const ConfigError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << e.what();
    return ConfigError("(wrong exception)", {});
  }
  ADD_FAILURE() << "expected ConfigError, but loading succeeded";
  return ConfigError("(no error)", {});
}

inline ConfigError load_text_error(const std::string& yaml, const LoadOptions& options = {}) {
  return expect_config_error([&] { load_config_text(yaml, "test.yaml", options); });
}

inline ConfigError load_file_error(const std::string& path, const LoadOptions& options = {}) {
  return expect_config_error([&] { load_config(path, options); });
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Counts the diagnostics whose message contains `needle`.
inline size_t count_messages(const ConfigError& e, const std::string& needle) {
  size_t n = 0;
  for (const Diagnostic& d : e.diagnostics()) n += contains(d.message, needle) ? 1 : 0;
  return n;
}

}  // namespace cca::testutil
