"""Optical flow between consecutive frames, its 8-bit quantisation, and the TSN/denseflow JPEG layout.

The paper's flow streams use TV-L1 flow (Zach, Pock, Bischof 2007) with each displacement clipped to
+-20 px and rescaled linearly to 0..255, stored as one grey JPEG per component:

  q = round((v + bound) * 255 / (2 * bound)),   v = q * 2 * bound / 255 - bound

so zero motion maps to 127.5, rounded up to 128 here. Files follow the TSN/denseflow naming
`x_00001.jpg` (u, horizontal, positive to the right) and `y_00001.jpg` (v, vertical, positive downwards),
numbered from 1 like the frame images `img_00001.jpg`; flow k goes from frame k to frame k+1.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from data_prep.jpeg import encode_jpeg
from data_prep.video import natural_key, read_image

# The paper's clipping bound in pixels (REFERENCE.md, "Data").
DEFAULT_BOUND = 20.0

FLOW_METHODS = ("tvl1", "farneback", "dis")

# Farneback parameters (cv2.calcOpticalFlowFarneback, positional after `flow`): the values of OpenCV's own
# Farneback sample, a common choice for 320x240 video.
FARNEBACK_PARAMS = dict(
    pyr_scale=0.5,  # each pyramid level halves the image
    levels=3,  # pyramid levels including the full image: handles motions of a few tens of pixels
    winsize=15,  # averaging window: larger is smoother and more robust to noise, blurs motion edges
    iterations=3,  # iterations per pyramid level
    poly_n=5,  # neighbourhood of the per-pixel polynomial expansion
    poly_sigma=1.2,  # Gaussian smoothing for poly_n = 5 (OpenCV's recommendation)
    flags=0,
)

def check_bound(bound) -> float:
  """`bound` as a float; ValueError unless it is a positive, finite number of pixels."""
  bound = float(bound)
  if not np.isfinite(bound) or bound <= 0:
    raise ValueError(f"bound is {bound}; expected a positive, finite displacement in pixels (e.g. 20.0)")
  return bound


def quantize(flow, bound: float = DEFAULT_BOUND) -> np.ndarray:
  """Clips displacements to +-`bound` pixels and maps them linearly to 0..255.

  `q = floor((clip(v, -bound, bound) + bound) * 255 / (2 * bound) + 0.5)`: rounding half UP (not numpy's
  round-half-to-even), so zero motion (127.5) becomes 128 and the map is monotonic without a parity
  pattern. `dequantize(quantize(v))` is within `bound / 255` of `v` for |v| <= bound.

  Args:
    flow: float array of any shape, e.g. `[T-1, H, W, 2]` displacements (u, v) in pixels.
    bound: clipping bound in pixels, > 0.

  Returns:
    `uint8`, same shape as `flow`.

  Raises:
    ValueError: `flow` is not a real floating-point array, or `bound` is not positive.
  """
  flow = np.asarray(flow)
  if not np.issubdtype(flow.dtype, np.floating):
    raise ValueError(f"flow has dtype {flow.dtype}; expected floating-point displacements in pixels")
  bound = check_bound(bound)
  scaled = (np.clip(flow.astype(np.float64), -bound, bound) + bound) * (255.0 / (2.0 * bound))
  # NaN has no meaningful code; clip keeps it NaN and the cast would be undefined, so map it to zero motion.
  scaled = np.where(np.isnan(scaled), 127.5, scaled)
  return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def dequantize(q, bound: float = DEFAULT_BOUND) -> np.ndarray:
  """The inverse map of `quantize`: `q * 2 * bound / 255 - bound`, `float32` of the same shape as `q`.

  Raises:
    ValueError: `q` is not `uint8`, or `bound` is not positive.
  """
  q = np.asarray(q)
  if q.dtype != np.uint8:
    raise ValueError(f"q has dtype {q.dtype}; expected uint8 codes from quantize or read_flow_jpegs")
  bound = check_bound(bound)
  return (q.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)).astype(np.float32)


def _grey_frames(frames) -> np.ndarray:
  """`uint8 [T, H, W, 3]` RGB (or `[T, H, W]` grey) frames as `uint8 [T, H, W]` grey, T >= 2."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    raise ValueError(f"frames has dtype {frames.dtype}; expected uint8 RGB frames [T, H, W, 3]")
  if frames.ndim == 4 and frames.shape[-1] == 3:
    # OpenCV's RGB->grey uses the BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as denseflow does (BGR).
    grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])
  elif frames.ndim == 3:
    grey = frames
  else:
    raise ValueError(
        f"frames has shape {frames.shape}; expected RGB frames [T, H, W, 3] or grey frames [T, H, W]")
  if grey.shape[0] < 2:
    raise ValueError(f"frames holds {grey.shape[0]} frame(s); expected at least 2 to compute flow between")
  return np.ascontiguousarray(grey)


def _flow_function(method: str):
  """A function `(grey_a, grey_b) -> float32 [H, W, 2]` for `method`; the OpenCV object is built once here."""
  if method == "tvl1":
    # OpenCV's defaults (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01) are those of
    # Zach et al. / Sanchez et al. and what denseflow uses.
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)
  if method == "farneback":
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS)
  if method == "dis":
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return lambda a, b: dis.calc(a, b, None)
  raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")


def compute_flow(frames, method: str = "tvl1") -> np.ndarray:
  """Dense optical flow between consecutive frames.

  Args:
    frames: `uint8 [T, H, W, 3]` RGB (or `[T, H, W]` grey), T >= 2; flow is computed on grey frames.
    method: "tvl1" (TV-L1, the paper's choice, opencv-contrib), "farneback" (`FARNEBACK_PARAMS`) or
      "dis" (DIS, medium preset).

  Returns:
    `float32 [T-1, H, W, 2]`: flow k, components (u, v) in pixels, maps frame k to frame k+1, i.e.
    frame_k(y, x) ~ frame_{k+1}(y + v, x + u).

  Raises:
    ValueError: fewer than 2 frames, wrong rank, channel count or dtype, or an unknown method.
  """
  flow_pair = _flow_function(method)
  grey = _grey_frames(frames)
  flows = [flow_pair(grey[k], grey[k + 1]) for k in range(grey.shape[0] - 1)]
  return np.stack(flows).astype(np.float32, copy=False)


def write_flow_jpegs(flow_q, directory, start: int = 1) -> list[Path]:
  """Writes quantised flow as grey JPEGs `x_{k:05d}.jpg` (u) and `y_{k:05d}.jpg` (v), k = start, start+1, ...

  Args:
    flow_q: `uint8 [K, H, W, 2]` from `quantize`.
    directory: output folder, created if missing; existing files of the same names are overwritten.
    start: number of the first pair (1 matches the TSN/denseflow layout).

  Returns:
    the written paths, x then y for each pair.

  Raises:
    ValueError: `flow_q` is not `uint8 [K, H, W, 2]`, or `start` is negative.
  """
  flow_q = np.asarray(flow_q)
  if flow_q.dtype != np.uint8 or flow_q.ndim != 4 or flow_q.shape[-1] != 2:
    raise ValueError(
        f"flow_q has shape {flow_q.shape} and dtype {flow_q.dtype}; expected uint8 [K, H, W, 2] "
        "(quantize the float flow first)")
  if start < 0:
    raise ValueError(f"start is {start}; expected a non-negative file number (1 for the TSN layout)")
  directory = Path(os.fspath(directory))
  directory.mkdir(parents=True, exist_ok=True)
  paths = []
  for k, pair in enumerate(flow_q, start=start):
    for component, prefix in enumerate("xy"):
      path = directory / f"{prefix}_{k:05d}.jpg"
      # Quality 95 (the denseflow/TSN default): flow JPEGs are smooth, so a round trip moves ~1 grey level.
      path.write_bytes(encode_jpeg(pair[..., component]))
      paths.append(path)
  return paths


def read_flow_jpegs(directory) -> np.ndarray:
  """Reads `x_*.jpg` / `y_*.jpg` pairs of a folder in natural order of their numbers.

  Other files (e.g. the frames `img_*.jpg` that denseflow writes alongside) are ignored.

  Args:
    directory: a folder in the TSN/denseflow layout.

  Returns:
    `uint8 [K, H, W, 2]`, channel 0 from x_ (u), channel 1 from y_ (v); dequantize to get pixels.

  Raises:
    FileNotFoundError: `directory` does not exist.
    ValueError: it is not a folder, holds no pairs, an x_ file has no y_ partner (or the reverse), an
      image cannot be read, or sizes differ (the message names the file).
  """
  directory = Path(os.fspath(directory))
  if not directory.exists():
    raise FileNotFoundError(f"no such flow folder: {str(directory)!r}")
  if not directory.is_dir():
    raise ValueError(f"{str(directory)!r} is not a folder; expected a folder of x_*.jpg / y_*.jpg files")
  names = {p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg")}
  xs = {name[2:]: name for name in names if name.startswith("x_")}
  ys = {name[2:]: name for name in names if name.startswith("y_")}
  for suffix in sorted(xs.keys() ^ ys.keys(), key=natural_key):
    present, missing = (xs[suffix], "y_" + suffix) if suffix in xs else (ys[suffix], "x_" + suffix)
    raise ValueError(
        f"{str(directory / present)!r} has no partner {missing!r}; expected x_/y_ files in pairs")
  if not xs:
    raise ValueError(f"folder {str(directory)!r} holds no flow images; expected x_00001.jpg, y_00001.jpg, ...")
  pairs = []
  for suffix in sorted(xs, key=natural_key):
    x_path, y_path = directory / xs[suffix], directory / ys[suffix]
    u, v = read_image(x_path, "L"), read_image(y_path, "L")
    if u.shape != v.shape:
      raise ValueError(
          f"{str(y_path)!r} has size {v.shape} (H, W) but {str(x_path)!r} has {u.shape}; "
          "expected both components of a pair to have the same size")
    if pairs and u.shape != pairs[0].shape[:2]:
      raise ValueError(
          f"{str(x_path)!r} has size {u.shape} (H, W) but the first pair has {pairs[0].shape[:2]}; "
          "expected every flow image of a folder to have the same size")
    pairs.append(np.stack([u, v], axis=-1))
  return np.stack(pairs)
