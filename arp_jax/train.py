r"""Trains one stream: `arp-jax train --config experiments/<file>.py[:args] --workdir DIR`.

    python -m arp_jax.train --config experiments/synthetic_four_stream.py:stream=di --workdir runs/di \
        --config.optim.learning_rates='(0.1, 0.01)'

The config (`arp_jax.config`) says which dataset, input, network and optimiser; any field can be
overridden on the command line (`--config.model.pool_at=res3`). The dataset is prepared beforehand
(`arp-jax build`, `arp-jax synthetic-data`, `arp-jax mini-data`). The run is data-parallel over every
device of every host (`arp_jax.train_step`): each host reads its share of the videos, the batch is
sharded over the devices, the parameters are replicated. On several hosts pass `--distributed` (it calls
`jax.distributed.initialize()`, which finds the cluster on Cloud TPU, SLURM and other known launchers).

Resumable: checkpoints (train state and data iterator position) go to DIR/checkpoints every
`config.checkpoint_every` steps, at the end, and when the run is stopped with Ctrl-C or SIGTERM (it saves
and exits); starting the same command again continues from the latest one and produces the same final
state as an uninterrupted run (a damaged latest checkpoint is set aside and the run continues from the
newest one that restores, `arp_jax.checkpoint`). The config goes to DIR/config.json once the run has
started; resuming with a config that would compute something else is refused, naming the fields (paths,
logging, checkpoint cadence and max_steps may change). Metrics (loss, accuracy, learning rate, steps/s,
clips/s) go to DIR/metrics.jsonl and DIR/tensorboard; a progress bar shows the ETA when the terminal is
interactive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np

from arp_jax import builders, checkpoint, config as config_lib, run_config
from arp_jax.input import CHANNELS
from arp_jax.metric_writer import MetricWriter
from arp_jax.train_step import data_mesh, global_batch, make_train_step, replicate

CONFIG_FILE = run_config.RUN_CONFIG_FILE


class _StopRequest:
  """Turns SIGINT/SIGTERM into a request checked between steps, so the run saves before it exits (a
  signal in the middle of a step would leave the donated state half-written). A second Ctrl-C stops at
  once."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def _handle(self, signum, frame):
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():  # signals can be caught only there
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def _progress(total: int, initial: int, enabled: bool):
  if not enabled or not sys.stderr.isatty():
    return contextlib.nullcontext(None)
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def train(config, workdir) -> dict:
  """Trains (or resumes) the run of `config` in `workdir`; returns the last logged metrics.

  Returns:
    {"step", "loss", "accuracy", ...} at the last step, and "stopped" (True when a signal ended the run
    before its last step; it resumes from the checkpoint saved then).

  The run's config goes to DIR/config.json once the run has started (config checked, dataset found);
  a later run in DIR must agree with it in every field that changes the result
  (`run_config.check_run_config`: paths, logging, checkpoint cadence and max_steps may change).

  Raises:
    ValueError: an invalid config, or a workdir holding a run of another config.
    FileNotFoundError: the dataset is not prepared.
  """
  config_lib.check_config(config)
  workdir = Path(os.fspath(workdir)).absolute()
  run_config.check_run_config(config, workdir)
  local_batch = builders.local_batch_size(config.input.batch_size, "input.batch_size")
  info = builders.dataset_info(config, workdir)  # before anything is written
  builders.check_symmetries(config.input, info.num_classes)
  network = builders.model(config.model, info.num_classes, CHANNELS[config.input.modality])
  convention = builders.input_convention(config)
  source = builders.source(config, workdir, train=True)  # refuses a cache larger than memory allows
  workdir.mkdir(parents=True, exist_ok=True)

  mesh = data_mesh()
  state, schedule = builders.train_state(config, network, info.num_train)
  state = replicate(state, mesh)
  iterator = iter(builders.input_pipeline(config.input, source, train=True, batch_size=local_batch,
                                          seed=config.seed, convention=convention))
  steps = builders.total_steps(config, info.num_train)
  accumulation = config.optim.accumulation_steps

  manager = checkpoint.Manager(workdir / "checkpoints", keep=config.keep_checkpoints,
                               every=config.checkpoint_every)
  state, step = manager.restore_or(state, iterator)
  run_config.save_run_config(config, workdir)
  lead = jax.process_index() == 0
  writer = MetricWriter(workdir, resume_step=step, enabled=lead)
  train_step = make_train_step(network, mesh)
  dropout_key = jax.random.fold_in(jax.random.key(config.seed), 1)

  last, sums, count = {"step": step}, {}, 0
  stopped = False
  tick, tick_step = time.perf_counter(), step
  with _StopRequest() as stop, _progress(steps, step, lead) as bar, manager:
    while step < steps:
      batch = global_batch(next(iterator), mesh)
      # The key depends on the step only, so a resumed run draws the same dropout masks.
      state, metrics = train_step(state, batch, jax.random.fold_in(dropout_key, step))
      step += 1
      # Summed on the device: no wait for the step here, so the next batch is read while it runs.
      sums = metrics if not sums else jax.tree.map(lambda a, b: a + b, sums, metrics)
      count += 1
      if bar is not None:
        bar.update(1)
      if step % config.log_every == 0 or step == steps or stop.requested:
        elapsed = time.perf_counter() - tick
        values = {name: float(np.asarray(value)) / count for name, value in sums.items()}
        values.update(
            learning_rate=float(schedule(max(step - 1, 0) // accumulation)),
            epoch=builders.epoch_of(config, step, info.num_train),
            steps_per_sec=(step - tick_step) / elapsed,
            clips_per_sec=(step - tick_step) * config.input.batch_size / elapsed)
        writer.write(step, values)
        if bar is not None:
          bar.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['accuracy']:.3f}")
        last = {"step": step, **values}
        sums, count = {}, 0
        tick, tick_step = time.perf_counter(), step
      manager.save(step, state, iterator, force=step == steps or stop.requested)
      if stop.requested and step < steps:
        stopped = True
        print(f"stopped at step {step} of {steps}; checkpoint saved in {manager.directory}; run the same "
              "command to resume", file=sys.stderr)
        break
  writer.close()
  return {**last, "stopped": stopped}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  config_lib.add_arguments(parser, "folder of the run: config, checkpoints, metrics")


def run(args: argparse.Namespace) -> int:
  """`arp-jax train`: prints the last metrics as one JSON line. A user's mistake (a config file that
  does not exist, a bad field, a missing dataset) is a ValueError or FileNotFoundError: one line, status 2
  (`arp_jax.cli`)."""
  config = config_lib.from_args(args)
  checkpoint.quiet_logs()
  if args.distributed:
    jax.distributed.initialize()
  print(json.dumps(train(config, args.workdir)))
  return 0


if __name__ == "__main__":
  from arp_jax import cli  # pylint: disable=import-outside-toplevel
  sys.exit(cli.main(["train", *sys.argv[1:]]))
