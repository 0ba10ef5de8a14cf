"""Training input kept decoded in memory against read and decoded every epoch, and mirrors by OpenCV.

    arp-jax synthetic-data --data-dir runs/synthetic_four_stream/data   # once
    python benchmarks/input_bench.py [--data-dir runs/synthetic_four_stream/data] [--blocks N]

1. Symmetries: one training window (10 frames of 64 x 64 RGB, uint8) mirrored and transposed, then
   normalised (`augment.crop_resize_flip`'s last two steps): `symmetries.transform` (OpenCV, image by image,
   into a new array) against the baseline it replaced, NumPy views of the window, whose element-by-element
   copy the normalisation then paid for. Medians of 300 calls.
2. The train step of the synthetic benchmark's streams fed by their input pipeline (Grain, two reader
   threads, as `arp_jax.train` runs it), with `input.cache_decoded` (`arp_jax.input.memory`) against the
   baseline without it, which reads and decodes every video every epoch. The two pipelines feed one train
   step in alternating blocks of 30 steps (this machine's speed drifts within minutes), after a warm-up
   epoch each (the cache full, the step compiled); medians of the blocks, and of the pipelines alone. The
   batches are checked equal.

Measurements, never tests.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
import platform
import sys
import time

import jax
import numpy as np

from arp_jax import builders, normalization
from arp_jax.config import load_config_file
from arp_jax.input import CHANNELS, symmetries
from arp_jax.train_step import data_mesh, global_batch, make_train_step, replicate
from timing import median_seconds  # benchmarks/timing.py

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "synthetic_four_stream.py"
STREAMS = ("si", "mean", "dof")
BLOCK = 30  # steps per timed block: one epoch of the synthetic benchmark


def viewed(window: np.ndarray, applied) -> np.ndarray:
  """The baseline: the symmetries as NumPy views (what `symmetries.transform` returned for images)."""
  for name in applied:
    window = {"hflip": lambda w: w[..., ::-1, :], "vflip": lambda w: w[..., ::-1, :, :],
              "transpose": lambda w: w.swapaxes(-3, -2)}[name](window)
  return window


def symmetries_table() -> None:
  window = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
  convention = normalization.convention("reference", "rgb")
  out = np.empty(window.shape, np.float32)
  print(f"{'symmetries':<24} {'views (baseline) us':>20} {'OpenCV us':>10} {'speed-up':>9}")
  for count in (1, 2, 3):
    for applied in itertools.combinations(symmetries.SYMMETRIES, count):
      seconds = [median_seconds(lambda f=f: normalization.normalize(f(window, applied), convention, out=out),
                                repeats=300)
                 for f in (viewed, lambda w, a: symmetries.transform(w, a, None))]
      print(f"{' + '.join(applied):<24} {1e6 * seconds[0]:>20.0f} {1e6 * seconds[1]:>10.0f} "
            f"{seconds[0] / seconds[1]:>8.2f}x")


def configured(stream: str, data_dir: str, cache: bool):
  """The stream's config reading `data_dir`, with or without `input.cache_decoded`."""
  config = load_config_file(EXPERIMENT).get_config(f"stream={stream}")
  config.dataset.data_dir, config.input.cache_decoded = data_dir, cache
  return config


def pipeline(config):
  source = builders.source(config, config.dataset.data_dir, train=True)
  return iter(builders.input_pipeline(config.input, source, train=True, batch_size=config.input.batch_size,
                                      seed=config.seed, convention=builders.input_convention(config)))


def stream_row(stream: str, data_dir: str, blocks: int) -> str:
  config = configured(stream, data_dir, False)
  info = builders.dataset_info(config, data_dir)
  network = builders.model(config.model, info.num_classes, CHANNELS[config.input.modality])
  mesh = data_mesh()
  state, _ = builders.train_state(config, network, info.num_train)
  state = replicate(state, mesh)
  train_step = make_train_step(network, mesh)
  key = jax.random.key(0)
  iterators = {"decoded every epoch": pipeline(config),
               "cached": pipeline(configured(stream, data_dir, True))}
  for _ in range(BLOCK + 2):  # a warm-up epoch: the cache filled, the batches compared
    batches = [next(iterator) for iterator in iterators.values()]
    if not all(np.array_equal(batches[0][k], batches[1][k]) for k in batches[0]):
      raise AssertionError(f"{stream}: the cached pipeline's batches differ from the baseline's")
  state, metrics = train_step(state, global_batch(batches[0], mesh), key)
  jax.block_until_ready(metrics)
  stepped = {name: [] for name in iterators}
  alone = {name: [] for name in iterators}
  for _ in range(blocks):
    for name, iterator in iterators.items():
      start = time.perf_counter()
      for _ in range(BLOCK):
        state, metrics = train_step(state, global_batch(next(iterator), mesh), key)
      jax.block_until_ready(metrics)
      stepped[name].append((time.perf_counter() - start) / BLOCK)
      start = time.perf_counter()
      for _ in range(BLOCK):
        next(iterator)
      alone[name].append((time.perf_counter() - start) / BLOCK)
  base, cached = (np.median(stepped[name]) for name in iterators)
  base_alone, cached_alone = (np.median(alone[name]) for name in iterators)
  return (f"{stream:<6} {1e3 * base_alone:>16.1f} {1e3 * cached_alone:>10.1f} {1e3 * base:>19.1f} "
          f"{1e3 * cached:>15.1f} {base / cached:>8.2f}x")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", default=str(ROOT / "runs" / "synthetic_four_stream" / "data"),
                      help="where `arp-jax synthetic-data` prepared the synthetic benchmark")
  parser.add_argument("--blocks", type=int, default=6, help="timed blocks of 30 steps per variant (median)")
  args = parser.parse_args()
  print(f"{platform.processor() or platform.machine()}, {jax.device_count()} {jax.default_backend()} "
        f"device(s), jax {jax.__version__}")
  symmetries_table()
  print()
  print(f"{'stream':<6} {'pipeline alone ms':>16} {'cached ms':>10} {'step fed, baseline ms':>19} "
        f"{'step fed, cached':>15} {'speed-up':>9}")
  for stream in STREAMS:
    try:
      print(stream_row(stream, args.data_dir, args.blocks), flush=True)
    except FileNotFoundError as error:
      print(f"input_bench: {error}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
