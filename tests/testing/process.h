// cca-train as a separate process in tests: spawn with extra environment, wait with a deadline,
// poll for a condition, and read back its metrics.jsonl.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/files.h"
#include "util/json.h"

extern char** environ;

namespace cca::testing {

inline std::string trainer_binary() {
  return std::string(CCA_BINARY_DIR) + "/bin/cca-train";
}

// Starts cca-train with `args`, stdout and stderr appended to `log`, `env` entries first (they
// win over the inherited ones).
inline pid_t spawn_trainer(const std::vector<std::string>& args, const std::string& log,
                           const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv_text = {trainer_binary()};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text = env;
  for (char** e = environ; *e != nullptr; ++e) env_text.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
  return pid;
}

// Exit code (128 + signal when killed), or nullopt if it ran past `seconds` (then it is killed).
inline std::optional<int> wait_for(pid_t pid, double seconds = 600) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

template <class Condition>
bool wait_until(Condition&& condition, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// `kind` records of a metrics.jsonl: step -> value of `field`.
inline std::map<int64_t, double> metric_by_step(const std::string& run_dir, const std::string& kind,
                                                const std::string& field) {
  std::map<int64_t, double> out;
  const std::string text = files::read_file(files::join(run_dir, "metrics.jsonl"));
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const Json record = parse_json(text.substr(start, end - start), "metrics.jsonl");
    if (record.at("kind", "r").as_string("kind") == kind) {
      out[record.at("step", "r").as_int("step")] = record.at(field, "r").as_double(field);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace cca::testing
