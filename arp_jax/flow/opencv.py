"""Dense optical flow between consecutive frames by OpenCV: DualTVL1, Farneback and DIS.

OpenCV is imported when a flow is computed, so that `import arp_jax.flow` stays light. Call it through
`arp_jax.flow.compute_flow`, which checks the frames.
"""

from __future__ import annotations

import numpy as np

OPENCV_METHODS = ("tvl1_opencv", "farneback", "dis")

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


def _flow_function(method: str):
  """A function `(grey_a, grey_b) -> float32 [H, W, 2]` for `method`; the OpenCV object is built once here."""
  import cv2  # pylint: disable=import-outside-toplevel
  if method == "tvl1_opencv":
    # OpenCV's defaults (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01) are those of
    # Zach et al. / Sanchez et al. and what denseflow uses.
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)
  if method == "farneback":
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS)
  dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  return lambda a, b: dis.calc(a, b, None)


def opencv_flow(frames: np.ndarray, method: str) -> np.ndarray:
  """`float32 [T-1, H, W, 2]` flow of checked `uint8 [T, H, W, 3]` RGB (or `[T, H, W]` grey) frames, T >= 2,
  by the OpenCV method `method` (one of `OPENCV_METHODS`), one pair at a time."""
  import cv2  # pylint: disable=import-outside-toplevel
  if method not in OPENCV_METHODS:
    raise ValueError(f"{method!r} is not an OpenCV flow method; expected one of {OPENCV_METHODS}")
  flow_pair = _flow_function(method)
  if frames.ndim == 4:
    # OpenCV's RGB->grey uses the BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as denseflow does (BGR).
    frames = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])
  grey = np.ascontiguousarray(frames)
  flows = [flow_pair(grey[k], grey[k + 1]) for k in range(grey.shape[0] - 1)]
  return np.stack(flows).astype(np.float32, copy=False)
