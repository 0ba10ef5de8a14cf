"""Dense optical flow between consecutive frames by OpenCV: TV-L1 (the paper's), Farneback and DIS.

OpenCV is imported when a flow is computed, so that `import arp_jax.flow` stays light.
"""

from __future__ import annotations

import numpy as np

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


def _grey_frames(frames) -> np.ndarray:
  """`uint8 [T, H, W, 3]` RGB (or `[T, H, W]` grey) frames as `uint8 [T, H, W]` grey, T >= 2."""
  import cv2  # pylint: disable=import-outside-toplevel
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
  if method not in FLOW_METHODS:
    raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
  import cv2  # pylint: disable=import-outside-toplevel
  if method == "tvl1":
    # OpenCV's defaults (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01) are those of
    # Zach et al. / Sanchez et al. and what denseflow uses.
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)
  if method == "farneback":
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS)
  dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  return lambda a, b: dis.calc(a, b, None)


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
