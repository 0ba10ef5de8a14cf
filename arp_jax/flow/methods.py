"""The flow methods by name: `compute_flow(frames, method)` and what each method's data is recorded as.

"tvl1" is the paper's flow computed by our JAX op (`tvl1`, batched by `batching.flow_of_videos`);
"tvl1_opencv" is OpenCV's DualTVL1, "farneback" and "dis" OpenCV's other two (`opencv.py`).
"""

from __future__ import annotations

import numpy as np

from arp_jax.flow import batching, opencv

FLOW_METHODS = ("tvl1", "tvl1_opencv", "farneback", "dis")

# What made a flow, as prepared data records it: the cache folder of `data_prep` (`ProcessOptions.tag`) and
# the datasets' metadata ("flow"). Until the JAX op took the name, "tvl1" meant OpenCV's DualTVL1: OpenCV's
# keeps that identity, so what it prepared under the old name stays valid, and the JAX op has its own, so
# that data of one is never read as the other's (a dataset of the other is refused, a cache of it unread).
# Give a method a new identity when its results change.
FLOW_IDENTITIES = {"tvl1": "tvl1-jax", "tvl1_opencv": "tvl1", "farneback": "farneback", "dis": "dis"}


def check_method(method: str) -> str:
  """`method`, or ValueError naming the four unless it is one of `FLOW_METHODS`."""
  if method not in FLOW_METHODS:
    raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
  return method


def compute_flow(frames, method: str = "tvl1") -> np.ndarray:
  """Dense optical flow between consecutive frames.

  Args:
    frames: `uint8 [T, H, W, 3]` RGB (or `[T, H, W]` grey), T >= 2; flow is computed on grey frames
      (RGB converted with the BT.601 weights of OpenCV's COLOR_RGB2GRAY).
    method: "tvl1" (TV-L1, the paper's choice, by the JAX op `arp_jax.flow.tvl1` on the default JAX
      backend), "tvl1_opencv" (OpenCV's DualTVL1, opencv-contrib), "farneback" (`FARNEBACK_PARAMS`) or
      "dis" (DIS, medium preset).

  Returns:
    `float32 [T-1, H, W, 2]`: flow k, components (u, v) in pixels, maps frame k to frame k+1, i.e.
    frame_k(y, x) ~ frame_{k+1}(y + v, x + u).

  Raises:
    ValueError: fewer than 2 frames, wrong rank, channel count or dtype, an unknown method, or (tvl1)
      frames too small for its pyramid.
  """
  check_method(method)
  frames = batching.check_frames(frames)
  if frames.shape[0] < 2:
    raise ValueError(f"frames holds {frames.shape[0]} frame(s); expected at least 2 to compute flow between")
  if method != "tvl1":
    return opencv.opencv_flow(frames, method)
  # One video through the build's batching; a batch no larger than the video wastes no padded pairs.
  batch_pairs = min(batching.DEFAULT_BATCH_PAIRS, frames.shape[0] - 1)
  [(_, flow)] = batching.flow_of_videos([(None, frames)], batch_pairs=batch_pairs)
  if isinstance(flow, Exception):
    raise flow
  return flow
