"""Timing shared by the benchmarks: medians of repeated calls after a warm-up."""

import time

import jax
import numpy as np


def median_seconds(fn, *args, repeats: int = 10) -> float:
  """Median wall time of `fn(*args)` over `repeats` calls, after one warm-up call (compilation,
  first-touch of buffers); waits for JAX's asynchronous results."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))
