"""Data-preparation speed on the real clips in tests/data, in frames per second of one process on one core.

    python benchmarks/data_bench.py [--quick] [--cores 1 8 16 64] [--crop-only]

Every stage runs on every real clip (tests/data/clips/{ucf101,hmdb51}/*.avi) at its original size, in one
process; a rate is the sum of frames over the median time of a pass over all of them (a few passes after
a warm-up one; stages 1-3 take turns pass by pass, so that their ratios are measured under the same load).
OpenCV runs with `cv2.setNumThreads(1)`; PIL's JPEG encoder and NumPy are single-threaded here.

Rates are per core: time is the process's CPU time (`time.process_time`, all threads), i.e. core-seconds,
which other processes on a shared machine disturb far less than wall time (they stretched wall time up to
2.5x on the 2-core machine this was written on). The wall-time rate is printed beside it; on an otherwise
idle machine it is close to the CPU rate. Ratios and the projection use CPU time.

1. Decoding only (`arp_jax.video.decode`): the floor every other stage adds to.
2. Decoding + JPEG of every frame at quality 95: `prepare_video` with flow "none".
3. (2) plus what the dynamic-image dataset builders add per video: one whole-video dynamic image and the
   windowed ones (window 10, stride 6), each scaled with `to_uint8` and JPEG-encoded (target for the
   reader: rate >= 0.7 x the rate of (1)).
3b. What one dynamic-image builder does per video on its own: decode, windows 10/6, 8-bit, JPEG (no JPEG
   of the frames: that is the frames dataset's work).
4. Optical flow by OpenCV ("tvl1_opencv", "farneback", "dis") with quantisation and JPEG of u and v
   (`encode_flow`), in frame pairs per second, on a few pairs from the middle of each clip (TV-L1 is slow).
   The JAX op ("tvl1", batched, multi-threaded) is measured by benchmarks/build_bench.py and flow_bench.py.

5. The training input's on-the-fly crop and resize of one window (`crop_params` + `augment`: 10 RGB frames
   of 320x240 cropped, resized to 224x224, flipped, minus the mean), with the crop drawn in the frame
   resized to short side 256 (the reference, the default) against `short_side=None` (scales in stored
   pixels: the path before the resize was folded into the crop), same draws, in turns; also the test
   centre crop, and for scale the pass it avoids: resizing every frame to 341x256 before cropping.
   `--crop-only` runs just this stage (seconds).

Projection: hours to prepare UCF101 (frames + TV-L1 flow) on N cores, assuming 13,320 videos of ~2.48
million frames in all (186.5 frames per clip on average), all 320x240, and perfect scaling with
per-video parallelism (`data_prep.build --workers N`). The cost of a frame is (2) plus (4, tvl1_opencv) per pair;
costs and JPEG sizes are measured per pixel, because the HMDB51 clips here are not all 320x240. The
projected dataset size uses the average JPEG bytes per RGB frame and per flow image (u or v) measured here.

Rates are measurements, not asserted: this is a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
from pathlib import Path
import platform
import time

import av
import cv2
import numpy as np
import PIL

from arp_jax.input import augment, crop_params
from arp_jax.jpeg import encode_jpeg
from arp_jax.video import decode
from data_prep.dynamic import dynamic_images, to_uint8
from data_prep.process import ProcessOptions, encode_flow, prepare_video
from timing import median_seconds  # benchmarks/timing.py

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "clips"
UCF101_VIDEOS = 13_320
UCF101_FRAMES = round(UCF101_VIDEOS * 186.5)  # ~2.48 million
UCF101_PIXELS = 240 * 320  # every UCF101 frame is 320x240


@dataclasses.dataclass(frozen=True)
class Rate:
  """A measured stage: a pass over `frames` frames (or pairs) of `pixels` pixels in all took `seconds` of
  CPU time and `wall_seconds` of wall time (medians)."""
  frames: int
  pixels: int
  seconds: float
  wall_seconds: float

  @property
  def fps(self) -> float:
    return self.frames / self.seconds

  @property
  def seconds_at_320x240(self) -> float:
    """Seconds per frame (or pair) of UCF101's size, scaled by pixel count."""
    return self.seconds / self.pixels * UCF101_PIXELS


def frame_pixels(videos, drop: int = 0) -> tuple[int, int]:
  """(frames, pixels of those frames) of `uint8 [T, H, W, 3]` videos, counting T - drop per video (drop=1:
  the pairs between consecutive frames)."""
  return (sum(len(v) - drop for v in videos),
          sum((len(v) - drop) * v.shape[1] * v.shape[2] for v in videos))


def measure(steps: dict, items, repeats: int) -> dict:
  """{name: (median CPU seconds, median wall seconds, JPEGs of the last pass)} of a pass of each step over
  `items`. The steps take turns within each round, so that load from other processes, which comes and
  goes, falls on all of them alike; `median_seconds` runs the rounds (a warm-up round, left out, then
  `repeats`). Only the last pass's JPEGs are kept, so memory stays flat."""
  times, last = {name: [] for name in steps}, {}

  def one_round():
    for name, step in steps.items():
      wall, cpu = time.perf_counter(), time.process_time()
      last[name] = [jpeg for item in items for jpeg in step(item)]
      times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
  median_seconds(one_round, repeats=repeats)
  return {name: (*np.median(times[name][1:], axis=0), last[name]) for name in steps}


def decode_only(path) -> list[bytes]:
  """Stage 1 for one clip; no JPEGs."""
  decode(path)
  return []


def with_dynamic_images(path) -> list[bytes]:
  """Stage 3 for one clip; returns the JPEGs of its dynamic images (the frames' JPEGs are dropped)."""
  # The work of prepare_video(flow="none"), redone here because the dynamic images need the decoded frames.
  frames = decode(path).frames
  for frame in frames:
    encode_jpeg(frame)
  jpegs = []
  for pooled in (dynamic_images(frames), dynamic_images(frames, window=10, stride=6)):
    images, _, _ = to_uint8(pooled)  # uint8 [S, H, W, 3]
    jpegs += [encode_jpeg(image) for image in images]
  return jpegs


def dynamic_image_builder(path) -> list[bytes]:
  """Stage 3b for one clip: what `ucf101_dynamic_images/*_rgb_w10s6` does per video (decode, windows of
  10 frames every 6, 8-bit, JPEG); it never encodes the frames themselves."""
  images, _, _ = to_uint8(dynamic_images(decode(path).frames, window=10, stride=6))
  return [encode_jpeg(image) for image in images]


def flow_jpegs(frames, method: str) -> tuple[bytes, ...]:
  """Stage 4 for `uint8 [k + 1, H, W, 3]` frames: `encode_flow` (grey conversion, `compute_flow`, `quantize`
  with bound 20, JPEG), as `prepare_video` runs it; the k u-JPEGs, then the k v-JPEGs."""
  flow_x, flow_y = encode_flow(frames, ProcessOptions(flow=method))
  return flow_x + flow_y


def middle_pairs(videos, pairs: int) -> list[np.ndarray]:
  """Runs of consecutive frames, `uint8 [k + 1, H, W, 3]` from the middle of each video, holding `pairs`
  pairs in all: k in proportion to the video's length (at least 1), so that the mix of frame sizes is
  that of stages 1-3."""
  lengths = np.array([len(v) for v in videos])
  counts = np.maximum(1, np.round(pairs * lengths / lengths.sum()).astype(int))
  return [v[(len(v) - k - 1) // 2:][:k + 1] for v, k in zip(videos, counts)]


def crop_windows(videos, count: int, window: int = 10) -> list[np.ndarray]:
  """`count` windows of `window` consecutive frames, uint8 [window, 240, 320, 3], cycling over the 320x240
  videos."""
  videos = [v for v in videos if v.shape[1:3] == (240, 320) and len(v) >= window]
  return [videos[i % len(videos)][(i * 7) % (len(videos[i % len(videos)]) - window + 1):][:window]
          for i in range(count)]


def crop_and_resize(windows, train: bool, short_side, resize_first: bool = False) -> list:
  """Stage 5: one pass of the per-window augmentation over `windows`, with fresh draws (seed 0) so that
  every variant crops at the same scales and positions."""
  rng = np.random.default_rng(0)
  for frames in windows:
    if resize_first:  # what folding the resize into the crop avoids: a resize of every whole frame
      frames = np.stack([cv2.resize(frame, (341, 256), interpolation=cv2.INTER_LINEAR) for frame in frames])
    params = crop_params(frames.shape[1], frames.shape[2], rng, train, short_side=short_side)
    augment(frames, params, 224, "rgb")
  return []


def crop_stage(videos, repeats: int, count: int) -> None:
  """Prints stage 5: ms per window (CPU time) of each variant and its ratio to the old path."""
  windows = crop_windows(videos, count)
  steps = {
      "train, short_side=None (old path)": functools.partial(crop_and_resize, train=True, short_side=None),
      "train, short_side=256 (default)": functools.partial(crop_and_resize, train=True, short_side=256),
      "train, resize to 341x256 first, then crop": functools.partial(crop_and_resize, train=True,
                                                                   short_side=None, resize_first=True),
      "test, short_side=None (old path)": functools.partial(crop_and_resize, train=False, short_side=None),
      "test, short_side=256 (default)": functools.partial(crop_and_resize, train=False, short_side=256),
  }
  times = measure({name: lambda _, step=step: step(windows) for name, step in steps.items()}, [None],
                  repeats)
  print(f"5. crop + resize + flip + mean of one window of 10 RGB frames 320x240 -> 224x224 "
        f"({len(windows)} windows, medians of {repeats} passes):")
  print(f"  {'variant':<44} {'ms/window':>9} {'x old':>7} {'wall ms':>8}")
  for name, (cpu, wall, _) in times.items():
    old = times[("train" if name.startswith("train") else "test") + ", short_side=None (old path)"][0]
    print(f"  {name:<44} {cpu / len(windows) * 1e3:9.3f} {cpu / old:7.3f} {wall / len(windows) * 1e3:8.3f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer repeats and TV-L1 pairs (under a minute)")
  parser.add_argument("--cores", type=int, nargs="+", default=[1, 8, 16, 64],
                      help="core counts for the UCF101 projection")
  parser.add_argument("--crop-only", action="store_true", help="only stage 5, the training crop and resize")
  args = parser.parse_args()
  cv2.setNumThreads(1)  # figures per core: no OpenCV thread pool
  # Flow passes are long (TV-L1: seconds per pair), so fewer of them are enough for a stable median.
  repeats, flow_repeats = (3, 1) if args.quick else (9, 3)
  flow_pairs = {"tvl1_opencv": 4 if args.quick else 10, "farneback": 30 if args.quick else 60,
                "dis": 30 if args.quick else 60}
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; cv2 {cv2.__version__} "
        f"(setNumThreads(1)), av {av.__version__}, pillow {PIL.__version__}")

  clips = sorted(DATA.glob("*/*.avi"))
  videos = [decode(path).frames for path in clips]
  if args.crop_only:
    crop_stage(videos, repeats, 50 if args.quick else 200)
    return
  frames, pixels = frame_pixels(videos)
  sizes = sorted({f"{v.shape[2]}x{v.shape[1]}" for v in videos})
  print(f"{len(clips)} clips, {frames} frames ({', '.join(sizes)}); medians of {repeats} passes "
        f"(flow: {flow_repeats})\n")

  stages = {
      "1. decode": decode_only,
      "2. decode + JPEG frames": lambda path: prepare_video(path, ProcessOptions(flow="none")).frames,
      "3. (2) + dynamic images, JPEG": with_dynamic_images,
      "3b. decode + dynamic images 10/6, JPEG (DI builder)": dynamic_image_builder,
  }
  rates, jpegs = {}, {}
  for name, (cpu, wall, jpegs[name]) in measure(stages, clips, repeats).items():
    rates[name] = Rate(frames, pixels, cpu, wall)
  for method, count in flow_pairs.items():
    pairs = middle_pairs(videos, count)
    step = {method: functools.partial(flow_jpegs, method=method)}
    cpu, wall, jpegs[method] = measure(step, pairs, flow_repeats)[method]
    rates[method] = Rate(*frame_pixels(pairs, drop=1), cpu, wall)

  floor = rates["1. decode"].fps
  print("frames/s per core (CPU time), its ratio to (1), and frames/s by wall time:")
  print(f"  {'stage':<58} {'frames/s':>9} {'x (1)':>7} {'wall f/s':>9}")
  for name, rate in rates.items():
    label = name if name in stages else f"4. flow {name} + quantize + JPEG, pairs/s ({rate.frames} pairs)"
    target = "  (target >= 0.70)" if name.startswith("3") else ""
    print(f"  {label:<58} {rate.fps:9.1f} {rate.fps / floor:7.4f} "
          f"{rate.frames / rate.wall_seconds:9.1f}{target}")

  # Bytes per pixel, so that sizes carry over to UCF101's 320x240 frames; flow JPEGs are u and v apart.
  rgb_bpp = sum(map(len, jpegs["2. decode + JPEG frames"])) / pixels
  flow_bpp = sum(map(len, jpegs["tvl1_opencv"])) / (2 * rates["tvl1_opencv"].pixels)
  dynamic = jpegs["3. (2) + dynamic images, JPEG"]
  print(f"\nJPEG q95, average bytes: RGB frame {rgb_bpp * pixels / frames:,.0f} ({rgb_bpp:.3f} per pixel); "
        f"TV-L1 flow image, u or v, {flow_bpp * rates['tvl1_opencv'].pixels / rates['tvl1_opencv'].frames:,.0f} "
        f"({flow_bpp:.3f} per pixel);\n  dynamic image {sum(map(len, dynamic)) / len(dynamic):,.0f} "
        f"({len(dynamic)} of them: whole clips + windows)")

  ucf_pairs = UCF101_FRAMES - UCF101_VIDEOS
  frame_cost = rates["2. decode + JPEG frames"].seconds_at_320x240
  flow_cost = rates["tvl1_opencv"].seconds_at_320x240
  total_hours = (UCF101_FRAMES * frame_cost + ucf_pairs * flow_cost) / 3600
  print(f"\nUCF101 projection: {UCF101_VIDEOS:,} videos, {UCF101_FRAMES:,} frames at 320x240, frames + "
        "TV-L1 flow,\n  perfect scaling with per-video parallelism (data_prep.build --workers N)")
  print(f"  per frame on one core: decode + JPEG {frame_cost * 1e3:.2f} ms, TV-L1 + quantize + JPEG "
        f"{flow_cost * 1e3:.1f} ms per pair")
  print(f"  {'cores':>6} {'hours':>8}")
  for cores in args.cores:
    print(f"  {cores:6d} {total_hours / cores:8.1f}")
  frames_gb = UCF101_FRAMES * rgb_bpp * UCF101_PIXELS / 1e9
  flow_gb = 2 * ucf_pairs * flow_bpp * UCF101_PIXELS / 1e9
  print(f"  dataset size: frames {frames_gb:.1f} GB + flow {flow_gb:.1f} GB = {frames_gb + flow_gb:.1f} GB\n")
  crop_stage(videos, repeats, 50 if args.quick else 200)


if __name__ == "__main__":
  main()
