// `cca-train verify PATH`: checks every checkpoint of a run against the sizes and checksums in
// its DONE marker and prints one line per checkpoint. Read-only: nothing is moved or deleted
// (`--resume auto` is what sets corrupt checkpoints aside).
#pragma once

#include <ostream>
#include <string>

namespace cca::checkpoint_store {

// PATH is a run folder (its checkpoints/), a checkpoints folder, or one checkpoint folder.
// Returns 0 when every complete checkpoint is intact (or predates checksums), 1 when one is
// corrupt or none was found. Writes a table, or with `json` one JSON object, to `out`.
int verify_run(const std::string& path, bool json, std::ostream& out);

}  // namespace cca::checkpoint_store
