#include "checkpoint/checkpoint_store.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::checkpoint_store {
namespace {

const std::string kStepPrefix = "step_";
const std::string kStagingPrefix = ".staging-";
const std::string kReplacedPrefix = ".replaced-";

std::string errno_text() {
  return std::strerror(errno);
}

// Staging folders in use by this process, by (device, inode): prune() and newest_complete() must
// not treat a live one as a crashed writer's leftover, and a pid alone cannot tell (containers
// often give every run the same pid).
std::mutex live_mutex;
std::set<std::string> live_staging;  // "device:inode"

// "device:inode" of `path`, or "" when it does not exist.
std::string identity(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";
  return format("{}:{}", st.st_dev, st.st_ino);
}

bool is_live_staging(const std::string& path) {
  const std::string id = identity(path);
  const std::lock_guard<std::mutex> lock(live_mutex);
  return !id.empty() && live_staging.count(id) != 0;
}

void set_live(const std::string& path, bool live) {
  const std::string id = identity(path);
  if (id.empty()) return;
  const std::lock_guard<std::mutex> lock(live_mutex);
  if (live) {
    live_staging.insert(id);
  } else {
    live_staging.erase(id);
  }
}

// The step of a name written by step_folder_name(), or nullopt for any other spelling (so
// "step_1" and "step_00000001" can never both count as step 1).
std::optional<int64_t> parse_step_name(const std::string& name) {
  if (name.compare(0, kStepPrefix.size(), kStepPrefix) != 0) return std::nullopt;
  const std::string digits = name.substr(kStepPrefix.size());
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int64_t step = std::stoll(digits);
  if (step_folder_name(step) != name) return std::nullopt;
  return step;
}

// "step_00000042" out of ".staging-step_00000042-123" or ".replaced-step_00000042-123".
std::optional<int64_t> parse_temporary_name(const std::string& name, const std::string& prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash < prefix.size()) return std::nullopt;
  return parse_step_name(name.substr(prefix.size(), dash - prefix.size()));
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) throw Error(format("{}: cannot open for fsync: {}", path, errno_text()));
  // Some file systems cannot sync a folder (EINVAL); their renames are then as durable as it gets.
  if (::fsync(fd) != 0 && !(directory && errno == EINVAL)) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error(format("{}: fsync failed: {}", path, why));
  }
  ::close(fd);
}

// Files written by other code (through path()) may not have been synced yet.
void fsync_tree(const std::string& dir) {
  for (const std::string& name : files::list_directory(dir)) {
    const std::string path = files::join(dir, name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      fsync_tree(path);
    } else if (S_ISREG(st.st_mode)) {
      fsync_path(path, false);
    }
  }
  fsync_path(dir, true);
}

void write_synced(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(format("{}: cannot create: {}", path, errno_text()));
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, std::min(left, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = errno_text();
      ::close(fd);
      throw Error(format("{}: write failed: {}", path, why));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error(format("{}: fsync failed: {}", path, why));
  }
  if (::close(fd) != 0) throw Error(format("{}: close failed: {}", path, errno_text()));
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

void pause_for_fault_injection() {
  const char* value = std::getenv("CCA_TEST_CHECKPOINT_PAUSE_MS");
  if (value == nullptr || *value == '\0') return;
  char* end = nullptr;
  const long ms = std::strtol(value, &end, 10);
  if (*end != '\0' || ms < 0) {
    throw Error(format("CCA_TEST_CHECKPOINT_PAUSE_MS is \"{}\" (expected milliseconds)", value));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Puts the complete folder `from` at `to`, where a checkpoint of the same step already is. The
// old one stays on disk under some name until the new one has its final name.
void replace_existing(const std::string& root, const std::string& from, const std::string& to,
                      const std::string& step_name) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_path(root, true);
    files::remove_tree(from);  // now holds the old checkpoint
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    throw Error(format("{}: cannot swap in {}: {}", to, from, errno_text()));
  }
  // No atomic exchange here (e.g. NFS): a crash between the two renames leaves the old copy under
  // the .replaced- name, which newest_complete() reports and prune() keeps.
  const std::string aside =
      files::join(root, format("{}{}-{}", kReplacedPrefix, step_name, ::getpid()));
  files::remove_tree(aside);
  files::rename_path(to, aside);
  try {
    files::rename_path(from, to);
  } catch (const Error&) {
    ::rename(aside.c_str(), to.c_str());  // put the old one back; the error says what failed
    throw;
  }
  fsync_path(root, true);
  files::remove_tree(aside);
}

// Best effort: DONE first, so a removal cut short leaves a torn folder rather than a complete one.
void remove_checkpoint(const std::string& path) {
  files::remove_file(files::join(path, kDoneMarker));
  files::remove_tree(path);
}

}  // namespace

std::string step_folder_name(int64_t step) {
  if (step < 0) throw Error(format("checkpoint step {} is negative (expected >= 0)", step));
  std::string digits = std::to_string(step);
  if (digits.size() < 8) digits.insert(0, 8 - digits.size(), '0');
  return kStepPrefix + digits;
}

// --- Staging -----------------------------------------------------------------------------------

Staging::Staging(std::string root, int64_t step) : root_(std::move(root)), step_(step) {
  const std::string name = format("{}{}-{}", kStagingPrefix, step_folder_name(step), ::getpid());
  dir_ = files::join(root_, name);
  files::make_directories(root_);
  if (is_live_staging(dir_)) {
    throw Error(format("{}: this process is already writing checkpoint step {} here", dir_, step));
  }
  files::remove_tree(dir_);
  if (::mkdir(dir_.c_str(), 0755) != 0) {
    throw Error(format("{}: cannot create the checkpoint staging folder: {}", dir_, errno_text()));
  }
  set_live(dir_, true);
}

Staging::~Staging() {
  if (committed_) return;
  set_live(dir_, false);
  files::remove_tree(dir_);
}

std::string Staging::path(const std::string& name) const {
  const bool parent_ref = name == ".." || name.compare(0, 3, "../") == 0 ||
                          name.find("/../") != std::string::npos ||
                          (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0);
  if (name.empty() || name[0] == '/' || parent_ref || name == kDoneMarker) {
    throw Error(
        format("{}: bad checkpoint file name \"{}\" (expected a relative path inside the "
               "checkpoint, not \"{}\")",
               dir_, name, kDoneMarker));
  }
  if (committed_) throw Error(format("{}: checkpoint already committed", dir_));
  return files::join(dir_, name);
}

void Staging::write_file(const std::string& name, const std::string& bytes) {
  const std::string file = path(name);
  files::make_directories(files::parent_path(file));
  write_synced(file, bytes);
}

std::string Staging::commit() {
  if (committed_) throw Error(format("{}: checkpoint committed twice", dir_));
  fsync_tree(dir_);
  Json::Object done;
  done["step"] = Json(step_);
  done["committed_utc"] = Json(utc_now());
  write_synced(files::join(dir_, kDoneMarker), Json(std::move(done)).dump(2) + "\n");
  fsync_path(dir_, true);
  pause_for_fault_injection();

  const std::string step_name = step_folder_name(step_);
  const std::string final_dir = files::join(root_, step_name);
  set_live(dir_, false);
  if (files::exists(final_dir)) {
    replace_existing(root_, dir_, final_dir, step_name);
  } else {
    files::rename_path(dir_, final_dir);
    fsync_path(root_, true);
  }
  committed_ = true;
  return final_dir;
}

// --- Listing and pruning -----------------------------------------------------------------------

bool is_complete(const std::string& checkpoint_dir) {
  return files::is_regular_file(files::join(checkpoint_dir, kDoneMarker));
}

std::vector<Entry> list(const std::string& root) {
  std::vector<Entry> entries;
  if (!files::is_directory(root)) return entries;
  for (const std::string& name : files::list_directory(root)) {
    const auto step = parse_step_name(name);
    const std::string path = files::join(root, name);
    if (!step || !files::is_directory(path)) continue;
    entries.push_back({*step, path, is_complete(path)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.step < b.step; });
  return entries;
}

std::optional<Entry> newest_complete(const std::string& root, std::vector<std::string>* warnings) {
  const std::vector<Entry> entries = list(root);
  std::optional<Entry> newest;
  for (const Entry& e : entries) {
    if (e.complete) newest = e;
  }
  if (warnings == nullptr) return newest;
  for (const Entry& e : entries) {
    if (!e.complete && (!newest || e.step > newest->step)) {
      warnings->push_back(
          format("skipping torn checkpoint {} (no {} marker: the writer was interrupted)", e.path,
                 kDoneMarker));
    }
  }
  if (!files::is_directory(root)) return newest;
  for (const std::string& name : files::list_directory(root)) {
    const std::string path = files::join(root, name);
    if (parse_temporary_name(name, kStagingPrefix) && !is_live_staging(path)) {
      warnings->push_back(
          format("skipping unfinished checkpoint {} (a staging folder: the writer was interrupted "
                 "before it committed)",
                 path));
    } else if (const auto step = parse_temporary_name(name, kReplacedPrefix);
               step && !is_complete(files::join(root, step_folder_name(*step)))) {
      warnings->push_back(format(
          "found {}, an older copy of step {} left by an interrupted replacement (rename it to "
          "{} to use it)",
          path, *step, step_folder_name(*step)));
    }
  }
  return newest;
}

std::vector<std::string> prune(const std::string& root, int64_t keep_last, int64_t keep_every) {
  std::vector<std::string> removed;
  const std::vector<Entry> entries = list(root);
  std::vector<const Entry*> complete;
  for (const Entry& e : entries) {
    if (e.complete) complete.push_back(&e);
  }
  const int64_t newest_step = complete.empty() ? -1 : complete.back()->step;
  const auto count = static_cast<int64_t>(complete.size());
  for (int64_t i = 0; i < count; ++i) {
    const Entry& e = *complete[static_cast<size_t>(i)];
    const bool recent = keep_last <= 0 || i >= count - keep_last;
    const bool milestone = keep_every > 0 && e.step % keep_every == 0;
    if (recent || milestone) continue;
    remove_checkpoint(e.path);
    removed.push_back(e.path);
  }
  for (const Entry& e : entries) {
    if (e.complete || e.step >= newest_step) continue;
    files::remove_tree(e.path);
    removed.push_back(e.path);
  }
  if (!files::is_directory(root)) return removed;
  for (const std::string& name : files::list_directory(root)) {
    const std::string path = files::join(root, name);
    const auto replaced = parse_temporary_name(name, kReplacedPrefix);
    const bool stale_staging = parse_temporary_name(name, kStagingPrefix) && !is_live_staging(path);
    const bool stale_replaced = replaced && *replaced <= newest_step;
    if (!stale_staging && !stale_replaced) continue;
    files::remove_tree(path);
    removed.push_back(path);
  }
  return removed;
}

}  // namespace cca::checkpoint_store
