"""The synthetic benchmark's dataset build: videos prepared on one thread against one thread per core.

    python benchmarks/synthetic_build_bench.py [--per-class N] [--quick]

Builds `data_prep.synthetic` with the default config's videos (16 frames of 64 x 64, TV-L1 flow by the JAX
op, JPEG, array_record) but N training and N test videos per class, twice into temporary folders: with
`workers=1` (the baseline: one thread prepares the videos while the main thread renders and writes them)
and with `workers` = this machine's cores. A build of one video per class comes first, untimed (TV-L1's
compilation, TFDS's first-build costs), so both time the steady state. Prints seconds, videos/s and TV-L1
pairs/s of each, the ratio, and whether the two datasets are identical (they must be: the examples keep
their order). The baseline runs as fast as the sequential build before the threads (39.8 s against 40.6 s
for 8 + 8 videos per class, measured 2026-12-02).

`--quick`: 1 video per class, a smoke run, not a measurement. Rates are measurements, not asserted: this is
a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1]))

from absl import logging  # pylint: disable=wrong-import-position
import tensorflow_datasets as tfds  # pylint: disable=wrong-import-position

from data_prep import synthetic  # pylint: disable=wrong-import-position


def _contents(data_dir: Path, name: str) -> list:
  sources = tfds.data_source(f"synthetic_motion/{name}", data_dir=os.fspath(data_dir))
  return [(bytes(x["name"]), *(np.stack(x[key]).tobytes() for key in ("frames", "flow_x", "flow_y")))
          for split in ("train", "test") for x in sources[split]]


def main() -> int:
  logging.set_verbosity(logging.ERROR)  # TFDS logs a warning per build of a config it does not list
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--per-class", type=int, default=8, help="training and test videos per class (default 8)")
  parser.add_argument("--quick", action="store_true", help="1 video per class: a smoke run")
  args = parser.parse_args()
  per_class = 1 if args.quick else args.per_class
  default = synthetic.SyntheticMotion.builder_configs["default"]
  config = dataclasses.replace(default, name=f"bench{per_class}", num_per_class_train=per_class,
                               num_per_class_test=per_class)
  videos = 2 * per_class * len(synthetic.CLASSES)
  pairs = videos * (config.num_frames - 1)
  cores = os.cpu_count() or 1
  print(f"{platform.node()}: {cores} CPUs; {videos} videos of {config.num_frames} frames of {config.size}x"
        f"{config.size}, {config.flow} flow")
  seconds, contents = {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    # Outside both timings: TV-L1's compilation for this frame size and TFDS's first-build costs, by a
    # build of one video per class.
    synthetic.build(Path(tmp) / "warm-up", dataclasses.replace(config, name="warmup", num_per_class_train=1,
                                                               num_per_class_test=1))
    for workers in (1, cores):
      if workers in seconds:
        continue
      start = time.perf_counter()
      synthetic.build(Path(tmp) / str(workers), config, workers=workers)
      seconds[workers] = time.perf_counter() - start
      contents[workers] = _contents(Path(tmp) / str(workers), config.name)
      print(f"workers {workers:2d}: {seconds[workers]:6.1f} s, {videos / seconds[workers]:5.1f} videos/s, "
            f"{pairs / seconds[workers]:6.1f} TV-L1 pairs/s", flush=True)
  print(f"one per core / one thread: {seconds[1] / seconds[cores]:.2f}x faster; datasets identical: "
        f"{contents[1] == contents[cores]}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
