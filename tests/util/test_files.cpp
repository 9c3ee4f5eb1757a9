// cca::files' path helpers that stand in for std::filesystem in lib/ and apps/: the same
// answers (checked against std::filesystem here, where torch is not linked) and the same errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"

namespace cca {
namespace {

namespace fs = std::filesystem;

TEST(Files, LexicallyNormalMatchesStdFilesystem) {
  for (const char* path : {"",           ".",
                           "./",         "..",
                           "a",          "a/..",
                           "a/b/..",     "a/b/../",
                           "a/./b",      "a//b",
                           "/",          "//a",
                           "/..",        "/a/..",
                           "/../a",      "../a/../..",
                           "../a/b/..",  "a/b/.",
                           "a/b/",       "./a/b/../../..",
                           "a/../../b",  "configs/model/../train/x.yaml",
                           "a/.../b",    "...",
                           ".hidden/./x"}) {
    EXPECT_EQ(files::lexically_normal(path), fs::path(path).lexically_normal().string())
        << "'" << path << "'";
  }
}

TEST(Files, CanonicalPathResolvesLinksAndDots) {
  cca::testing::ScratchDir dir;
  const std::string file = dir.write("real/x.yaml", "a: 1\n");
  ASSERT_EQ(::symlink((dir / "real").c_str(), (dir / "link").c_str()), 0);
  const std::string expected = fs::canonical(file).string();
  EXPECT_EQ(files::canonical_path(dir / "link/x.yaml"), expected);
  EXPECT_EQ(files::canonical_path(dir / "real/../real/./x.yaml"), expected);
  EXPECT_EQ(files::canonical_path(dir / "missing.yaml"), "");
}

TEST(Files, CurrentDirectory) {
  EXPECT_EQ(files::current_directory(), fs::current_path().string());
}

TEST(Files, MakeDirectoriesReportsWhyItCannot) {
  cca::testing::ScratchDir dir;
  std::string reason;
  EXPECT_TRUE(files::make_directories(dir / "a/b/c", reason)) << reason;
  EXPECT_TRUE(files::is_directory(dir / "a/b/c"));
  EXPECT_TRUE(files::make_directories(dir / "a/b/c", reason)) << "already there is fine";
  dir.write("plain", "x");
  EXPECT_FALSE(files::make_directories(dir / "plain/logs", reason));
  EXPECT_EQ(reason, "Not a directory");
  try {
    files::make_directories(dir / "plain/logs");
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "plain" + ": exists and is not a folder");
  }
}

}  // namespace
}  // namespace cca
