"""Quantised flow on disk in the TSN/denseflow layout: one grey JPEG per component and pair of frames.

Files are named `x_00001.jpg` (u, horizontal, positive to the right) and `y_00001.jpg` (v, vertical,
positive downwards), numbered from 1 like the frame images `img_00001.jpg`; flow k goes from frame k to
frame k+1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from arp_jax.jpeg import encode_jpeg
from arp_jax.video import natural_key, read_image


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
      # Quality 95, the denseflow/TSN default: flow JPEGs are smooth, so a round trip moves codes little.
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
