"""The data build end to end with TV-L1 flow: the JAX op (`--flow tvl1`) against OpenCV's DualTVL1
(`--flow tvl1_opencv`), both measured in the same run.

    python benchmarks/build_bench.py [--quick] [--cores 8 16 64] [--accelerator-pairs-per-s P]

What runs is stage 1 of `data_prep.build` (`prepare_all`: decoding, JPEG of the frames, flow, quantisation
and JPEG of the flow, the cache's atomic writes) on the miniature UCF101 of the tests (`data_prep.mini`:
the real clips of tests/data/clips under UCF101 names, 3 of 320x240 and one of 424x240) at full
resolution, no resize, into a temporary cache, with `--workers` = this machine's cores for both methods:
threads decoding for tvl1 (the flow batched in the main process), processes preparing a video each for
tvl1_opencv (OpenCV single-threaded in each).

The JAX op compiles one program per frame size on its first batch, a one-off per build process; that is
done first and reported apart (on frames of zeros, which converge at once), so the timed build is the
steady state. The OpenCV processes' start-up is inside its timed build, as in a real one.

Reported per method: seconds, frames/s, pairs/s, seconds per video, and pairs/s at 320x240 (pair-pixels per
second / 76,800: the clips have two sizes). Then the ratio tvl1 / tvl1_opencv, and the projection for
UCF101: 13,320 videos of ~2.48 million frames, the pairs taken from the measured clips' pairs per frame, at
the 320x240 rates: hours on this machine for each method; on N cores for the OpenCV path ASSUMING linear
scaling with the cores (per-video parallelism: an assumption, not a measurement); on one accelerator from
the pairs/s given with `--accelerator-pairs-per-s` (e.g. flow_bench.py's on a GPU), assuming the host's
decoding and JPEG keep up with it.

`--quick`: one clip's first 8 frames (re-encoded as MPEG-4), batches of 8 pairs: a smoke run under a
minute, not a measurement.

Rates are measurements, not asserted: this is a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
import platform
import tempfile
import time

import av
import jax
import numpy as np

from arp_jax import flow
from arp_jax.flow.batching import DEFAULT_BATCH_PAIRS
from arp_jax.video import decode
from data_bench import UCF101_FRAMES, UCF101_PIXELS, UCF101_VIDEOS as UCF101_VIDEO_COUNT  # benchmarks/
from data_prep.build import prepare_all
from data_prep.cache import VideoCache
from data_prep.mini import UCF101_VIDEOS, UCF_CLIP, make_mini_ucf101
from data_prep.process import ProcessOptions

METHODS = ("tvl1", "tvl1_opencv")


@dataclasses.dataclass(frozen=True)
class Run:
  """One timed build: wall seconds and what it prepared."""
  seconds: float
  videos: int
  frames: int
  pairs: int
  pair_pixels: int  # sum over pairs of H * W

  def pairs_per_s_at_320x240(self) -> float:
    return self.pair_pixels / UCF101_PIXELS / self.seconds


def quick_manual_dir(root: Path, num_frames: int) -> tuple[Path, list[str]]:
  """A UCF101 layout with one video: the first `num_frames` frames of the UCF101 clip, as MPEG-4."""
  name = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
  path = root / "UCF-101" / name
  path.parent.mkdir(parents=True)
  frames = decode(UCF_CLIP, max_frames=num_frames).frames
  with av.open(str(path), "w") as container:
    stream = container.add_stream("mpeg4", rate=25)
    stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
    stream.bit_rate = 4_000_000
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
  return root, [name]


def compile_tvl1(video_root: Path, videos: list[str], batch_pairs: int) -> float:
  """Seconds to compile the op's program for every frame size of `videos` (and run one batch of zeros)."""
  sizes = {decode(video_root / video, max_frames=1).frames.shape[1:] for video in videos}
  start = time.perf_counter()
  for size in sorted(sizes):
    zeros = np.zeros((batch_pairs + 1, *size), np.uint8)
    [(_, result)] = flow.flow_of_videos([(None, zeros)], batch_pairs=batch_pairs)
    assert not isinstance(result, Exception), result
  return time.perf_counter() - start


def timed_build(video_root: Path, videos: list[str], cache_root: Path, method: str, workers: int,
                batch_pairs: int) -> Run:
  cache = VideoCache(cache_root / method)
  start = time.perf_counter()
  outcomes = prepare_all(videos, video_root, cache, ProcessOptions(flow=method), workers, batch_pairs)
  seconds = time.perf_counter() - start
  failed = {o.video: o.detail for o in outcomes if o.status != "done"}
  assert not failed, failed
  records = [cache.load(video) for video in videos]
  return Run(seconds=seconds, videos=len(records), frames=sum(r.num_frames for r in records),
             pairs=sum(r.num_frames - 1 for r in records),
             pair_pixels=sum((r.num_frames - 1) * r.height * r.width for r in records))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="one clip, 8 frames: a smoke run (under a minute)")
  parser.add_argument("--cores", type=int, nargs="+", default=[8, 16, 64],
                      help="core counts for the OpenCV projection (linear scaling assumed)")
  parser.add_argument("--accelerator-pairs-per-s", type=float, default=None,
                      help="the JAX op's pairs/s at 320x240 on one accelerator, for its projection")
  args = parser.parse_args()
  cores = os.cpu_count() or 1
  batch_pairs = 8 if args.quick else DEFAULT_BATCH_PAIRS
  print(f"machine: {platform.processor() or platform.machine()}, {cores} CPUs; jax {jax.__version__} on "
        f"{jax.default_backend()} ({jax.devices()[0].device_kind}); av {av.__version__}; workers {cores}, "
        f"batches of {batch_pairs} pairs")

  with tempfile.TemporaryDirectory(prefix="build_bench_") as tmp:
    tmp = Path(tmp)
    if args.quick:
      manual_dir, videos = quick_manual_dir(tmp / "manual", 8)
    else:
      manual_dir, videos = make_mini_ucf101(tmp / "manual"), list(UCF101_VIDEOS)
    video_root = manual_dir / "UCF-101"
    print(f"compilation of the JAX op, once per frame size: {compile_tvl1(video_root, videos, batch_pairs):.1f} s")
    runs = {method: timed_build(video_root, videos, tmp / "cache", method, cores, batch_pairs)
            for method in METHODS}

  first = runs[METHODS[0]]
  print(f"\n{first.videos} videos, {first.frames} frames, {first.pairs} pairs; data_prep.build stage 1, "
        f"{cores} workers:")
  print(f"  {'flow':<12} {'seconds':>8} {'frames/s':>9} {'pairs/s':>8} {'s/video':>8} {'pairs/s 320x240':>16}")
  for method, run in runs.items():
    print(f"  {method:<12} {run.seconds:8.1f} {run.frames / run.seconds:9.2f} {run.pairs / run.seconds:8.2f} "
          f"{run.seconds / run.videos:8.1f} {run.pairs_per_s_at_320x240():16.2f}")
  ratio = runs["tvl1"].pairs_per_s_at_320x240() / runs["tvl1_opencv"].pairs_per_s_at_320x240()
  print(f"  ratio tvl1 / tvl1_opencv (pairs/s): {ratio:.2f}x")

  ucf_pairs = UCF101_FRAMES * first.pairs / first.frames
  hours = {method: ucf_pairs / run.pairs_per_s_at_320x240() / 3600 for method, run in runs.items()}
  print(f"\nUCF101 projection: {UCF101_VIDEO_COUNT:,} videos, {UCF101_FRAMES:,} frames, {ucf_pairs:,.0f} pairs "
        "(the clips' pairs per frame) at 320x240, end to end:")
  for method in METHODS:
    print(f"  {method:<12} on this machine ({cores} cores): {hours[method]:8.1f} h")
  for n in args.cores:
    print(f"  tvl1_opencv  on {n:3d} cores: {hours['tvl1_opencv'] * cores / n:8.1f} h "
          "(ASSUMES linear scaling with the cores)")
  if args.accelerator_pairs_per_s:
    print(f"  tvl1 on one accelerator at {args.accelerator_pairs_per_s:g} pairs/s: "
          f"{ucf_pairs / args.accelerator_pairs_per_s / 3600:.2f} h (if the host's decoding and JPEG keep up)")
  if args.quick:
    print("\n(--quick: a smoke run on 8 frames, not a measurement)")


if __name__ == "__main__":
  main()
