"""Pooling speed, as ratios against baselines measured in the same run.

    python benchmarks/pool_bench.py [--quick]

1. ARP over [8, 10, 224, 224, 3] float32 and uint8 (jitted `arp_jax.pool`) against NumPy `einsum` with
   the same weights, `torch.einsum` on the CPU (when torch is installed: `pip install torch==2.13.0`), and
   the read bandwidth of this machine (a large single-threaded NumPy sum, the memory-bound floor).
2. Multiple dynamic images (window 10, stride 6) over a 300-frame 240x320 video, same baselines.
3. Exact rank pooling against scikit-learn's LinearSVR (liblinear -s 11, the same settings) and against
   ARP, on 64 windows of 10 frames at 112x112x3 and at 224x224x3, and on [256, 10, 2048] features; called
   at top level and inside the caller's jax.jit (targets: >= 20 x scikit-learn in both, in-jit within
   1.5 x the top-level time, the same result to 1e-6).
4. Table 2 on the real clips in tests/data: pairwise ranking accuracy and speed of ARP and RP.

Timings are medians of repeated calls after a warm-up (compilation excluded). Pass/fail targets are for
the reader, not asserted: this is a measurement, never a test.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import time

import jax
import numpy as np

import arp_jax
from arp_jax import ranking_study
from arp_jax.video import read_frames
from timing import median_seconds  # benchmarks/timing.py

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "clips"


def read_bandwidth(nbytes: int = 512 << 20) -> float:
  """Bytes/s of a single-threaded NumPy sum over a float32 array far larger than the caches."""
  big = np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)
  return big.nbytes / median_seconds(np.sum, big, repeats=5)


def torch_or_none():
  try:
    import torch
  except ImportError:
    print("  (torch not installed: `pip install torch==2.13.0` adds the PyTorch baseline)")
    return None
  return torch


def report(name: str, seconds: float, frames: int, nbytes: int, baseline: float | None = None,
           baseline_name: str = "", bandwidth: float | None = None) -> None:
  line = f"  {name:<34} {seconds * 1e3:8.2f} ms {frames / seconds:10.0f} frames/s {nbytes / seconds / 1e9:6.2f} GB/s"
  if bandwidth:
    line += f"  {nbytes / seconds / bandwidth:5.2f} x read bandwidth"
  if baseline:
    line += f"  {baseline / seconds:6.2f} x faster than {baseline_name}"
  print(line)


def bench_arp(bandwidth: float, repeats: int) -> None:
  print("\n1. ARP over [8, 10, 224, 224, 3] (8 clips of 10 frames)")
  rng = np.random.default_rng(0)
  frames32 = rng.uniform(0, 255, (8, 10, 224, 224, 3)).astype(np.float32)
  frames8 = frames32.astype(np.uint8)
  weights = arp_jax.arp_weights(10)
  count = 80
  numpy_time = median_seconds(lambda x: np.einsum("bt...,t->b...", x, weights), frames32, repeats=repeats)
  report("NumPy einsum float32", numpy_time, count, frames32.nbytes, bandwidth=bandwidth)
  torch = torch_or_none()
  if torch is not None:
    x, w = torch.from_numpy(frames32), torch.from_numpy(weights)
    torch_time = median_seconds(lambda: torch.einsum("bt...,t->b...", x, w), repeats=repeats)
    report("torch.einsum float32 (CPU)", torch_time, count, frames32.nbytes, bandwidth=bandwidth)
  pooled = jax.jit(lambda x: arp_jax.pool(x, axis=1))
  for frames in (frames32, frames8):
    device_frames = jax.device_put(frames)
    seconds = median_seconds(pooled, device_frames, repeats=repeats)
    report(f"arp_jax.pool {frames.dtype}", seconds, count, frames.nbytes, numpy_time, "NumPy",
           bandwidth=bandwidth)
  np.testing.assert_allclose(pooled(frames32), np.einsum("bt...,t->b...", frames32, weights),
                             rtol=1e-4, atol=1e-2)


def bench_mdi(bandwidth: float, repeats: int) -> None:
  print("\n2. Multiple dynamic images (window 10, stride 6) over a 300-frame 240x320 video")
  rng = np.random.default_rng(1)
  video32 = rng.uniform(0, 255, (300, 240, 320, 3)).astype(np.float32)
  indices = arp_jax.window_indices(300, 10, 6)
  weights = arp_jax.arp_weights(10)
  print(f"  {len(indices)} windows; every frame is read {indices.size / 300:.2f} times")
  numpy_time = median_seconds(lambda v: np.einsum("sthwc,t->shwc", v[indices], weights),
                              video32, repeats=max(2, repeats // 3))
  report("NumPy gather + einsum float32", numpy_time, 300, video32.nbytes, bandwidth=bandwidth)
  torch = torch_or_none()
  if torch is not None:
    v, w, i = torch.from_numpy(video32), torch.from_numpy(weights), torch.from_numpy(indices).long()
    torch_time = median_seconds(lambda: torch.einsum("sthwc,t->shwc", v[i], w), repeats=max(2, repeats // 3))
    report("torch gather + einsum float32", torch_time, 300, video32.nbytes, bandwidth=bandwidth)
  pooled = jax.jit(lambda x: arp_jax.pool(x, window=10, stride=6))
  for video in (video32, video32.astype(np.uint8)):
    seconds = median_seconds(pooled, jax.device_put(video), repeats=repeats)
    report(f"arp_jax.pool {video.dtype}", seconds, 300, video.nbytes, numpy_time, "NumPy",
           bandwidth=bandwidth)


def sklearn_rank_pool(x: np.ndarray) -> np.ndarray:
  """VideoDarwin's rank pooling of one sequence x [T, D] in float64 by scikit-learn, as rank_pool's
  defaults (time-varying mean, signed square root, L2, C = 1, epsilon = 0.1)."""
  from sklearn.svm import LinearSVR
  T = len(x)
  means = np.cumsum(x, axis=0, dtype=np.float64) / np.arange(1, T + 1)[:, None]
  vectors = np.sign(means) * np.sqrt(np.abs(means))
  vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
  svr = LinearSVR(C=1.0, epsilon=0.1, loss="squared_epsilon_insensitive", fit_intercept=False,
                  dual=False, tol=1e-8, max_iter=10_000)
  return svr.fit(vectors, np.arange(1, T + 1, dtype=np.float64)).coef_


def max_relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.linalg.norm(got - want, axis=-1) / np.linalg.norm(want, axis=-1)))


def interleaved_median_seconds(fns, *args, repeats: int) -> list[float]:
  """`median_seconds` of each of `fns`, their calls alternating."""
  for fn in fns:
    jax.block_until_ready(fn(*args))
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, seconds in zip(fns, times):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      seconds.append(time.perf_counter() - start)
  return [float(np.median(seconds)) for seconds in times]


def bench_rank_pool_case(name: str, features: np.ndarray, repeats: int, sklearn_count: int) -> None:
  """features: [N, T, D]. scikit-learn is slow: it is timed on `sklearn_count` sequences, scaled to N."""
  count = min(len(features), sklearn_count)
  start = time.perf_counter()
  expected = np.stack([sklearn_rank_pool(x) for x in features[:count]])
  sklearn_time = (time.perf_counter() - start) / count * len(features)
  print(f"\n  {name}: {features.shape} float32")
  print(f"    scikit-learn LinearSVR (liblinear -s 11)  {sklearn_time * 1e3:9.1f} ms (timed on {count}, scaled)")
  device_features = jax.device_put(features)
  # As a notebook or the dataset tools call it (rank_pool compiles its own program), and traced inside
  # the caller's own jax.jit: the same program either way.
  rank_pool = lambda x: arp_jax.rank_pool(x, C=1.0, epsilon=0.1)
  in_jit = jax.jit(rank_pool)
  arp_time = median_seconds(lambda x: arp_jax.pool(x, axis=1), device_features, repeats=repeats)
  # Alternating calls, so that a change in the machine's load affects both the same.
  top_time, jit_time = interleaved_median_seconds((rank_pool, in_jit), device_features, repeats=repeats)
  top, jitted = np.asarray(rank_pool(device_features)), np.asarray(in_jit(device_features))
  for label, seconds, pooled in (("arp_jax.rank_pool (top level)", top_time, top),
                                 ("inside the caller's jax.jit", jit_time, jitted)):
    print(f"    {label:<40} {seconds * 1e3:9.1f} ms  {sklearn_time / seconds:6.1f} x scikit-learn, "
          f"{seconds / arp_time:5.1f} x ARP, max relative error against scikit-learn "
          f"{max_relative_error(pooled[:count], expected):.1e}")
  print(f"    in-jit / top-level time {jit_time / top_time:4.2f}; max relative difference in-jit against "
        f"top level {max_relative_error(jitted, top):.1e}; ARP on the same input {arp_time * 1e3:.1f} ms")


def bench_rank_pool(repeats: int, windows: int) -> None:
  print("\n3. Exact rank pooling (C=1, epsilon=0.1) against scikit-learn's LinearSVR")
  rng = np.random.default_rng(2)
  for size in (112, 224):
    # Smooth random videos: frames drift, as real ones do, so the SVR problems are not trivial.
    drift = np.cumsum(rng.normal(0, 4, (windows, 10, size, size, 3)).astype(np.float32), axis=1)
    frames = np.clip(128 + drift, 0, 255).astype(np.float32)
    bench_rank_pool_case(f"{windows} windows of 10 frames at {size}x{size}x3", frames.reshape(windows, 10, -1),
                         repeats, sklearn_count=8)
  # Feature sequences (e.g. a backbone's 2048 pooled activations per frame): non-negative, drifting.
  features = np.maximum(np.cumsum(rng.normal(0, 0.3, (4 * windows, 10, 2048)), axis=1)
                        + rng.gamma(1.0, 1.0, (4 * windows, 1, 2048)), 0).astype(np.float32)
  bench_rank_pool_case(f"{4 * windows} sequences of 10 feature vectors of 2048", features, repeats,
                       sklearn_count=64)


def bench_ranking_accuracy() -> None:
  print("\n4. Table 2 on the real clips (`arp_jax.ranking_study`, frames halved to 120 x 160): pairwise ranking")
  print("   accuracy and frames per second (paper, UCF101 test split 1: RP 95.5 +- 0.6 %, 131 fps;")
  print("   ARP 96.5 +- 0.5 %, 5920 fps)")
  for path in sorted(DATA.glob("*/*")):
    frames = read_frames(path)[:, ::2, ::2]
    result = ranking_study.compare_video(frames)
    print(f"  {path.name[:48]:<48} T={len(frames):3d}  " + "  ".join(
        f"{method.upper()} {100 * r['accuracy']:5.1f} % {len(frames) / r['seconds']:7.0f} fps"
        for method, r in result.items()))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer repeats and RP windows (a smoke run)")
  args = parser.parse_args()
  repeats = 3 if args.quick else 10
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}")
  bandwidth = read_bandwidth(128 << 20 if args.quick else 512 << 20)
  print(f"read bandwidth (NumPy sum of a large float32 array, one thread): {bandwidth / 1e9:.2f} GB/s")
  bench_arp(bandwidth, repeats)
  bench_mdi(bandwidth, repeats)
  bench_rank_pool(repeats, 8 if args.quick else 64)
  bench_ranking_accuracy()


if __name__ == "__main__":
  main()
