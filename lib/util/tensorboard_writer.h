// A run's TensorBoard event files (logging.tensorboard): one file per launch in a folder
// (run.dir/tensorboard), one record per logged line, each handed to the kernel as it is written
// so a live `tensorboard --logdir` shows it at once. Resuming from step S first removes from the
// earlier launches' files every record of a step after S (those steps are trained again), so each
// step appears once. Torch-free; the trainer calls it on rank 0 only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/tensorboard_records.h"

namespace cca::tensorboard {

// What drop_steps_after changed.
struct DropReport {
  int files_rewritten = 0;      // even when only the file_version header is left (never removed)
  int64_t records_dropped = 0;  // of later steps, or not a well-formed Event
  uint64_t damaged_bytes = 0;   // after a torn or corrupt record (readers stop there)
};

// Keeps in each event file of `dir` only the records of steps <= `last_step` that come before
// the first torn or corrupt record. A file that changes is rewritten into a staging file in the
// same folder (a name without "tfevents", so no reader takes it for an event file), synced and
// renamed over the original: a crash at any point leaves the old file or the new one, whole.
// Stale staging files of an earlier crash are removed. Throws cca::Error naming the file.
DropReport drop_steps_after(const std::string& dir, int64_t last_step);

// "events.out.tfevents.<seconds>.<host>.<pid>", with <seconds> raised above that of every file in
// `existing` so this launch's file sorts last: readers go through a folder in name order.
std::string next_event_file_name(const std::vector<std::string>& existing, int64_t now_seconds,
                                 const std::string& host, int64_t pid);

class EventFileWriter {
 public:
  // Drops the steps after `resume_step` (0: a fresh run) from `dir`'s files and starts this
  // launch's file there: file_version, then a SessionLog START at resume_step + 1 so that a
  // TensorBoard which already showed those steps forgets them. Creates `dir` when needed.
  EventFileWriter(const std::string& dir, int64_t resume_step);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // A step up to resume_step (logged by an earlier launch too) first removes the earlier files'
  // records of that step which share a tag with `scalars`.
  void write_scalars(int64_t step, const std::vector<Scalar>& scalars);
  // fsync: what was written survives a crash of the machine (called with each checkpoint).
  void sync();
  const std::string& path() const { return path_; }
  const DropReport& dropped() const { return dropped_; }

 private:
  void write_event(const std::string& event);

  std::string dir_;
  int64_t resume_step_ = 0;
  std::string path_;
  int fd_ = -1;
  DropReport dropped_;
};

}  // namespace cca::tensorboard
