"""TV-L1 optical flow speed: `arp_jax.flow.tvl1` batched against OpenCV's DualTVL1, in one run.

    python benchmarks/flow_bench.py [--quick] [--batch 32] [--opencv-pairs 8]

On 320x240 consecutive pairs of the real clips in tests/data/clips:
1. OpenCV DualTVL1 with its defaults, pairs/s (one pair at a time, OpenCV's own threads), with Farneback
   and DIS (medium) for scale. Skipped when OpenCV is not importable (the op itself needs jax and numpy
   only, so this runs on an accelerator machine without OpenCV).
2. Ours, a batch of `--batch` pairs in one call: compilation (first call minus a steady call) apart from
   the steady pairs/s; the ratio ours / OpenCV (target on the 2-core CPU: >= 2x; on one H100/H200:
   >= 500 pairs/s).
3. The epsilon stopping rule against fixed counts: ours with epsilon = 0 and one outer iteration per warp
   (30 inner steps, fixed), time and EPE against OpenCV; `--maxima` adds every iteration the maxima allow
   (epsilon = 0, 10 outer iterations: about 25-30x slower). Also ours with bilinear warping, and, on the
   CPU, the vmapped formulation that accelerators run (`tvl1` solves the pairs one at a time on XLA:CPU,
   `arp_jax.xla_cpu.tvl1`): what that choice is worth here.
4. Agreement: mean end-point error (EPE) between our flow and OpenCV's, and the share of quantised codes
   (bound 20) within +-2.

Pass/fail targets are for the reader, not asserted: this is a measurement, never a test.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
from pathlib import Path
import platform
import time

import jax
import numpy as np

from arp_jax import flow
from arp_jax.flow import pyramid

TVL1 = importlib.import_module("arp_jax.flow.tvl1")  # the module (`flow.tvl1` is the op)
from arp_jax.video import read_frames

CLIPS = Path(__file__).resolve().parent.parent / "tests" / "data" / "clips"
SIZE = (240, 320)


def load_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
  """`count` consecutive pairs (uint8 RGB `[count, 240, 320, 3]` twice), taken in turn from each clip."""
  per_clip = []
  for path in sorted(CLIPS.glob("*/*.avi")):
    frames = read_frames(path)
    if frames.shape[1:3] != SIZE:
      frames = np.asarray(jax.image.resize(frames.astype(np.float32), (len(frames), *SIZE, 3), "linear"))
      frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    per_clip.append(frames)
  first, second = [], []
  for k in range(count):
    frames = per_clip[k % len(per_clip)]
    index = (k // len(per_clip) * 3) % (len(frames) - 1)
    first.append(frames[index])
    second.append(frames[index + 1])
  return np.stack(first), np.stack(second)


def time_ours(frame0, frame1, repeats: int, op=flow.tvl1, **params) -> tuple[float, float, np.ndarray]:
  """(first call seconds, steady seconds (median of `repeats`), flow) of one batched call of `op`."""
  start = time.perf_counter()
  result = np.asarray(jax.block_until_ready(op(frame0, frame1, **params)))
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(op(frame0, frame1, **params))
    times.append(time.perf_counter() - start)
  return first, float(np.median(times)), result


def vmapped_tvl1(frame0, frame1):
  """`flow.tvl1` with its defaults in the formulation accelerators run (every pair of the batch in each
  step, `jax.vmap`), forced on whatever platform this is: uint8 RGB `[B, H, W, 3]` twice -> `[B, H, W, 2]`."""
  params = TVL1._params()  # pylint: disable=protected-access
  grey0, grey1 = (pyramid.to_grey(jax.numpy.asarray(f), rgb=True) for f in (frame0, frame1))
  return _jit_vmapped(grey0, grey1, params)


@functools.partial(jax.jit, static_argnums=2)
def _jit_vmapped(grey0, grey1, params):
  pair_flow = functools.partial(TVL1._tvl1_pair, params=params)  # pylint: disable=protected-access
  return TVL1._vmapped(grey0, grey1, pair_flow=pair_flow)  # pylint: disable=protected-access


def opencv_flows(frame0, frame1):
  """{method: (pairs/s, flows or None)} for OpenCV's DualTVL1, Farneback and DIS; None without OpenCV."""
  try:
    import cv2  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  grey0 = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frame0]
  grey1 = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frame1]
  tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
  dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  methods = {
      "DualTVL1 (defaults)": lambda a, b: tvl1.calc(a, b, None),
      "Farneback": lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **flow.FARNEBACK_PARAMS),
      "DIS (medium)": lambda a, b: dis.calc(a, b, None),
  }
  results = {}
  for name, method in methods.items():
    method(grey0[0], grey1[0])  # warm-up
    start = time.perf_counter()
    flows = np.stack([method(a, b) for a, b in zip(grey0, grey1)])
    results[name] = (len(grey0) / (time.perf_counter() - start), flows)
  return results


def agreement(ours, reference) -> str:
  epe = np.sqrt(((ours - reference)**2).sum(-1))
  codes = np.abs(flow.quantize(ours).astype(int) - flow.quantize(reference).astype(int))
  return (f"EPE vs OpenCV mean {epe.mean():.3f} px (p50 {np.median(epe):.3f}, p99 {np.percentile(epe, 99):.3f}); "
          f"codes within +-2: {100 * (codes <= 2).mean():.2f} %")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="a tiny run: 4 pairs, 2 for OpenCV")
  parser.add_argument("--batch", type=int, default=32, help="pairs per call of ours (16-64)")
  parser.add_argument("--opencv-pairs", type=int, default=8, help="pairs timed for OpenCV")
  parser.add_argument("--repeats", type=int, default=2, help="steady calls timed for ours (median)")
  parser.add_argument("--maxima", action="store_true", help="also time every iteration (epsilon 0)")
  args = parser.parse_args()
  batch, opencv_pairs = (4, 2) if args.quick else (args.batch, args.opencv_pairs)
  print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, jax {jax.__version__} on "
        f"{jax.devices()[0].device_kind}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
  frame0, frame1 = load_pairs(batch)

  reference = opencv_flows(frame0[:opencv_pairs], frame1[:opencv_pairs])
  if reference is None:
    print("OpenCV not importable: OpenCV rows skipped")
  else:
    for name, (rate, _) in reference.items():
      print(f"OpenCV {name:22s} {rate:8.2f} pairs/s ({opencv_pairs} pairs, one at a time)")

  first, steady, ours = time_ours(frame0, frame1, args.repeats)
  rate = batch / steady
  print(f"ours tvl1 (defaults, batch {batch}) {rate:8.2f} pairs/s; first call {first:.1f} s, of which "
        f"compilation ~{first - steady:.1f} s")
  if reference is not None:
    opencv_rate, opencv_flow = reference["DualTVL1 (defaults)"]
    print(f"ratio ours / OpenCV DualTVL1: {rate / opencv_rate:.2f}x")
    print("ours (epsilon rule): " + agreement(ours[:opencv_pairs], opencv_flow))

  variants = {"fixed counts (epsilon 0, 1 outer x 30 inner per warp)": dict(epsilon=0.0, outer_iterations=1),
              "bilinear warping": dict(interpolation="bilinear")}
  if args.maxima:
    variants["maxima (epsilon 0, 10 outer x 30 inner per warp)"] = dict(epsilon=0.0)
  if jax.default_backend() == "cpu":
    variants["vmapped formulation (what accelerators run), forced on the CPU"] = dict(op=vmapped_tvl1)
  for name, params in variants.items():
    _, steady, result = time_ours(frame0, frame1, 1, **params)
    line = f"ours {name}: {batch / steady:8.2f} pairs/s"
    if reference is not None:
      line += "; " + agreement(result[:opencv_pairs], reference["DualTVL1 (defaults)"][1])
    print(line)


if __name__ == "__main__":
  main()
