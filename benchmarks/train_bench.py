"""Input-pipeline speed against train-step speed, in clips per second, as ratios in the same run.

    python benchmarks/train_bench.py [--streams di si] [--skip-resnext] [--json train_bench.json]
    python benchmarks/train_bench.py --synthetic-data-dir runs/synthetic/data --ucf-data-dir /tmp/mini_ucf

A clip is one video of a batch (one row of `frames` [B, S, tau, H, W, C]: its S windows of tau frames);
every rate is clips per second of wall time.

1. The synthetic benchmark (`experiments/synthetic_four_stream.py`, one config per `--streams` entry,
   default DI: resnext_tiny on one window of 10 frames of 64 x 64 per video, batch 32). The dataset is
   prepared (`data_prep.synthetic.build`, as `arp-jax synthetic-data` does) into a temporary folder
   unless `--synthetic-data-dir` names one (prepared there if missing).
2. ResNeXt-50 32x4d on 224 x 224 windows: `config.base_config()` (DI at the input: windows of 10
   frames every 6, ARP, max merge) with `--resnext-windows` windows per video (default 2, the reference
   trains on 10) and `--resnext-batch-size` videos (default 2), on the miniature UCF101 of real clips of
   data_prep/mini.py (its two training videos; frames kept at their stored 320 x 240, no flow), built
   into a temporary folder unless `--ucf-data-dir` names one. `--skip-resnext` leaves it out.

   For each config, against the train step as the baseline (x step):
     train step        the jitted `train_step.make_train_step` on batches already on the device (read
                       from the pipeline beforehand), after compilation, each step waited for
                       (`block_until_ready`): what the model consumes. Median of --steps steps.
     pipeline, N workers
                       `builders.input_pipeline` of config.input (train=True) with input.num_workers = N (0:
                       all in this process; 2: two Grain worker processes), iterated alone, nothing else in
                       this process: what the input delivers. Median over --rounds rounds of --batches
                       batches, after --warmup batches (which include starting the workers).
                       Target: the 2-worker pipeline delivers >= 1.5 x what the step consumes (PASS/FAIL).
     training loop     the step fed by the 2-worker pipeline, as `arp_jax.train` runs it (next batch,
                       `global_batch`, step, wait): what a run actually gets on this machine.
   "first step" is the wall time of the first call (compilation included).

3. Step time against the number of devices: the synthetic train step (first of --streams) on the same
   global batch (random values of the pipeline's shapes, every window real), in a subprocess per device
   count N with XLA_FLAGS=--xla_force_host_platform_device_count=N (N fake CPU devices; the batch is
   split over them, the state replicated, as on N accelerators). Ratio: time on N devices / time on 1.
   Fake devices share the same cores, so this is no forecast of N real accelerators: it shows what the
   sharded program costs (its collectives, per-device launches) and how XLA:CPU uses the cores when the
   batch is split into N per-device programs (which can be faster than one program with its intra-op
   threads).

Honest caveats. On a 2-core machine the pipeline's workers and the train step compete for the same two
cores (XLA:CPU runs the step on every core), so the two rates measured apart are each an upper bound:
their ratio says whether the input could keep up, the training-loop figure says what a run gets. Wall
time is disturbed by anything else running; the load average (1 minute) is printed beside each section
and stored in the JSON. Rates are measurements, not asserted: this is a benchmark, never a test.

`--json PATH` writes every figure (rates, ratios, per-round rates, load, settings) as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time

import grain
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from arp_jax import builders, config as config_lib
from arp_jax.input import CHANNELS
from arp_jax.train_step import data_mesh, global_batch, make_train_step, replicate
from timing import median_seconds  # benchmarks/timing.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import synthetic_four_stream  # pylint: disable=wrong-import-position  # experiments/

TARGET = 1.5  # pipeline clips/s with 2 workers over train-step clips/s
WORKERS = (0, 2)
UCF101 = "ucf101_frames/split1"


def load_average() -> float:
  """The 1-minute load average (runnable processes; 2.0 fills this 2-core machine)."""
  return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------------------------------------
# Configs and data


def synthetic_config(stream: str, data_dir) -> ml_collections.ConfigDict:
  """The stream's config of experiments/synthetic_four_stream.py, reading `data_dir` (checked)."""
  config = synthetic_four_stream.get_config(f"stream={stream}")
  config.dataset.data_dir = os.fspath(data_dir)
  config_lib.check_config(config)
  return config


def resnext_config(data_dir, batch_size: int, windows: int, num_train: int):
  """`base_config()` (ResNeXt-50, DI at the input, windows 10/6, 224 x 224) on the mini UCF101, with
  `windows` windows per video and `batch_size` videos per step. `input.repeat` is raised where the few
  training videos would make no update per epoch (it only sets the learning-rate schedule)."""
  config = config_lib.base_config()
  config.dataset.name = UCF101
  config.dataset.data_dir = os.fspath(data_dir)
  config.input.batch_size = batch_size
  config.input.train_windows = windows
  videos = batch_size * config.optim.accumulation_steps
  config.input.repeat = max(config.input.repeat, math.ceil(videos / num_train))
  config_lib.check_config(config)
  return config


def ensure_synthetic(data_dir) -> None:
  """Prepares synthetic_motion/default under `data_dir` unless it is there (`arp-jax synthetic-data`)."""
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel  # registers the TFDS builder

  with contextlib.redirect_stdout(sys.stderr):
    synthetic.build(data_dir, "default")


def ensure_mini_ucf101(data_dir) -> None:
  """Builds `ucf101_frames/split1` of the miniature UCF101 (real clips, no flow, stored frame size)
  under `data_dir` unless it is there."""
  from data_prep import build  # pylint: disable=import-outside-toplevel
  from data_prep.process import ProcessOptions  # pylint: disable=import-outside-toplevel
  from data_prep.mini import make_mini_ucf101  # pylint: disable=import-outside-toplevel

  probe = config_lib.base_config()
  probe.dataset.name, probe.dataset.data_dir = UCF101, os.fspath(data_dir)
  with contextlib.suppress(FileNotFoundError):
    builders.dataset_info(probe, data_dir)
    return
  with tempfile.TemporaryDirectory() as manual:
    make_mini_ucf101(Path(manual))
    with contextlib.redirect_stdout(sys.stderr):
      build.build_datasets("ucf101", 1, manual, data_dir, ProcessOptions(flow="none"))


def with_workers(config, num_workers: int):
  """A copy of `config` whose pipeline runs `num_workers` worker processes."""
  config = config.copy_and_resolve_references()
  config.input.num_workers = num_workers
  return config


def clip_shape(config) -> tuple[int, ...]:
  """[S, tau, H, W, C] of one clip in training batches (S = input.train_windows windows of tau frames)."""
  c = config.input
  return (c.train_windows, builders.window_length(c), c.size, c.size, CHANNELS[c.modality])


# --------------------------------------------------------------------------------------------------------
# Measurements


def median_rate(produce, clips: int, warmup: int, count: int, rounds: int) -> dict:
  """Clips/s of `produce()` (one batch of `clips` clips per call): `warmup` calls, then `rounds` rounds
  of `count` calls; the median of the rounds' rates, and each round's rate."""
  for _ in range(warmup):
    produce()
  rates = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(count):
      produce()
    rates.append(count * clips / (time.perf_counter() - start))
  return {"clips_per_s": float(np.median(rates)), "rounds": rates}


@contextlib.contextmanager
def pipeline(config, workdir, num_workers: int):
  """An iterator over the training pipeline of `config` with `num_workers` workers, closed on exit (which
  stops the worker processes)."""
  config = with_workers(config, num_workers)
  iterator = iter(builders.input_pipeline(
      config.input, builders.source(config, workdir, train=True), train=True,
      batch_size=builders.local_batch_size(config.input.batch_size, "input.batch_size"), seed=config.seed,
      convention=builders.input_convention(config)))
  try:
    yield iterator
  finally:
    iterator.close()


class Trainer:
  """The network, replicated state and jitted train step of `config`, as `arp_jax.train` builds them."""

  def __init__(self, config, num_classes: int, num_train: int):
    self.mesh = data_mesh()
    network = builders.model(config.model, num_classes, CHANNELS[config.input.modality])
    state, _ = builders.train_state(config, network, num_train)
    self.state = replicate(state, self.mesh)
    self.train_step = make_train_step(network, self.mesh)
    self.key = jax.random.fold_in(jax.random.key(config.seed), 1)
    self.count = 0

  def step(self, batch: dict) -> dict:
    """One step on a global batch; returns its metrics (not waited for)."""
    self.state, metrics = self.train_step(self.state, batch, jax.random.fold_in(self.key, self.count))
    self.count += 1
    return metrics

  def step_seconds(self, batches: list[dict], repeats: int) -> tuple[float, float]:
    """(wall seconds of the first step, compilation included; median seconds of a step after it) on
    `batches` (global batches, used in turn)."""
    cycle = itertools.cycle(batches)
    start = time.perf_counter()
    jax.block_until_ready(self.step(next(cycle)))
    first = time.perf_counter() - start
    return first, median_seconds(lambda: self.step(next(cycle)), repeats=repeats)


def measure(config, workdir, info: builders.DatasetInfo, args, steps: int) -> dict:
  """Every figure of sections 1 and 2 for `config` (see the module docstring)."""
  clips = config.input.batch_size
  out = {"batch_size": clips, "clip_shape": list(clip_shape(config)), "load_at_start": load_average()}
  for workers in WORKERS:
    with pipeline(config, workdir, workers) as iterator:
      out[f"pipeline_{workers}_workers"] = median_rate(lambda: next(iterator), clips, args.warmup,
                                                       args.batches, args.rounds)
    out[f"load_after_pipeline_{workers}_workers"] = load_average()

  trainer = Trainer(config, info.num_classes, info.num_train)
  with pipeline(config, workdir, 0) as iterator:  # a few real batches, on the device before timing
    ready = [global_batch(next(iterator), trainer.mesh) for _ in range(min(steps, 4))]
  first, seconds = trainer.step_seconds(ready, steps)
  out["train_step"] = {"clips_per_s": clips / seconds, "seconds": seconds, "first_step_seconds": first}
  out["load_after_step"] = load_average()
  del ready

  def loop_step():
    jax.block_until_ready(trainer.step(global_batch(next(iterator), trainer.mesh)))
  with pipeline(config, workdir, 2) as iterator:
    out["training_loop_2_workers"] = median_rate(loop_step, clips, args.loop_warmup, steps, 1)
  out["load_at_end"] = load_average()

  step_rate = out["train_step"]["clips_per_s"]
  for key in ("pipeline_0_workers", "pipeline_2_workers", "training_loop_2_workers"):
    out[key]["x_step"] = out[key]["clips_per_s"] / step_rate
  out["target"] = TARGET
  out["pass"] = bool(out["pipeline_2_workers"]["x_step"] >= TARGET)
  return out


def print_figures(title: str, figures: dict) -> None:
  """The table of one config: clips/s and the ratio to the train step."""
  print(f"\n{title}")
  print(f"  batch {figures['batch_size']} clips of {figures['clip_shape']} float32; load average "
        f"{figures['load_at_start']} at start, {figures['load_at_end']} at end")
  step = figures["train_step"]
  print(f"  {'':<38} {'clips/s':>9} {'x step':>8}")
  print(f"  {'train step (ready batches)':<38} {step['clips_per_s']:9.2f} {1:8.2f}   "
        f"({step['seconds'] * 1e3:.0f} ms/step; first step {step['first_step_seconds']:.1f} s)")
  for workers in WORKERS:
    figure = figures[f"pipeline_{workers}_workers"]
    line = f"  {f'pipeline, {workers} workers':<38} {figure['clips_per_s']:9.2f} {figure['x_step']:8.2f}"
    if workers == 2:
      line += f"   target >= {TARGET}: {'PASS' if figures['pass'] else 'FAIL'}"
    print(line + f"   (rounds: {', '.join(f'{r:.1f}' for r in figure['rounds'])})")
  loop = figures["training_loop_2_workers"]
  print(f"  {'training loop (step fed by 2 workers)':<38} {loop['clips_per_s']:9.2f} {loop['x_step']:8.2f}")


# --------------------------------------------------------------------------------------------------------
# Fake devices


def device_worker(spec: dict) -> dict:
  """In a subprocess started with N fake devices: the median seconds of the synthetic train step on a
  random global batch of the pipeline's shapes (every window real), split over every device."""
  config = synthetic_config(spec["stream"], "")
  batch_size = config.input.batch_size
  rng = np.random.default_rng(0)
  frames = rng.normal(size=(batch_size,) + clip_shape(config)).astype(np.float32)
  batch = {"frames": frames, "windows": np.full(batch_size, frames.shape[1], np.int32),
           "label": rng.integers(0, spec["num_classes"], batch_size).astype(np.int32)}
  trainer = Trainer(config, spec["num_classes"], spec["num_train"])
  first, seconds = trainer.step_seconds([global_batch(batch, trainer.mesh)], spec["repeats"])
  return {"devices": jax.device_count(), "seconds": seconds, "first_step_seconds": first,
          "clips_per_s": batch_size / seconds}


def device_scaling(stream: str, info: builders.DatasetInfo, counts, repeats: int) -> dict:
  """{N: figures of `device_worker`} for each device count, each in its own process."""
  out = {}
  for count in counts:
    spec = {"stream": stream, "num_classes": info.num_classes, "num_train": info.num_train, "repeats": repeats}
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    load = load_average()
    done = subprocess.run([sys.executable, __file__, "--device-worker", json.dumps(spec)], env=env,
                          check=True, stdout=subprocess.PIPE, text=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["devices"] != count:
      raise RuntimeError(f"the subprocess saw {figures['devices']} devices; expected {count} (XLA_FLAGS)")
    out[count] = dict(figures, load_at_start=load)
  base = out[counts[0]]["seconds"]
  for figures in out.values():
    figures["x_first_count_time"] = figures["seconds"] / base
  return out


def print_devices(stream: str, batch_size: int, figures: dict) -> None:
  first = next(iter(figures))
  print(f"\n3. synthetic {stream} train step, global batch {batch_size}, on N fake CPU devices "
        "(--xla_force_host_platform_device_count=N)")
  print(f"  {'devices':>7} {'ms/step':>9} {'clips/s':>9} {f'x time on {first}':>12} {'first step s':>13} {'load':>6}")
  for count, f in figures.items():
    print(f"  {count:7d} {f['seconds'] * 1e3:9.1f} {f['clips_per_s']:9.1f} {f['x_first_count_time']:12.2f} "
          f"{f['first_step_seconds']:13.1f} {f['load_at_start']:6.2f}")


# --------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--streams", nargs="+", default=["di"], choices=synthetic_four_stream.STREAMS,
                      help="synthetic streams to measure (the first one also for section 3)")
  parser.add_argument("--synthetic-data-dir", help="a TFDS folder holding synthetic_motion/default "
                      "(prepared there if missing; default: a temporary folder)")
  parser.add_argument("--ucf-data-dir", help="a TFDS folder holding the mini UCF101's ucf101_frames/split1 "
                      "(built there if missing; default: a temporary folder)")
  parser.add_argument("--warmup", type=int, default=3, help="pipeline batches before timing")
  parser.add_argument("--batches", type=int, default=10, help="pipeline batches per round")
  parser.add_argument("--rounds", type=int, default=3, help="pipeline rounds (median)")
  parser.add_argument("--steps", type=int, default=10, help="timed synthetic steps (and loop steps)")
  parser.add_argument("--loop-warmup", type=int, default=2, help="training-loop steps before timing")
  parser.add_argument("--skip-resnext", action="store_true", help="leave out section 2 (ResNeXt-50)")
  parser.add_argument("--resnext-batch-size", type=int, default=2)
  parser.add_argument("--resnext-windows", type=int, default=2, help="windows of 10 frames per video")
  parser.add_argument("--resnext-steps", type=int, default=3, help="timed ResNeXt-50 steps (and loop steps)")
  parser.add_argument("--devices", type=int, nargs="*", default=[1, 2, 4, 8],
                      help="fake device counts for section 3 (none: skip it)")
  parser.add_argument("--device-repeats", type=int, default=10, help="timed steps per device count")
  parser.add_argument("--json", help="write every figure to this file")
  parser.add_argument("--device-worker", help=argparse.SUPPRESS)  # internal: section 3's subprocess
  return parser.parse_args(argv)


def run(args, scratch: Path) -> dict:
  """Sections 1-3; returns every figure."""
  tfds.disable_progress_bar()  # dataset builds: keep the tables readable
  results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
             "jax": jax.__version__, "backend": jax.default_backend(), "load_at_start": load_average(),
             "settings": {k: v for k, v in vars(args).items() if k != "device_worker"}}
  print(f"machine: {results['machine']}; jax {jax.__version__} ({jax.default_backend()}, "
        f"{jax.device_count()} device), grain {getattr(grain, '__version__', '?')}; load average "
        f"{results['load_at_start']} at start")

  synthetic_dir = Path(args.synthetic_data_dir or scratch / "synthetic")
  ensure_synthetic(synthetic_dir)
  results["synthetic"] = {}
  for stream in args.streams:
    config = synthetic_config(stream, synthetic_dir)
    info = builders.dataset_info(config, scratch)
    figures = measure(config, scratch, info, args, args.steps)
    results["synthetic"][stream] = figures
    print_figures(f"1. synthetic_motion/default, stream {stream} ({config.model.backbone}), against the "
                  "train step", figures)

  if not args.skip_resnext:
    ucf_dir = Path(args.ucf_data_dir or scratch / "ucf101")
    ensure_mini_ucf101(ucf_dir)
    probe = resnext_config(ucf_dir, args.resnext_batch_size, args.resnext_windows, 1)
    info = builders.dataset_info(probe, scratch)
    config = resnext_config(ucf_dir, args.resnext_batch_size, args.resnext_windows, info.num_train)
    figures = measure(config, scratch, info, args, args.resnext_steps)
    results["resnext50"] = figures
    print_figures(f"2. ResNeXt-50 32x4d, DI at the input (windows 10/6, {args.resnext_windows} per video), "
                  f"224 x 224, mini UCF101 ({info.num_train} training videos), against the train step",
                  figures)

  if args.devices:
    stream = args.streams[0]
    info = builders.dataset_info(synthetic_config(stream, synthetic_dir), scratch)
    figures = device_scaling(stream, info, args.devices, args.device_repeats)
    results["devices"] = {"stream": stream, "by_count": {str(n): f for n, f in figures.items()}}
    print_devices(stream, synthetic_config(stream, "").input.batch_size, figures)
  results["load_at_end"] = load_average()
  print(f"\nload average {results['load_at_end']} at end")
  return results


def main(argv=None) -> None:
  args = parse_args(argv)
  if args.device_worker:
    print(json.dumps(device_worker(json.loads(args.device_worker))))
    return
  with tempfile.TemporaryDirectory(prefix="train_bench_") as scratch:
    results = run(args, Path(scratch))
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"figures written to {args.json}")


if __name__ == "__main__":  # the pipeline's worker processes are spawned: they re-import this file
  main()
