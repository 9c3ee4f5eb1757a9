// Preemption: the first SIGTERM or SIGINT asks the trainer to finish its step, checkpoint and exit
// 0; a second one exits at once (checkpoints are written to a staging folder and renamed only when
// complete, so an interrupted write never leaves a checkpoint that looks whole).
#pragma once

namespace cca {

// Installs the handlers (idempotent). Call before the training loop.
void install_stop_signal_handlers();
// True once SIGTERM or SIGINT arrived; the number of the signal via stop_signal().
bool stop_requested();
int stop_signal();
// For tests: forget a previous request.
void reset_stop_request();

}  // namespace cca
