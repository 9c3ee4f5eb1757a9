// Trainer::write_checkpoint: every rank takes part, rank 0 writes, and a failed write (disk full,
// I/O error) is survived up to checkpoint.max_write_failures times in a row.
#include "checkpoint/checkpoint_store.h"
#include "dist/parallelism.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"

namespace cca {

std::string Trainer::write_checkpoint() {
  check_halt();
  check_skip_streak();
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  progress_.train_seconds = training_time();
  progress_.skipped_steps = skipped_at_start_ + static_cast<int64_t>(skipped_total_.item<double>());
  if (loader_->is_mixture()) {
    progress_.mixture = loader_->mixture_state();
  } else {
    progress_.loader = loader_->state();
  }
  const std::string root = files::join(config_.run.dir, "checkpoints");
  // Weights and optimizer state are identical on every rank (verified by distributed.
  // verify_every); the RNG states are per rank. Rank 0 writes. Two votes replace barriers: the
  // first keeps DONE from being written unless every rank got here, the second tells every rank
  // whether the checkpoint exists, so all go on (or stop) together even when rank 0's write fails.
  const std::string at_step = format(" for the checkpoint of step {}", progress_.step);
  const std::string files_vote = "agreeing that the files are written" + at_step;
  CheckpointExtras extras;
  extras.world_size = world_size();
  extras.rng = parallelism_->gather_rng_states(rng_states());
  extras.optimizer_state = parallelism_->gather_optimizer_state(*optimizer_);
  bool voted = false;
  extras.before_commit = [&] {
    voted = true;
    (void)parallelism_->any(false, files_vote);
  };
  std::string path, failure;
  if (is_main()) {
    try {
      // The events up to this step are on disk before the checkpoint that resumes after them.
      if (tensorboard_) tensorboard_->sync();
      path = save_checkpoint(root, progress_, *model_, *optimizer_, loaded_, extras);
    } catch (const std::exception& error) {
      failure = error.what();
      if (!voted) (void)parallelism_->any(true, files_vote);
    }
  } else if (parallelism_->any(false, files_vote)) {
    failure = "rank 0 could not write the checkpoint's files (its log says why)";
  }
  const bool failed =
      parallelism_->any(!failure.empty(), "agreeing that the checkpoint exists" + at_step);
  if (!is_main() && failed && failure.empty()) failure = "rank 0 could not commit the checkpoint";
  checkpoint_seconds_ += seconds();
  if (progress_bar_) progress_bar_->clear();
  if (!failed) {
    write_failures_ = 0;
    if (!is_main()) path = files::join(root, checkpoint_store::step_folder_name(progress_.step));
    newest_checkpoint_ = path;
    log::info("checkpoint  {} ({:.1f} s)", path, seconds());
    return path;
  }
  ++write_failures_;
  const int64_t limit = config_.checkpoint.max_write_failures;
  const std::string kept = newest_checkpoint_.empty() ? "none yet" : newest_checkpoint_;
  if (write_failures_ >= limit) {
    throw Error(format(
        "checkpoint of step {} not written: {} write(s) failed in a row "
        "(checkpoint.max_write_failures: {}), so training stops. Last error: {}. The newest "
        "intact checkpoint: {}. Free space or repair the file system under {}, then continue "
        "with --resume auto",
        progress_.step, write_failures_, limit, failure, kept, root));
  }
  log::error(
      "checkpoint  step {} not written ({} of checkpoint.max_write_failures: {} in a row): {}. "
      "Training goes on; the newest checkpoint ({}) is intact, and the write is retried at the "
      "next checkpoint",
      progress_.step, write_failures_, limit, failure, kept);
  return "";
}

}  // namespace cca
