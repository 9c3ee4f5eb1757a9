// `cca-train --nproc-per-node N`: a one-node torchrun. Starts N copies of this executable with
// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT,
// forwards SIGTERM/SIGINT/SIGHUP to them, and when one rank fails stops the others and reports
// which rank failed and how. Torch-free (cca_launch).
#pragma once

#include <string>
#include <vector>

namespace cca::dist {

struct LaunchRequest {
  int nproc = 1;
  std::vector<std::string> arguments;  // for each rank, without argv[0] and --nproc-per-node
  double grace_seconds = 10;           // after SIGTERM, how long ranks get before SIGKILL
};

// Runs the ranks to completion. Returns 0 when every rank exited 0; otherwise logs an error
// naming the first rank that failed (its pid, exit status or signal) and returns its exit status
// (128 + signal for a rank killed by a signal).
int launch_local_ranks(const LaunchRequest& request);

// Removes "--nproc-per-node N" / "--nproc-per-node=N" from argv[1..]; the rest, in order.
std::vector<std::string> arguments_without_nproc(int argc, const char* const* argv);

// Runs one copy of this executable with `arguments` and our environment to completion, as the
// ranks above are run: in its own process group, SIGTERM/SIGINT/SIGHUP we receive forwarded to it,
// SIGTERM to it if we die. Returns its exit status (128 + signal when it was killed). Used by
// `cca-train sweep` for each run.
int run_self(const std::vector<std::string>& arguments);
// Records SIGTERM/SIGINT/SIGHUP instead of dying of them (launch_local_ranks and run_self do this
// too), so a caller can stop between children; received_stop_signal() is the last one, or 0.
void catch_stop_signals();
int received_stop_signal();

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int pick_free_local_port();

}  // namespace cca::dist
