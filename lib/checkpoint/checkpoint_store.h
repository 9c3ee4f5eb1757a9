// The folder mechanics of checkpoints under one root (e.g. runs/x/checkpoints), independent of
// what goes into them:
//
//   <root>/step_00001000/                  a checkpoint; complete only when it holds DONE
//   <root>/.staging-step_00001000-<pid>/   being written; renamed into place by commit()
//   <root>/.replaced-step_00001000-<pid>/  an older copy of a step being replaced (transient)
//   <root>/.corrupt-step_00001000-<utc>/   a checkpoint that failed verification, set aside
//                                          (never deleted by cca-train; CORRUPT.txt says why)
//
// A checkpoint is written into a staging folder, every file and the folder are fsynced, the DONE
// marker goes in last, and only then is the folder renamed to its final name. A crash at any point
// leaves either the previous state or a complete new checkpoint under the final name; what it
// leaves behind (staging folders, step folders without DONE from other writers) is reported by
// newest_complete() and removed by prune(). One writer process per root is assumed.
//
// DONE lists every other file of the checkpoint with its size and XXH64 (hashed while the file
// was written), so verify() finds a changed byte anywhere, the manifest included.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/hash.h"

namespace cca::checkpoint_store {

constexpr const char* kDoneMarker = "DONE";

// "step_00001000": the step zero-padded to 8 digits (more digits past 99,999,999).
std::string step_folder_name(int64_t step);

// One checkpoint being written. Files go into path(name), through write_file() or by other code;
// commit() publishes them. Destroying an uncommitted Staging removes its folder.
class Staging {
 public:
  // Creates `root` if needed and an empty `<root>/.staging-step_<8d>-<pid>/`, replacing a
  // leftover of the same name (a crashed earlier process with the same pid).
  Staging(std::string root, int64_t step);
  ~Staging();  // best effort, never throws
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  int64_t step() const { return step_; }
  const std::string& dir() const { return dir_; }
  // Where file `name` goes (relative, may contain '/', no "..", not "DONE").
  std::string path(const std::string& name) const;
  // Writes and fsyncs one file, creating its subfolders, and records its digest.
  void write_file(const std::string& name, const std::string& bytes);
  // Records the digest of a file that other code wrote at path(name) (hashed as it was written).
  // commit() refuses a staging folder holding a file that was not recorded.
  void record(const std::string& name, const FileDigest& digest);

  // Checks that every file in the staging folder was recorded with its size, fsyncs every file
  // and folder, writes DONE (step, UTC time, every file's size and XXH64) with fsync, then moves
  // the folder to `<root>/step_<8d>` and fsyncs the root. An existing checkpoint of the same step
  // (a resumed run reaching it again) is swapped out atomically where the file system supports
  // RENAME_EXCHANGE, otherwise moved to a .replaced- name first; either way it is deleted only
  // after the new one is in place. Returns the final path. Callable once.
  //
  // Fault-injection hooks for tests, used by nothing else: when the environment variable
  // CCA_TEST_CHECKPOINT_PAUSE_MS is set, commit() sleeps that many milliseconds after writing DONE
  // into the staging folder and before the rename (the kill-during-write test); the first N
  // commits of a process started with CCA_TEST_CHECKPOINT_FAIL_COMMITS=N, or the next N after
  // inject_commit_failures(N), fail as a full disk would (ENOSPC) before DONE is written.
  std::string commit();

 private:
  std::string root_;
  int64_t step_;
  std::string dir_;
  bool committed_ = false;
  std::map<std::string, FileDigest> digests_;  // by name relative to dir_
};

// Tests only: the next `count` commits of this process fail (see Staging::commit()).
void inject_commit_failures(long count);

struct Entry {
  int64_t step = 0;
  std::string path;
  bool complete = false;  // holds DONE
};

// The step folders under `root` (named exactly as step_folder_name() writes them), sorted by step;
// torn ones included with complete = false. Staging, replaced and unrelated names are not
// entries. A missing root gives an empty list.
std::vector<Entry> list(const std::string& root);

// The newest complete checkpoint, or nullopt. Appends one sentence to `warnings` (when not null)
// for every torn step folder newer than it, every leftover staging folder, and every replaced
// folder whose step has no complete checkpoint (it may be the only copy).
std::optional<Entry> newest_complete(const std::string& root, std::vector<std::string>* warnings);

// Keeps the newest `keep_last` complete checkpoints (all when keep_last <= 0) and every complete
// one whose step is a multiple of `keep_every` (when keep_every > 0). Removes the other complete
// ones (DONE first, so a removal cut short leaves a torn folder, never a complete-looking partial
// one), torn step folders older than the newest complete one, staging folders that no Staging of
// this process is using, and replaced folders of steps up to the newest complete one (a replaced
// folder of a newer step may be the only copy of that step, so it stays). Returns the removed
// paths.
std::vector<std::string> prune(const std::string& root, int64_t keep_last, int64_t keep_every);

bool is_complete(const std::string& checkpoint_dir);

// The result of checking a checkpoint folder's files against the sizes and XXH64s in its DONE.
struct Verification {
  enum class Status {
    intact,        // every listed file has its size and checksum
    unverifiable,  // complete, but its DONE lists no checksums (written before they existed)
    corrupt,       // a listed file is missing, resized or changed, or DONE is unreadable
    torn,          // no DONE: the writer was interrupted
  };
  Status status = Status::torn;
  std::vector<std::string> problems;  // one sentence per bad file, naming it (corrupt, torn)
  std::vector<std::string> unlisted;  // files present but not in DONE (not an error)
  uint64_t bytes = 0;                 // bytes read and hashed
  double seconds = 0;                 // wall time of the check

  bool usable() const { return status == Status::intact || status == Status::unverifiable; }
};

// Reads every file DONE lists (several files at once) and compares its size and XXH64. Never
// throws for a damaged checkpoint: damage is reported in the result.
Verification verify(const std::string& checkpoint_dir);

// "intact", "unverifiable", "corrupt" or "torn".
const char* status_name(Verification::Status status);

// Moves a checkpoint that failed verification out of the step folders, to
// `<root>/.corrupt-<step folder>-<UTC time>`, with CORRUPT.txt inside saying why; returns the new
// path. Nothing is deleted, and list(), newest_complete() and prune() no longer see it.
std::string set_aside(const std::string& checkpoint_dir, const std::vector<std::string>& why);

// The newest complete checkpoint under `root` that verify() finds usable, newest first. Each
// corrupt one on the way is reported in `warnings` (and moved aside with set_aside() when
// `set_aside_corrupt`; otherwise left in place); an unverifiable one is taken with a warning.
// Torn and leftover folders are reported as newest_complete() does.
struct IntactCheckpoint {
  Entry entry;
  Verification verification;
};
std::optional<IntactCheckpoint> newest_intact(const std::string& root,
                                              std::vector<std::string>* warnings,
                                              bool set_aside_corrupt);

}  // namespace cca::checkpoint_store
