// File-system helpers on plain POSIX calls. The rule for lib/ and apps/: every path operation
// goes through these, never std::filesystem. LibTorch's libtorch.so exports its own
// std::filesystem symbols, which take precedence in any binary that links torch (every app links
// it, whichever library the code sits in), and its remove_all crashed (null call) in cca-data.
// Errors are cca::Error naming the path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cca::files {

bool exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);  // follows symlinks
uint64_t file_size(const std::string& path);

// Entry names (no "." and ".."), sorted.
std::vector<std::string> list_directory(const std::string& dir);
// Regular files below `dir`, recursively, skipping hidden names and symlinked folders; appended
// to `out` in sorted order.
void walk_files(const std::string& dir, std::vector<std::string>& out);

// The whole file; throws cca::Error naming the path (and `what` it was, e.g. "manifest") when it
// cannot be read or is larger than `max_bytes`.
std::string read_file(const std::string& path, const std::string& what = "file",
                      uint64_t max_bytes = uint64_t{1} << 30);

void make_directories(const std::string& path);
// The same, reporting instead of throwing: false with the reason in the system's words ("Permission
// denied", "Not a directory") when the folder could not be made.
bool make_directories(const std::string& path, std::string& reason);
// Best effort, never throws: for cleaning up staging folders.
void remove_tree(const std::string& path) noexcept;
void remove_file(const std::string& path) noexcept;
void rename_path(const std::string& from, const std::string& to);
void copy_file(const std::string& from, const std::string& to);

// "a/b/c.bin" -> "a/b"; "c.bin" -> ""; "/c.bin" -> "/".
std::string parent_path(const std::string& path);
// "a/b/c.bin" -> "c.bin".
std::string file_name(const std::string& path);
// join("a", "b") -> "a/b"; join("", "b") -> "b".
std::string join(const std::string& dir, const std::string& name);
// The textual normal form, as std::filesystem's lexically_normal gives it: "a/./b/../c" -> "a/c",
// "a//b" -> "a/b", "a/.." -> ".", "../x" stays; "" stays "". Touches no disk.
std::string lexically_normal(const std::string& path);
// The absolute path with symbolic links, "." and ".." resolved (realpath); "" when that fails,
// e.g. when the path does not exist.
std::string canonical_path(const std::string& path);
// The working directory; throws cca::Error when it cannot be read.
std::string current_directory();

}  // namespace cca::files
