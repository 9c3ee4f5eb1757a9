#include "launch/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

extern char** environ;

namespace cca::dist {
namespace {

volatile sig_atomic_t g_pending_signal = 0;
volatile sig_atomic_t g_signal_count = 0;

void remember_signal(int signal_number) {
  g_pending_signal = signal_number;
  g_signal_count = g_signal_count + 1;
}

struct Rank {
  int index = 0;
  pid_t pid = -1;
  bool running = false;
  int status = 0;  // waitpid status once it ended
};

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return format("exited with status {}", WEXITSTATUS(status));
  const int sig = WTERMSIG(status);
  return format("was killed by signal {} ({})", sig, strsignal(sig));
}

int exit_code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> rank_environment(int rank, int nproc, int port) {
  static const char* const kOurs[] = {
      "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> env = {
      format("RANK={}", rank),       format("WORLD_SIZE={}", nproc),
      format("LOCAL_RANK={}", rank), format("LOCAL_WORLD_SIZE={}", nproc),
      "MASTER_ADDR=127.0.0.1",       format("MASTER_PORT={}", port)};
  for (char** e = environ; *e != nullptr; ++e) {
    bool replaced = false;
    for (const char* prefix : kOurs) replaced |= std::strncmp(*e, prefix, std::strlen(prefix)) == 0;
    if (!replaced) env.emplace_back(*e);
  }
  return env;
}

// fork + execve of /proc/self/exe. The child gets its own process group, so a terminal's Ctrl-C
// reaches the launcher only (which forwards it once: a second signal means "exit now" to a rank),
// and dies with SIGTERM if the launcher dies.
pid_t start_self(const std::vector<std::string>& arguments, std::vector<std::string> env_text,
                 const std::string& what) {
  std::vector<std::string> argv_text = {"cca-train"};
  argv_text.insert(argv_text.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(format("launcher: cannot start {}: {}", what, strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(128 + SIGTERM);
    execve("/proc/self/exe", argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

void install_forwarding_handlers() {
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &action, nullptr);
}

void signal_all(std::vector<Rank>& ranks, int signal_number) {
  for (const Rank& r : ranks) {
    if (r.running) kill(r.pid, signal_number);
  }
}

int running_count(const std::vector<Rank>& ranks) {
  int n = 0;
  for (const Rank& r : ranks) n += r.running ? 1 : 0;
  return n;
}

// Collects every rank that has ended; returns the failed one most likely to be the cause, or -1.
// Ranks that ended in the same poll come back in no particular order: a rank killed by a signal
// is preferred over one that exited with an error, which is usually the peers' reaction to it.
int reap(std::vector<Rank>& ranks) {
  int failed = -1;
  for (;;) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return failed;
    for (Rank& r : ranks) {
      if (r.pid != pid || !r.running) continue;
      r.running = false;
      r.status = status;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      const bool better = failed < 0 || (WIFSIGNALED(status) && !WIFSIGNALED(ranks[failed].status));
      if (!ok && better) failed = r.index;
    }
  }
}

}  // namespace

int pick_free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("launcher: socket(): ") + strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved_errno = errno;
  close(fd);
  if (!ok)
    throw Error(std::string("launcher: no free port on 127.0.0.1: ") + strerror(saved_errno));
  return ntohs(address.sin_port);
}

std::vector<std::string> arguments_without_nproc(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--nproc-per-node") {
      ++i;  // and its value
    } else if (arg.rfind("--nproc-per-node=", 0) != 0) {
      out.push_back(arg);
    }
  }
  return out;
}

int launch_local_ranks(const LaunchRequest& request) {
  if (request.nproc < 1) throw Error(format("--nproc-per-node {}: need at least 1", request.nproc));
  const int port = pick_free_local_port();
  install_forwarding_handlers();

  std::vector<Rank> ranks(static_cast<size_t>(request.nproc));
  log::info("launcher    {} ranks on this node, rendezvous 127.0.0.1:{}", request.nproc, port);
  for (int r = 0; r < request.nproc; ++r) {
    ranks[r].index = r;
    ranks[r].pid = start_self(request.arguments, rank_environment(r, request.nproc, port),
                              format("rank {}", r));
    ranks[r].running = true;
    log::info("launcher    rank {} is pid {}", r, ranks[r].pid);
  }
  using Clock = std::chrono::steady_clock;
  int culprit = -1;
  Clock::time_point kill_deadline = Clock::time_point::max();
  int forwarded = 0;
  while (running_count(ranks) > 0) {
    while (forwarded < g_signal_count) {  // forward each signal once, in order
      ++forwarded;
      signal_all(ranks, g_pending_signal);
    }
    const int failed = reap(ranks);
    if (failed >= 0 && culprit < 0) {
      culprit = failed;
      log::error("launcher: rank {} (pid {}) {}; stopping the other ranks", failed,
                 ranks[failed].pid, describe_exit(ranks[failed].status));
      signal_all(ranks, SIGTERM);
      kill_deadline = Clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(request.grace_seconds * 1e3));
    }
    if (Clock::now() > kill_deadline) {
      signal_all(ranks, SIGKILL);
      kill_deadline = Clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (culprit < 0) return 0;
  const Rank& dead = ranks[culprit];
  // The same "error: ..." line guarded_main prints, so scripts see one shape of failure.
  log::flush();
  std::fprintf(stderr, "error: rank %d of %d (pid %d) %s; the other ranks were stopped\n", culprit,
               request.nproc, static_cast<int>(dead.pid), describe_exit(dead.status).c_str());
  return exit_code_of(dead.status) == 0 ? 1 : exit_code_of(dead.status);
}

int run_self(const std::vector<std::string>& arguments) {
  install_forwarding_handlers();
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  const pid_t pid = start_self(arguments, env, "a child process");
  int forwarded = g_signal_count;  // signals from before it started were not meant for it
  int status = 0;
  for (;;) {
    const pid_t ended = waitpid(pid, &status, WNOHANG);
    if (ended == pid) return exit_code_of(status);
    if (ended < 0 && errno != EINTR) {
      throw Error(format("launcher: waiting for pid {}: {}", pid, strerror(errno)));
    }
    while (forwarded < g_signal_count) {
      ++forwarded;
      kill(pid, g_pending_signal);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void catch_stop_signals() {
  install_forwarding_handlers();
}

int received_stop_signal() {
  return g_signal_count > 0 ? static_cast<int>(g_pending_signal) : 0;
}

}  // namespace cca::dist
