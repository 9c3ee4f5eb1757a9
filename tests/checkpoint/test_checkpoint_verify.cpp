// Checkpoint integrity: DONE's per-file checksums, verify() on damaged folders, setting corrupt
// checkpoints aside, the injected write failure, and `cca-train verify`'s report.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/verify_run.h"
#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"
#include "util/hash.h"
#include "util/json.h"

namespace cca::checkpoint_store {
namespace {

using cca::testing::ScratchDir;

bool contains(const std::string& text, const std::string& word) {
  return text.find(word) != std::string::npos;
}

std::string commit_step(const std::string& root, int64_t step) {
  Staging s(root, step);
  s.write_file("model.safetensors", std::string(4096, static_cast<char>(step)));
  s.write_file("manifest.json", "{\"step\": " + std::to_string(step) + "}\n");
  return s.commit();
}

// Overwrites `count` bytes in the middle of `path` with 0xff (the size stays).
void scribble(const std::string& path, size_t count = 4) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(files::file_size(path) / 2));
  for (size_t i = 0; i < count; ++i) file.put(static_cast<char>(0xff));
}

TEST(CheckpointVerify, DoneListsEveryFileWithTheChecksumOfWhatWasWritten) {
  ScratchDir dir;
  const std::string path = commit_step(dir / "ckpt", 3);
  const Json done = parse_json(files::read_file(files::join(path, kDoneMarker)), "DONE");
  const Json::Object& listed = done.at("files", "DONE").as_object("files");
  ASSERT_EQ(listed.size(), 2u);
  for (const char* name : {"model.safetensors", "manifest.json"}) {
    const std::string file = files::join(path, name);
    const Json& entry = listed.at(name);
    EXPECT_EQ(entry.at("bytes", "DONE").as_int("bytes"),
              static_cast<int64_t>(files::file_size(file)));
    EXPECT_EQ(entry.at("xxh64", "DONE").as_string("xxh64"), hex64(xxh64_file(file))) << name;
  }
  const Verification v = verify(path);
  EXPECT_EQ(v.status, Verification::Status::intact);
  EXPECT_TRUE(v.problems.empty());
  EXPECT_EQ(v.bytes, files::file_size(files::join(path, "model.safetensors")) +
                         files::file_size(files::join(path, "manifest.json")));
}

TEST(CheckpointVerify, CommitRefusesAFileWithoutAChecksum) {
  ScratchDir dir;
  Staging s(dir / "ckpt", 1);
  s.write_file("a.bin", "recorded");
  std::ofstream(s.path("sneaky.bin")) << "not recorded";
  try {
    s.commit();
    FAIL() << "committed a file without a checksum";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "sneaky.bin")) << e.what();
  }
  EXPECT_TRUE(list(dir / "ckpt").empty());
}

TEST(CheckpointVerify, FindsAChangedByteAResizedFileAMissingFileAndABadDone) {
  ScratchDir dir;
  const std::string root = dir / "ckpt";
  const std::string changed = commit_step(root, 1), resized = commit_step(root, 2),
                    missing = commit_step(root, 3), bad_done = commit_step(root, 4);
  scribble(files::join(changed, "model.safetensors"));
  std::ofstream(files::join(resized, "manifest.json"), std::ios::app) << " ";
  files::remove_file(files::join(missing, "model.safetensors"));
  std::ofstream(files::join(bad_done, kDoneMarker), std::ios::trunc) << "{\"files\": [";

  const auto problem = [](const std::string& path) {
    const Verification v = verify(path);
    EXPECT_EQ(v.status, Verification::Status::corrupt) << path;
    EXPECT_FALSE(v.usable());
    return v.problems.empty() ? std::string() : v.problems.front();
  };
  const std::string p1 = problem(changed);
  EXPECT_TRUE(contains(p1, "step_00000001/model.safetensors: content checksum (XXH64)")) << p1;
  const std::string p2 = problem(resized);
  EXPECT_TRUE(contains(p2, "manifest.json")) << p2;
  EXPECT_TRUE(contains(p2, "truncated or replaced")) << p2;
  const std::string p3 = problem(missing);
  EXPECT_TRUE(contains(p3, "model.safetensors: missing")) << p3;
  const std::string p4 = problem(bad_done);
  EXPECT_TRUE(contains(p4, "DONE: unreadable")) << p4;
}

TEST(CheckpointVerify, OldCheckpointsWithoutChecksumsAreUsableButUnverifiable) {
  ScratchDir dir;
  const std::string path = commit_step(dir / "ckpt", 5);
  std::ofstream(files::join(path, kDoneMarker), std::ios::trunc) << "{\"step\": 5}\n";
  std::ofstream(files::join(path, "notes.txt")) << "a user's note";
  const Verification v = verify(path);
  EXPECT_EQ(v.status, Verification::Status::unverifiable);
  EXPECT_TRUE(v.usable());
  std::vector<std::string> warnings;
  const auto found = newest_intact(dir / "ckpt", &warnings, true);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->entry.step, 5);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "before checkpoints carried checksums")) << warnings[0];
}

TEST(CheckpointVerify, NewestIntactSetsCorruptOnesAsideAndFallsBack) {
  ScratchDir dir;
  const std::string root = dir / "ckpt";
  commit_step(root, 10);
  const std::string bad = commit_step(root, 20);
  scribble(files::join(bad, "model.safetensors"));
  const std::string original = files::read_file(files::join(bad, "model.safetensors"));

  std::vector<std::string> warnings;
  const auto kept = newest_intact(root, &warnings, /*set_aside_corrupt=*/false);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->entry.step, 10);
  EXPECT_TRUE(is_complete(bad)) << "left in place when not asked to move it";

  warnings.clear();
  const auto found = newest_intact(root, &warnings, /*set_aside_corrupt=*/true);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->entry.step, 10);
  EXPECT_EQ(found->verification.status, Verification::Status::intact);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "skipping corrupt checkpoint " + bad)) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "moved aside to " + root + "/.corrupt-step_00000020-"))
      << warnings[0];

  EXPECT_FALSE(files::exists(bad));
  std::string aside;
  for (const std::string& name : files::list_directory(root)) {
    if (name.rfind(".corrupt-step_00000020-", 0) == 0) aside = files::join(root, name);
  }
  ASSERT_FALSE(aside.empty());
  EXPECT_EQ(files::read_file(files::join(aside, "model.safetensors")), original) << "kept as is";
  EXPECT_TRUE(contains(files::read_file(files::join(aside, "CORRUPT.txt")), "content checksum"));
  EXPECT_EQ(list(root).size(), 1u);
  prune(root, 1, 0);
  EXPECT_TRUE(files::is_directory(aside)) << "prune never deletes a set-aside checkpoint";
}

TEST(CheckpointVerify, InjectedWriteFailureLeavesThePreviousCheckpointAlone) {
  ScratchDir dir;
  const std::string root = dir / "ckpt";
  const std::string first = commit_step(root, 1);
  {
    inject_commit_failures(1);
    try {
      commit_step(root, 2);
      FAIL() << "the injected failure did not happen";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), "No space left on device")) << e.what();
    }
    commit_step(root, 3);  // only the first commit fails
  }
  std::vector<std::string> names = files::list_directory(root);
  EXPECT_EQ(names, (std::vector<std::string>{"step_00000001", "step_00000003"}))
      << "no staging folder left behind";
  EXPECT_EQ(verify(first).status, Verification::Status::intact);
}

TEST(CheckpointVerify, VerifyRunReportsEveryCheckpointAndFailsOnACorruptOne) {
  ScratchDir dir;
  const std::string run = dir / "run";
  const std::string root = run + "/checkpoints";
  commit_step(root, 1);
  const std::string bad = commit_step(root, 2);

  std::ostringstream ok_text;
  EXPECT_EQ(verify_run(run, false, ok_text), 0) << ok_text.str();
  EXPECT_TRUE(contains(ok_text.str(), "step_00000002    intact")) << ok_text.str();

  scribble(files::join(bad, "manifest.json"), 1);
  std::ostringstream text;
  EXPECT_EQ(verify_run(run, false, text), 1);
  EXPECT_TRUE(contains(text.str(), "step_00000002    corrupt")) << text.str();
  EXPECT_TRUE(contains(text.str(), "newest usable: step_00000001")) << text.str();
  EXPECT_TRUE(is_complete(bad)) << "verify is read-only";

  std::ostringstream json_text;
  EXPECT_EQ(verify_run(bad, true, json_text), 1);
  const Json report = parse_json(json_text.str(), "verify --json");
  EXPECT_FALSE(report.at("ok", "report").as_bool("ok"));
  const Json::Array& items = report.at("checkpoints", "report").as_array("checkpoints");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("status", "item").as_string("status"), "corrupt");

  std::ostringstream none;
  EXPECT_THROW(verify_run(dir / "no-such-run", false, none), Error);
  files::make_directories(dir / "empty-run/checkpoints");
  EXPECT_EQ(verify_run(dir / "empty-run", false, none), 1) << "no checkpoint is not a success";
  EXPECT_TRUE(contains(none.str(), "no checkpoints in")) << none.str();
}

}  // namespace
}  // namespace cca::checkpoint_store
