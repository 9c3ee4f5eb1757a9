#include "util/error.h"

#include <sstream>

namespace cca {

std::string Origin::describe() const {
  if (file.empty()) return "(default)";
  std::ostringstream out;
  out << file;
  if (line > 0) out << ':' << line;
  if (line > 0 && column > 0) out << ':' << column;
  return out.str();
}

ConfigError::ConfigError(std::string subject, std::vector<Diagnostic> diagnostics)
    : Error(render(subject, diagnostics)), diagnostics_(std::move(diagnostics)) {}

std::string ConfigError::render(const std::string& subject, const std::vector<Diagnostic>& all) {
  std::ostringstream out;
  out << "invalid configuration " << subject << " (" << all.size()
      << (all.size() == 1 ? " error" : " errors") << "):";
  for (const Diagnostic& d : all) out << "\n  " << d.origin.describe() << ": " << d.message;
  return out.str();
}

}  // namespace cca
