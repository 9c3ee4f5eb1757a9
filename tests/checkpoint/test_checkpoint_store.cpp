// Checkpoint folders: commit, crashed writers (simulated by forked children that never commit or
// are killed mid-commit), replacing a step, pruning and listing.
#include "checkpoint/checkpoint_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"
#include "util/hash.h"

namespace cca::checkpoint_store {
namespace {

using cca::testing::ScratchDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& text, const std::string& word) {
  return text.find(word) != std::string::npos;
}

std::string commit_step(const std::string& root, int64_t step, const std::string& text = "x") {
  Staging s(root, step);
  s.write_file("state.json", text);
  return s.commit();
}

// Runs `child` in a forked process that ends without unwinding (no destructors), like a crash.
template <class F>
pid_t fork_child(F child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      child();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::vector<std::string> names_in(const std::string& dir) {
  return files::list_directory(dir);
}

TEST(CheckpointStore, StepFolderNames) {
  EXPECT_EQ(step_folder_name(0), "step_00000000");
  EXPECT_EQ(step_folder_name(1234), "step_00001234");
  EXPECT_EQ(step_folder_name(123456789), "step_123456789");
  EXPECT_THROW(step_folder_name(-1), Error);
}

TEST(CheckpointStore, CommitProducesACompleteFolder) {
  ScratchDir dir;
  const std::string root = dir / "run/checkpoints";  // created on demand
  Staging s(root, 42);
  EXPECT_TRUE(contains(s.dir(), ".staging-step_00000042-" + std::to_string(::getpid())));
  s.write_file("model.safetensors", "weights");
  s.write_file("sub/rank0.bin", "rank data");
  const std::string other = "written by other code";
  std::ofstream(s.path("other.txt")) << other;
  s.record("other.txt", {other.size(), xxh64(other)});
  const std::string final_dir = s.commit();
  EXPECT_EQ(final_dir, root + "/step_00000042");
  EXPECT_TRUE(is_complete(final_dir));
  EXPECT_EQ(read_file(final_dir + "/model.safetensors"), "weights");
  EXPECT_EQ(read_file(final_dir + "/sub/rank0.bin"), "rank data");
  EXPECT_EQ(read_file(final_dir + "/other.txt"), "written by other code");
  const std::string done = read_file(final_dir + "/DONE");
  EXPECT_TRUE(contains(done, "\"step\": 42")) << done;
  EXPECT_TRUE(contains(done, "committed_utc")) << done;
  EXPECT_EQ(names_in(root), std::vector<std::string>{"step_00000042"}) << "staging left behind";
  EXPECT_THROW(s.commit(), Error);
  EXPECT_THROW(s.write_file("late", "x"), Error);

  const auto entries = list(root);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].step, 42);
  EXPECT_EQ(entries[0].path, final_dir);
  EXPECT_TRUE(entries[0].complete);
}

TEST(CheckpointStore, UncommittedStagingIsRemoved) {
  ScratchDir dir;
  std::string staging;
  {
    Staging s(dir.path().string(), 7);
    s.write_file("a", "b");
    staging = s.dir();
    EXPECT_TRUE(files::is_directory(staging));
    EXPECT_THROW(Staging(dir.path().string(), 7), Error) << "same step twice in one process";
  }
  EXPECT_FALSE(files::exists(staging));
  EXPECT_TRUE(list(dir.path().string()).empty());
}

TEST(CheckpointStore, StagingRejectsNamesOutsideTheCheckpoint) {
  ScratchDir dir;
  Staging s(dir.path().string(), 1);
  for (const char* bad : {"", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "DONE"}) {
    EXPECT_THROW(s.path(bad), Error) << bad;
  }
  EXPECT_EQ(s.path("a/b.bin"), s.dir() + "/a/b.bin");
}

TEST(CheckpointStore, CrashedWritersLeaveTornCheckpointsThatAreSkipped) {
  ScratchDir dir;
  const std::string root = dir.path().string();
  EXPECT_FALSE(newest_complete(root, nullptr).has_value());
  commit_step(root, 10);
  // A writer that died before commit(): its staging folder survives (no destructor ran).
  const pid_t crashed = fork_child([&] {
    Staging s(root, 30);
    s.write_file("model.safetensors", "half");
    ::_exit(0);
  });
  ASSERT_EQ(wait_child(crashed), 0);
  const std::string leftover = root + "/.staging-step_00000030-" + std::to_string(crashed);
  ASSERT_TRUE(files::is_directory(leftover));
  // Step folders without DONE (another writer, a partial copy): one newer, one older.
  dir.write("step_00000020/model.safetensors", "torn");
  dir.write("step_00000005/model.safetensors", "old torn");
  // A Staging alive in this process is not a leftover.
  Staging live(root, 40);

  const auto entries = list(root);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_FALSE(entries[0].complete);
  EXPECT_TRUE(entries[1].complete);
  EXPECT_FALSE(entries[2].complete);
  std::vector<std::string> warnings;
  const auto newest = newest_complete(root, &warnings);
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->step, 10);
  ASSERT_EQ(warnings.size(), 2u) << ::testing::PrintToString(warnings);
  EXPECT_EQ(warnings[0], "skipping torn checkpoint " + root +
                             "/step_00000020 (no DONE marker: the writer was interrupted)");
  EXPECT_TRUE(contains(warnings[1], "skipping unfinished checkpoint " + leftover)) << warnings[1];
  EXPECT_TRUE(contains(warnings[1], "interrupted")) << warnings[1];
}

TEST(CheckpointStore, KilledDuringCommitKeepsThePreviousCheckpoint) {
  ScratchDir dir;
  const std::string root = dir.path().string();
  commit_step(root, 100, "previous");
  ::setenv("CCA_TEST_CHECKPOINT_PAUSE_MS", "10000", 1);
  const pid_t writer = fork_child([&] {
    Staging s(root, 100);  // the same step: the old one must survive the kill
    s.write_file("state.json", "new");
    s.commit();
  });
  ::unsetenv("CCA_TEST_CHECKPOINT_PAUSE_MS");
  const std::string staging = root + "/.staging-step_00000100-" + std::to_string(writer);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!files::exists(staging + "/DONE") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(files::exists(staging + "/DONE")) << "the writer never reached the pause";
  ::kill(writer, SIGKILL);
  const int status = wait_child(writer);
  ASSERT_TRUE(WIFSIGNALED(status));

  std::vector<std::string> warnings;
  const auto newest = newest_complete(root, &warnings);
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(read_file(newest->path + "/state.json"), "previous");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], staging));
  EXPECT_EQ(prune(root, 0, 0), std::vector<std::string>{staging});
}

TEST(CheckpointStore, PauseHookDelaysCommitAndRejectsGarbage) {
  ScratchDir dir;
  ::setenv("CCA_TEST_CHECKPOINT_PAUSE_MS", "30", 1);
  const auto start = std::chrono::steady_clock::now();
  commit_step(dir.path().string(), 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  ::setenv("CCA_TEST_CHECKPOINT_PAUSE_MS", "soon", 1);
  EXPECT_THROW(commit_step(dir.path().string(), 2), Error);
  ::unsetenv("CCA_TEST_CHECKPOINT_PAUSE_MS");
  EXPECT_EQ(list(dir.path().string()).size(), 1u) << "the failed commit must leave nothing";
}

TEST(CheckpointStore, RecommittingAStepReplacesIt) {
  ScratchDir dir;
  const std::string root = dir.path().string();
  const std::string first = commit_step(root, 500, "old");
  std::ofstream(first + "/only-in-old.txt") << "stale";
  const std::string second = commit_step(root, 500, "new");
  EXPECT_EQ(first, second);
  EXPECT_TRUE(is_complete(second));
  EXPECT_EQ(read_file(second + "/state.json"), "new");
  EXPECT_FALSE(files::exists(second + "/only-in-old.txt"));
  EXPECT_EQ(names_in(root), std::vector<std::string>{"step_00000500"});
}

TEST(CheckpointStore, PruneKeepsTheNewestAndTheMilestones) {
  ScratchDir dir;
  const std::string root = dir.path().string();
  for (int64_t step = 100; step <= 1000; step += 100) commit_step(root, step);
  dir.write("step_00000050/x", "torn, older than the newest complete: removed");
  dir.write("step_00002000/x", "torn, newer: kept (it is reported, not guessed about)");
  const pid_t crashed = fork_child([&] {
    Staging s(root, 1100);
    ::_exit(0);
  });
  wait_child(crashed);
  Staging live(root, 1200);
  dir.write(".replaced-step_00000300-1/x", "older than the newest complete one: removed");
  dir.write(".replaced-step_00001500-1/x", "maybe the only copy of step 1500: kept");
  dir.write("notes.txt", "unrelated");

  const auto first = prune(root, 0, 0);  // keep_last <= 0 keeps every complete one
  EXPECT_EQ(first, (std::vector<std::string>{
                       root + "/step_00000050", root + "/.replaced-step_00000300-1",
                       root + "/.staging-step_00001100-" + std::to_string(crashed)}));
  dir.write(".replaced-step_00000300-1/x", "stale again");
  const auto removed = prune(root, 2, 500);
  std::vector<std::string> steps;
  for (const Entry& e : list(root)) steps.push_back(files::file_name(e.path));
  EXPECT_EQ(steps, (std::vector<std::string>{"step_00000500", "step_00000900", "step_00001000",
                                             "step_00002000"}));
  EXPECT_EQ(removed.size(), 8u) << ::testing::PrintToString(removed);  // 7 steps, 1 replaced
  EXPECT_TRUE(files::is_directory(live.dir()));
  EXPECT_TRUE(files::exists(root + "/.replaced-step_00001500-1"));
  EXPECT_FALSE(files::exists(root + "/.replaced-step_00000300-1"));
  EXPECT_TRUE(files::exists(root + "/notes.txt"));
  EXPECT_EQ(prune(root, 1, 0).size(), 2u);  // 500 and 900
  EXPECT_TRUE(prune(dir / "missing", 1, 0).empty());
}

TEST(CheckpointStore, ListIgnoresJunk) {
  ScratchDir dir;
  const std::string root = dir.path().string();
  EXPECT_TRUE(list(dir / "missing").empty());
  EXPECT_FALSE(newest_complete(dir / "missing", nullptr).has_value());
  commit_step(root, 3);
  for (const char* junk :
       {"step_1/x", "step_abc/x", "step_000000010/x", "step_-0000001/x", "step_00000004x/x",
        "step_99999999999999999999/x", "steps/x", "tmp/step_00000009/x", ".hidden/x"}) {
    dir.write(junk, "junk");
  }
  dir.write("step_00000007", "a file, not a folder");
  const auto entries = list(root);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].step, 3);
  std::vector<std::string> warnings;
  EXPECT_EQ(newest_complete(root, &warnings)->step, 3);
  EXPECT_TRUE(warnings.empty()) << ::testing::PrintToString(warnings);
}

}  // namespace
}  // namespace cca::checkpoint_store
