#include "util/tensorboard_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace cca::tensorboard {
namespace {

const std::string kEventFilePrefix = "events.out.tfevents.";
const std::string kStagingPrefix = ".rewrite-";  // no "tfevents": readers skip it

std::string errno_text() {
  return std::strerror(errno);
}

// TensorBoard's own rule: any file whose name contains "tfevents" is an event file.
bool is_event_file(const std::string& dir, const std::string& name) {
  return name.find("tfevents") != std::string::npos && name[0] != '.' &&
         files::is_regular_file(files::join(dir, name));
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(format("{}: cannot write TensorBoard events: {}", path, errno_text()));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void fsync_or_throw(int fd, const std::string& path) {
  if (::fsync(fd) != 0) throw Error(format("{}: fsync failed: {}", path, errno_text()));
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(format("{}: cannot open for fsync: {}", dir, errno_text()));
  // Some file systems cannot sync a folder (EINVAL); their renames are as durable as it gets.
  const bool failed = ::fsync(fd) != 0 && errno != EINVAL;
  const std::string why = failed ? errno_text() : "";
  ::close(fd);
  if (failed) throw Error(format("{}: fsync failed: {}", dir, why));
}

// Writes `bytes` to a new synced file at `path` (which must not exist).
void write_synced_file(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(format("{}: cannot create: {}", path, errno_text()));
  try {
    write_all(fd, bytes, path);
    fsync_or_throw(fd, path);
  } catch (...) {
    ::close(fd);
    files::remove_file(path);
    throw;
  }
  ::close(fd);
}

using DropRule = std::function<bool(const EventHeader&)>;

// The records of one file that stay, as the bytes of the file to keep. Returns false when the
// file stays as it is. A file left with its file_version header alone is kept, not removed: a
// running TensorBoard that was reading it would stop at the missing file, never reaching the
// next one.
bool records_to_keep(const std::string& path, const DropRule& drop, std::string& kept,
                     DropReport& report) {
  const std::string bytes =
      files::read_file(path, "TensorBoard event file", std::numeric_limits<uint64_t>::max());
  const RecordScan scan = scan_records(bytes);
  const uint64_t damaged = bytes.size() - scan.valid_bytes;
  int64_t dropped = 0;
  for (const Record& record : scan.records) {
    const auto header = read_event_header(record.data);
    if (!header || drop(*header)) {
      ++dropped;
      continue;
    }
    kept.append(record.framed);
  }
  report.records_dropped += dropped;
  report.damaged_bytes += damaged;
  return dropped > 0 || damaged > 0;
}

double wall_time_now() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(now).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  std::string host = name;
  std::replace(host.begin(), host.end(), '/', '_');
  return host;
}

// Rewrites each event file of `dir` but `keep_name` without the records `drop` picks (see
// drop_steps_after).
DropReport drop_records(const std::string& dir, const DropRule& drop,
                        const std::string& keep_name = "") {
  DropReport report;
  if (!files::is_directory(dir)) return report;
  bool changed = false;
  for (const std::string& name : files::list_directory(dir)) {
    if (name.rfind(kStagingPrefix, 0) == 0) {  // an earlier rewrite cut short: never renamed
      files::remove_file(files::join(dir, name));
      changed = true;
    }
  }
  for (const std::string& name : files::list_directory(dir)) {
    if (name == keep_name || !is_event_file(dir, name)) continue;
    const std::string path = files::join(dir, name);
    std::string kept;
    if (!records_to_keep(path, drop, kept, report)) continue;
    changed = true;
    const std::string staging = files::join(dir, format("{}{}.tmp", kStagingPrefix, ::getpid()));
    write_synced_file(staging, kept);
    files::rename_path(staging, path);
    ++report.files_rewritten;
  }
  if (changed) sync_directory(dir);
  return report;
}

}  // namespace

DropReport drop_steps_after(const std::string& dir, int64_t last_step) {
  return drop_records(dir, [&](const EventHeader& event) { return event.step > last_step; });
}

std::string next_event_file_name(const std::vector<std::string>& existing, int64_t now_seconds,
                                 const std::string& host, int64_t pid) {
  int64_t seconds = now_seconds;
  for (const std::string& name : existing) {
    if (name.rfind(kEventFilePrefix, 0) != 0) continue;
    const size_t begin = kEventFilePrefix.size();
    const size_t end = name.find('.', begin);
    const std::string digits = name.substr(begin, end == std::string::npos ? end : end - begin);
    if (digits.empty() || digits.size() > 18 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    seconds = std::max<int64_t>(seconds, std::stoll(digits) + 1);
  }
  return format("{}{}.{}.{}", kEventFilePrefix, seconds, host, pid);
}

EventFileWriter::EventFileWriter(const std::string& dir, int64_t resume_step)
    : dir_(dir), resume_step_(resume_step) {
  files::make_directories(dir);
  // Named after every file there: a running TensorBoard only moves on to a later name.
  const double now = wall_time_now();
  const std::string name = next_event_file_name(files::list_directory(dir),
                                                static_cast<int64_t>(now), host_name(), ::getpid());
  dropped_ = drop_steps_after(dir, resume_step);
  path_ = files::join(dir, name);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error(format("{}: cannot create TensorBoard event file: {}", path_, errno_text()));
  }
  write_event(file_version_event(now));
  write_event(session_start_event(now, resume_step + 1));
  sync();
  sync_directory(dir);
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::write_scalars(int64_t step, const std::vector<Scalar>& scalars) {
  // A step an earlier launch logged too (the final evaluation of a launch that found nothing left
  // to train): this launch's values replace the earlier ones of the same tags.
  if (step <= resume_step_) {
    const DropReport replaced = drop_records(
        dir_,
        [&](const EventHeader& event) {
          return event.step == step &&
                 std::any_of(scalars.begin(), scalars.end(), [&](const Scalar& scalar) {
                   return std::find(event.tags.begin(), event.tags.end(), scalar.tag) !=
                          event.tags.end();
                 });
        },
        files::file_name(path_));
    dropped_.files_rewritten += replaced.files_rewritten;
    dropped_.records_dropped += replaced.records_dropped;
    dropped_.damaged_bytes += replaced.damaged_bytes;
  }
  write_event(scalars_event(wall_time_now(), step, scalars));
}

void EventFileWriter::sync() {
  fsync_or_throw(fd_, path_);
}

void EventFileWriter::write_event(const std::string& event) {
  // One write per record, unbuffered: the record reaches the kernel (and a reader) at once.
  write_all(fd_, frame_record(event), path_);
}

}  // namespace cca::tensorboard
