#include "util/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "util/error.h"
#include "util/format.h"

namespace cca::files {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(format("{}: cannot open {}: {}", path, what, errno_text()));
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = errno_text();
      ::close(fd);
      throw Error(format("{}: read error: {}", path, reason));
    }
    if (n == 0) break;
    if (text.size() + static_cast<uint64_t>(n) > max_bytes) {
      ::close(fd);
      throw Error(format("{}: {} is larger than {} bytes", path, what, max_bytes));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(format("{}: cannot read: {}", path, errno_text()));
  return static_cast<uint64_t>(st.st_size);
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), &::closedir);
  if (!handle) throw Error(format("{}: cannot read folder: {}", dir, errno_text()));
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(handle.get())) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  if (errno != 0) throw Error(format("{}: cannot read folder: {}", dir, errno_text()));
  std::sort(names.begin(), names.end());
  return names;
}

void walk_files(const std::string& dir, std::vector<std::string>& out) {
  for (const std::string& name : list_directory(dir)) {
    if (name[0] == '.') continue;  // hidden files and folders (.git, editor swap files)
    const std::string path = join(dir, name);
    struct stat link {};
    if (::lstat(path.c_str(), &link) != 0) continue;  // vanished meanwhile
    if (S_ISDIR(link.st_mode)) {
      walk_files(path, out);
    } else if (is_regular_file(path)) {
      out.push_back(path);
    }
  }
}

namespace {

// Where making a folder failed: `error` is errno, or 0 when something that is not a folder is in
// the way.
struct FolderFailure {
  std::string path;
  int error = 0;
};

// Makes `path` and its missing parents; the first failure, if any.
std::optional<FolderFailure> create_folders(const std::string& path) {
  if (path.empty() || is_directory(path)) return std::nullopt;
  const std::string parent = parent_path(path);
  if (!parent.empty() && parent != path) {
    if (auto failure = create_folders(parent)) return failure;
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return FolderFailure{path, errno};
  if (!is_directory(path)) return FolderFailure{path, 0};
  return std::nullopt;
}

}  // namespace

void make_directories(const std::string& path) {
  const auto failure = create_folders(path);
  if (!failure) return;
  if (failure->error == 0) throw Error(format("{}: exists and is not a folder", failure->path));
  throw Error(format("{}: cannot create folder: {}", failure->path, std::strerror(failure->error)));
}

bool make_directories(const std::string& path, std::string& reason) {
  const auto failure = create_folders(path);
  if (failure) reason = std::strerror(failure->error == 0 ? ENOTDIR : failure->error);
  return !failure;
}

void remove_tree(const std::string& path) noexcept {
  if (path.empty()) return;
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int type, struct FTW*) {
        if (type == FTW_DP) {
          ::rmdir(p);
        } else {
          ::unlink(p);
        }
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

void remove_file(const std::string& path) noexcept {
  ::unlink(path.c_str());
}

void rename_path(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    throw Error(format("{}: cannot move to {}: {}", from, to, errno_text()));
  }
}

void copy_file(const std::string& from, const std::string& to) {
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(from.c_str(), "rb"), &std::fclose);
  if (!in) throw Error(format("{}: cannot open: {}", from, errno_text()));
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(to.c_str(), "wb"), &std::fclose);
  if (!out) throw Error(format("{}: cannot create: {}", to, errno_text()));
  char block[1 << 16];
  size_t got;
  while ((got = std::fread(block, 1, sizeof(block), in.get())) > 0) {
    if (std::fwrite(block, 1, got, out.get()) != got) {
      throw Error(format("{}: write failed: {}", to, errno_text()));
    }
  }
  if (std::ferror(in.get())) throw Error(format("{}: read error: {}", from, errno_text()));
  if (std::fflush(out.get()) != 0) throw Error(format("{}: write failed: {}", to, errno_text()));
}

std::string parent_path(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string file_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string lexically_normal(const std::string& path) {
  if (path.empty()) return path;
  const bool absolute = path[0] == '/';
  std::vector<std::string> parts;
  std::string last;  // the last piece between slashes, "" after a trailing slash
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    last = path.substr(start, slash - start);
    if (last == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(last);  // above a relative start: kept; above the root: dropped
      }
    } else if (!last.empty() && last != ".") {
      parts.push_back(last);
    }
    start = slash + 1;
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? "/" : "") + parts[i];
  // A path that ended on a folder ("a/b/", "a/b/.", "a/b/c/..") keeps saying so.
  const bool names_folder = last.empty() || last == "." || last == "..";
  if (names_folder && !parts.empty() && parts.back() != "..") out += "/";
  return out.empty() ? "." : out;
}

std::string canonical_path(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> resolved(::realpath(path.c_str(), nullptr), &std::free);
  return resolved ? std::string(resolved.get()) : std::string();
}

std::string current_directory() {
  std::unique_ptr<char, void (*)(void*)> cwd(::getcwd(nullptr, 0), &std::free);
  if (!cwd) throw Error(format("cannot read the working directory: {}", errno_text()));
  return cwd.get();
}

}  // namespace cca::files
