// The remote-code modeling files (lib/interop/hf_remote/*.py), embedded into the binary at build
// time (lib/CMakeLists.txt generates the definition), so an installed cca-train writes them
// without a source tree.
#pragma once

#include <string>
#include <vector>

namespace cca::interop {

struct EmbeddedFile {
  std::string name;  // "modeling_cca_train.py"
  std::string text;
};

// Every embedded file, by name; empty when the build had none.
const std::vector<EmbeddedFile>& remote_code_files();

}  // namespace cca::interop
