"""Pooling speed, as ratios against baselines measured in the same run.

    python benchmarks/pool_bench.py [--quick]

1. ARP over [8, 10, 224, 224, 3] float32 and uint8 (jitted `arp_jax.pool`) against NumPy `einsum` with
   the same weights, `torch.einsum` on the CPU (when torch is installed: `pip install torch==2.13.0`), and
   the read bandwidth of this machine (a large single-threaded NumPy sum, the memory-bound floor).
2. Multiple dynamic images (window 10, stride 6) over a 300-frame 240x320 video, same baselines.
3. Exact rank pooling of 64 windows of 10 frames at 224x224x3 against scikit-learn's LinearSVR (liblinear
   -s 11, the same settings, checked to agree to 1e-4) and against ARP on the same windows; called at top
   level and inside the caller's jax.jit.
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
from arp_jax.pooling._cpu_jit import CLASSIC_EMITTERS
from data_prep.video import read_frames
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


def bench_rank_pool(repeats: int, windows: int) -> None:
  print(f"\n3. Exact rank pooling of {windows} windows of 10 frames at 224x224x3 (C=1, epsilon=0.1)")
  from sklearn.svm import LinearSVR
  rng = np.random.default_rng(2)
  # Smooth random videos: frames drift, as real ones do, so the SVR problems are not trivial.
  drift = np.cumsum(rng.normal(0, 4, (windows, 10, 224, 224, 3)).astype(np.float32), axis=1)
  frames = np.clip(128 + drift, 0, 255).astype(np.float32)
  features = frames.reshape(windows, 10, -1)

  def sklearn_rank_pool(x):
    means = np.cumsum(x, axis=0, dtype=np.float64) / np.arange(1, 11)[:, None]
    vectors = np.sign(means) * np.sqrt(np.abs(means))
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    svr = LinearSVR(C=1.0, epsilon=0.1, loss="squared_epsilon_insensitive", fit_intercept=False,
                    dual=False, tol=1e-8, max_iter=10_000)
    return svr.fit(vectors, np.arange(1, 11, dtype=np.float64)).coef_

  count = min(windows, 8)  # scikit-learn is slow: time a subset, scale per window
  start = time.perf_counter()
  expected = np.stack([sklearn_rank_pool(x) for x in features[:count]])
  sklearn_time = (time.perf_counter() - start) / count * windows
  print(f"  scikit-learn LinearSVR (liblinear -s 11)    {sklearn_time * 1e3:9.1f} ms "
        f"(timed on {count} windows, scaled)")
  device_features = jax.device_put(features)
  # Called as a notebook or data_prep calls them (each compiles its own program; rank_pool's with XLA:CPU's
  # classic emitters, see arp_jax/pooling/_cpu_jit.py), and traced inside the caller's own jax.jit: with
  # XLA's default emitters, and with the classic ones asked for by the caller.
  rank_pool = lambda x: arp_jax.rank_pool(x, C=1.0, epsilon=0.1)
  arp = lambda x: arp_jax.pool(x, axis=1)
  arp_time = median_seconds(arp, device_features, repeats=repeats)
  classic = jax.jit(rank_pool, compiler_options=CLASSIC_EMITTERS)
  for name, fn in (("arp_jax.rank_pool", rank_pool),
                   ("  inside the caller's jax.jit", jax.jit(rank_pool)),
                   ("  inside jax.jit(compiler_options=classic)", classic)):
    rp_time = median_seconds(fn, device_features, repeats=repeats)
    got = np.asarray(fn(device_features))[:count]
    error = np.abs(got - expected).max() / np.abs(expected).max()
    print(f"  {name:<43} {rp_time * 1e3:9.1f} ms  {sklearn_time / rp_time:6.1f} x faster than scikit-learn, "
          f"{rp_time / arp_time:4.2f} x the time of ARP, max relative error {error:.1e}")
  print(f"  arp_jax.pool (ARP, same windows)            {arp_time * 1e3:9.1f} ms  (the paper: RP takes 45 x the "
        "time of ARP)")


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
