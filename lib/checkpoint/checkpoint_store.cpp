#include "checkpoint/checkpoint_store.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
#include "util/parallel.h"
#include "util/strings.h"

namespace cca::checkpoint_store {
namespace {

const std::string kStepPrefix = "step_";
const std::string kStagingPrefix = ".staging-";
const std::string kReplacedPrefix = ".replaced-";
const std::string kCorruptPrefix = ".corrupt-";
const char* const kCorruptNote = "CORRUPT.txt";

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

// Commits still to fail (inject_commit_failures); -1 until read from the environment.
std::atomic<long> pending_failures{-1};

void fail_for_fault_injection(const std::string& dir) {
  long expected = -1;
  if (pending_failures.load() == -1) {
    const char* value = std::getenv("CCA_TEST_CHECKPOINT_FAIL_COMMITS");
    long count = 0;
    if (value != nullptr && *value != '\0') {
      char* end = nullptr;
      count = std::strtol(value, &end, 10);
      if (*end != '\0' || count < 0) {
        throw Error(format("CCA_TEST_CHECKPOINT_FAIL_COMMITS is \"{}\" (expected a count)", value));
      }
    }
    pending_failures.compare_exchange_strong(expected, count);
  }
  long left = pending_failures.load();
  while (left > 0 && !pending_failures.compare_exchange_weak(left, left - 1)) {
  }
  if (left <= 0) return;
  throw Error(format("{}: write failed: {} (simulated by CCA_TEST_CHECKPOINT_FAIL_COMMITS)", dir,
                     std::strerror(ENOSPC)));
}

// Regular files below `dir` as paths relative to it, hidden names included (a checkpoint is ours
// alone: anything in it must be accounted for).
void relative_files(const std::string& dir, const std::string& prefix,
                    std::vector<std::string>& out) {
  for (const std::string& name : files::list_directory(dir)) {
    const std::string path = files::join(dir, name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      relative_files(path, prefix + name + "/", out);
    } else {
      out.push_back(prefix + name);
    }
  }
}

bool is_safe_relative_name(const std::string& name) {
  const bool parent_ref = name == ".." || name.compare(0, 3, "../") == 0 ||
                          name.find("/../") != std::string::npos ||
                          (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0);
  return !name.empty() && name[0] != '/' && !parent_ref;
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
  if (!is_safe_relative_name(name) || name == kDoneMarker) {
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
  record(name, {bytes.size(), xxh64(bytes)});
}

void Staging::record(const std::string& name, const FileDigest& digest) {
  (void)path(name);  // validates the name
  digests_[name] = digest;
}

std::string Staging::commit() {
  if (committed_) throw Error(format("{}: checkpoint committed twice", dir_));
  std::vector<std::string> present;
  relative_files(dir_, "", present);
  Json::Object listed;
  for (const std::string& name : present) {
    const auto digest = digests_.find(name);
    if (digest == digests_.end()) {
      throw Error(
          format("{}: file '{}' has no recorded checksum (every file of a checkpoint goes "
                 "through Staging::write_file() or record())",
                 dir_, name));
    }
    const uint64_t size = files::file_size(files::join(dir_, name));
    if (size != digest->second.bytes) {
      throw Error(format("{}: file '{}' is {} bytes, but {} were recorded", dir_, name, size,
                         digest->second.bytes));
    }
    Json::Object entry;
    entry["bytes"] = Json(static_cast<int64_t>(size));
    entry["xxh64"] = Json(hex64(digest->second.xxh64));
    listed[name] = Json(std::move(entry));
  }
  fail_for_fault_injection(dir_);
  fsync_tree(dir_);
  Json::Object done;
  done["step"] = Json(step_);
  done["committed_utc"] = Json(utc_now());
  done["files"] = Json(std::move(listed));
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

void inject_commit_failures(long count) {
  pending_failures = count;
}

// --- Verification ------------------------------------------------------------------------------

namespace {

struct ListedFile {
  std::string name;
  uint64_t bytes = 0;
  uint64_t xxh64 = 0;
};

// The "files" of a DONE marker; false (with a problem) when it is malformed.
bool parse_listing(const Json& files_json, const std::string& done_path,
                   std::vector<ListedFile>& listed, std::vector<std::string>& problems) {
  try {
    for (const auto& [name, entry] : files_json.as_object("files")) {
      ListedFile file;
      file.name = name;
      if (!is_safe_relative_name(name) || name == kDoneMarker) {
        problems.push_back(
            format("{}: lists \"{}\", which is not a file name inside the "
                   "checkpoint",
                   done_path, name));
        return false;
      }
      file.bytes = static_cast<uint64_t>(entry.at("bytes", done_path).as_int("bytes", 0));
      const std::string& hash = entry.at("xxh64", done_path).as_string("xxh64");
      if (!parse_hex64(hash, file.xxh64)) {
        problems.push_back(format("{}: checksum of '{}' is \"{}\" (expected 16 hex digits)",
                                  done_path, name, hash));
        return false;
      }
      listed.push_back(std::move(file));
    }
  } catch (const Error& e) {
    problems.push_back(format("{}: unreadable: {}", done_path, e.what()));
    return false;
  }
  return true;
}

}  // namespace

const char* status_name(Verification::Status status) {
  switch (status) {
    case Verification::Status::intact:
      return "intact";
    case Verification::Status::unverifiable:
      return "unverifiable";
    case Verification::Status::corrupt:
      return "corrupt";
    case Verification::Status::torn:
      return "torn";
  }
  return "?";
}

Verification verify(const std::string& checkpoint_dir) {
  const auto start = std::chrono::steady_clock::now();
  Verification v;
  const auto finish = [&](Verification::Status status) {
    v.status = status;
    v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return v;
  };
  const std::string done_path = files::join(checkpoint_dir, kDoneMarker);
  if (!is_complete(checkpoint_dir)) {
    v.problems.push_back(
        format("{}: no {} marker: the writer was interrupted", checkpoint_dir, kDoneMarker));
    return finish(Verification::Status::torn);
  }
  std::vector<ListedFile> listed;
  try {
    const Json done = parse_json(files::read_file(done_path, "DONE marker", 64u << 20), done_path);
    const Json* files_json = done.is_object() ? done.find("files") : nullptr;
    if (!done.is_object()) {
      v.problems.push_back(done_path + ": not a JSON object");
      return finish(Verification::Status::corrupt);
    }
    if (files_json == nullptr) return finish(Verification::Status::unverifiable);
    if (!parse_listing(*files_json, done_path, listed, v.problems)) {
      return finish(Verification::Status::corrupt);
    }
  } catch (const Error& e) {
    v.problems.push_back(format("{}: unreadable: {}", done_path, e.what()));
    return finish(Verification::Status::corrupt);
  }
  // Biggest first, one thread each: the model and optimizer files dominate.
  std::sort(listed.begin(), listed.end(),
            [](const ListedFile& a, const ListedFile& b) { return a.bytes > b.bytes; });
  std::vector<std::string> found(listed.size());
  std::vector<uint64_t> hashed(listed.size(), 0);
  parallel_for(listed.size(), static_cast<size_t>(std::min(thread_count(0), 4)),
               [&](size_t, size_t i) {
                 const ListedFile& file = listed[i];
                 const std::string path = files::join(checkpoint_dir, file.name);
                 if (!files::is_regular_file(path)) {
                   found[i] = format("{}: missing (listed in {})", path, kDoneMarker);
                   return;
                 }
                 const uint64_t size = files::file_size(path);
                 if (size != file.bytes) {
                   found[i] = format("{}: {} bytes, but {} lists {}: truncated or replaced", path,
                                     size, kDoneMarker, file.bytes);
                   return;
                 }
                 uint64_t actual = 0;
                 try {
                   actual = xxh64_file(path);
                 } catch (const Error& e) {
                   found[i] = e.what();
                   return;
                 }
                 hashed[i] = size;
                 if (actual != file.xxh64) {
                   found[i] = format(
                       "{}: content checksum (XXH64) is {}, but {} lists {}: the "
                       "file changed after it was written",
                       path, hex64(actual), kDoneMarker, hex64(file.xxh64));
                 }
               });
  for (size_t i = 0; i < listed.size(); ++i) {
    v.bytes += hashed[i];
    if (!found[i].empty()) v.problems.push_back(found[i]);
  }
  std::vector<std::string> present;
  relative_files(checkpoint_dir, "", present);
  for (const std::string& name : present) {
    const bool known =
        name == kDoneMarker || std::any_of(listed.begin(), listed.end(),
                                           [&](const ListedFile& f) { return f.name == name; });
    if (!known) v.unlisted.push_back(name);
  }
  return finish(v.problems.empty() ? Verification::Status::intact : Verification::Status::corrupt);
}

std::string set_aside(const std::string& checkpoint_dir, const std::vector<std::string>& why) {
  const std::string root = files::parent_path(checkpoint_dir);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  const std::string base = kCorruptPrefix + files::file_name(checkpoint_dir) + "-" + stamp;
  std::string target = files::join(root, base);
  for (int n = 2; files::exists(target); ++n) target = files::join(root, format("{}-{}", base, n));
  files::rename_path(checkpoint_dir, target);
  fsync_path(root, true);
  try {
    write_synced(files::join(target, kCorruptNote),
                 format("Set aside by cca-train on {}: this checkpoint failed verification.\n{}\n"
                        "It was step folder {}. Nothing here was deleted.\n",
                        utc_now(), join(why, "\n"), checkpoint_dir));
  } catch (const Error&) {
    // The rename is what matters; the note is a courtesy.
  }
  return target;
}

std::optional<IntactCheckpoint> newest_intact(const std::string& root,
                                              std::vector<std::string>* warnings,
                                              bool set_aside_corrupt) {
  std::vector<std::string> ignored;
  std::vector<std::string>& out = warnings != nullptr ? *warnings : ignored;
  (void)newest_complete(root, &out);  // reports torn and leftover folders
  std::vector<Entry> entries = list(root);
  for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
    if (!e->complete) continue;
    Verification v = verify(e->path);
    if (v.status == Verification::Status::unverifiable) {
      out.push_back(
          format("{} was written before checkpoints carried checksums: its file sizes "
                 "are checked, its content is not",
                 e->path));
    }
    if (v.usable()) return IntactCheckpoint{*e, std::move(v)};
    std::string message =
        format("skipping corrupt checkpoint {}: {}", e->path, join(v.problems, "; "));
    if (set_aside_corrupt) {
      try {
        message += format("; moved aside to {}", set_aside(e->path, v.problems));
      } catch (const Error& error) {
        message += format("; could not move it aside ({})", error.what());
      }
    }
    out.push_back(message);
  }
  return std::nullopt;
}

}  // namespace cca::checkpoint_store
