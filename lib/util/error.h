// Error types shared by every part of cca-train. Apps catch these in main and turn them into a
// message on stderr and a non-zero exit status, never an uncaught-exception trace.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace cca {

// A failure the user can act on (bad input, missing file, unsupported setting). Exit status 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a configuration value came from: a file position or the command line.
struct Origin {
  std::string file;  // file path, "--set" for command-line overrides, empty for a default
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown

  std::string describe() const;  // "file:line:col", "--set" or "(default)"
};

struct Diagnostic {
  Origin origin;
  std::string message;
};

// Every problem found in one configuration, reported together. Exit status 2.
class ConfigError : public Error {
 public:
  ConfigError(std::string subject, std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  static std::string render(const std::string& subject, const std::vector<Diagnostic>& all);
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace cca
