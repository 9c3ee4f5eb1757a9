"""cca-train's TensorBoard event files (logging.tensorboard), read by the `tensorboard` package and
by tbparse, across a preemption, a crash after the last checkpoint, a resume from an older checkpoint, a
launch with nothing left to train, and a run of two ranks: every tag must hold each expected step exactly once, with the value metrics.jsonl
logged for it (as float32, TensorBoard's simple_value).

Usage: test_tensorboard_events.py BIN_DIR (the folder with cca-train).
"""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from tbparse import SummaryReader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SHARD_MAGIC, SHARD_VERSION_U16, VOCAB = 20240520, 1, 128


def write_shard(path, count, seed):
    """An llm.c-format shard of successor chains (token t mostly followed by 7t + 3 mod V)."""
    rng = np.random.default_rng(seed)
    tokens = np.empty(count, np.uint16)
    t = 1
    jumps = rng.integers(0, 5, count) == 0
    random = rng.integers(0, VOCAB, count)
    for i in range(count):
        t = int(random[i]) if jumps[i] else (7 * t + 3) % VOCAB
        tokens[i] = t
    header = np.zeros(256, np.int32)
    header[:3] = [SHARD_MAGIC, SHARD_VERSION_U16, count]
    with open(path, "wb") as f:
        f.write(header.astype("<i4").tobytes())
        f.write(tokens.astype("<u2").tobytes())


def config_text(data, run):
    return f"""model: {{d_model: 64, n_layers: 2, vocab_size: {VOCAB}, ffn_hidden: 128}}
attention: {{kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {{q_compression: 2}}}}
train: {{steps: 8, seq_len: 32, micro_batch_size: 4, grad_accum: 2, eval_every: 4,
        device: cpu, seed: 5}}
schedule: {{warmup_steps: 2}}
optim: {{lr: 3.0e-3}}
checkpoint: {{every: 4, keep_last: 5}}
logging: {{every: 1, progress_bar: false, tensorboard: true}}
data: {{train: '{data}/train_*.bin', val: '{data}/val_*.bin', val_tokens: 1024, prefetch: 2}}
run: {{dir: '{run}'}}
"""


class Trainer:
    def __init__(self, bin_dir, config, log):
        self.command = [os.path.join(bin_dir, "cca-train"), "--config", config]
        self.log = log

    def start(self, *args, env=None):
        with open(self.log, "a") as log:
            return subprocess.Popen(self.command + list(args), stdout=log, stderr=log,
                                    env={**os.environ, **(env or {})})

    def run(self, *args):
        code = self.start(*args).wait(timeout=300)
        if code != 0:
            sys.exit(f"cca-train {' '.join(args)} exited {code}:\n{open(self.log).read()}")


def kill_during_commit(trainer, run, step):
    """Resumes with every checkpoint commit paused, and SIGKILLs the run once the commit of `step`
    has its files staged: the steps after the previous checkpoint are logged but not saved."""
    process = trainer.start("--resume", "auto", env={"CCA_TEST_CHECKPOINT_PAUSE_MS": "60000"})
    staged = os.path.join(run, "checkpoints", f".staging-step_{step:08d}-*", "DONE")
    deadline = time.time() + 120
    while not glob.glob(staged):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            sys.exit(f"the commit of step {step} was never staged:\n{open(trainer.log).read()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def expected_scalars(metrics_path):
    """tag -> {step: value} from metrics.jsonl, resolving resumes as `cca-train report` does: a
    start/resume record at step S drops what earlier launches logged after S."""
    train, evals = {}, {}
    for line in open(metrics_path):
        record = json.loads(line)
        kind, step = record["kind"], record["step"]
        if kind in ("start", "resume"):
            for by_step in (train, evals):
                for later in [s for s in by_step if s > step]:
                    del by_step[later]
        elif kind == "train":
            train[step] = record
        elif kind == "eval":
            evals[step] = record
    tags = {}
    for step, record in train.items():
        for key, value in record.items():
            if key not in ("kind", "step"):
                tags.setdefault("train/" + key, {})[step] = value
    for step, record in evals.items():
        tags.setdefault("eval/loss", {})[step] = record["val_loss"]
        tags.setdefault("eval/ppl", {})[step] = record["val_ppl"]
    return tags


def check_reader(name, read, expected, steps):
    """read: tag -> [(step, value)] in file order, as one reader saw it."""
    seen = read
    if set(seen) != set(expected):
        sys.exit(f"{name}: tags {sorted(seen)}, expected {sorted(expected)}")
    for tag, points in seen.items():
        got_steps = sorted(step for step, _ in points)
        want_steps = steps["eval" if tag.startswith("eval/") else "train"]
        if got_steps != want_steps:
            sys.exit(f"{name}: {tag} has steps {got_steps}, expected each of {want_steps} once")
        for step, value in points:
            want = float(np.float32(expected[tag][step]))
            if value != want:
                sys.exit(f"{name}: {tag} at step {step} is {value}, metrics.jsonl says {want}")
    print(f"{name}: {len(seen)} tags, steps and values as in metrics.jsonl")


def read_tbparse(tb_dir):
    frame = SummaryReader(tb_dir).scalars
    out = {}
    for tag, step, value in zip(frame["tag"], frame["step"], frame["value"]):
        out.setdefault(tag, []).append((int(step), float(value)))
    return out


def accumulator_scalars(accumulator):
    accumulator.Reload()
    if accumulator.file_version != 2.0:
        sys.exit(f"EventAccumulator: file_version {accumulator.file_version}, expected 2")
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def read_accumulator(tb_dir, purge):
    return accumulator_scalars(
        EventAccumulator(tb_dir, size_guidance={"scalars": 0}, purge_orphaned_data=purge))


def check_run(run, train_steps, eval_steps, live=None):
    tb_dir = os.path.join(run, "tensorboard")
    expected = expected_scalars(os.path.join(run, "metrics.jsonl"))
    for tag in ("train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s",
                "train/memory_gib", "eval/loss"):
        if tag not in expected:
            sys.exit(f"metrics.jsonl has no {tag}: the test's expectations are out of date")
    steps = {"train": list(train_steps), "eval": list(eval_steps)}
    check_reader("tbparse.SummaryReader", read_tbparse(tb_dir), expected, steps)
    # Without the purge the files themselves must be right; with it (the default, as a live
    # TensorBoard reads) the SessionLog START of each launch must not hide a kept step.
    check_reader("EventAccumulator", read_accumulator(tb_dir, False), expected, steps)
    check_reader("EventAccumulator (purge)", read_accumulator(tb_dir, True), expected, steps)
    # A TensorBoard that was running all along already holds the steps the resume dropped: the
    # new launch's SessionLog START makes it forget them, and its file must sort last to be read.
    if live is not None:
        check_reader("EventAccumulator (live)", accumulator_scalars(live), expected, steps)
    leftovers = [n for n in os.listdir(tb_dir) if "tfevents" not in n]
    if leftovers:
        sys.exit(f"{tb_dir} holds files that are not event files: {leftovers}")


def main():
    bin_dir = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="cca-tensorboard-") as scratch:
        data = os.path.join(scratch, "data")
        os.makedirs(data)
        write_shard(os.path.join(data, "train_000000.bin"), 60000, 11)
        write_shard(os.path.join(data, "val_000000.bin"), 4000, 12)
        run = os.path.join(scratch, "run")
        config = os.path.join(scratch, "run.yaml")
        with open(config, "w") as f:
            f.write(config_text(data, run))
        trainer = Trainer(bin_dir, config, os.path.join(scratch, "log.txt"))

        trainer.run("--stop-at-step", "4")  # what SIGTERM does: checkpoint at 4, exit 0
        kill_during_commit(trainer, run, 8)  # logs 5..8, no checkpoint after 4
        live = EventAccumulator(os.path.join(run, "tensorboard"), size_guidance={"scalars": 0})
        live.Reload()  # as a TensorBoard running during the crash saw it
        trainer.run("--resume", "auto")  # from 4 again: 5..8 once more
        check_run(run, range(1, 9), [4, 8], live)

        # From the older of two checkpoints, with a longer schedule: 5..8 differ from before.
        older = os.path.join(run, "checkpoints", "step_00000004")
        trainer.run("--resume", older, "--set", "train.steps=10")
        check_run(run, range(1, 11), [4, 8, 10], live)
        # Finished: a launch that finds nothing to train evaluates step 10 again, replacing it in
        # the files (a TensorBoard running meanwhile shows that point twice: not checked).
        trainer.run("--resume", "auto", "--set", "train.steps=10")
        check_run(run, range(1, 11), [4, 8, 10])

        # Two ranks: rank 0 alone writes events (a second writer would double every step).
        ranks = os.path.join(scratch, "ranks")
        trainer.run("--nproc-per-node", "2", "--set", f"run.dir={ranks}")
        files = os.listdir(os.path.join(ranks, "tensorboard"))
        if len(files) != 1:
            sys.exit(f"a 2-rank run wrote {len(files)} event files, expected 1: {files}")
        check_run(ranks, range(1, 9), [4, 8])


if __name__ == "__main__":
    main()
