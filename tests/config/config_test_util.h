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
#include "testing/scratch_dir.h"
#include "util/error.h"

namespace cca::testutil {

namespace fs = std::filesystem;

using ScratchDir = cca::testing::ScratchDir;

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
