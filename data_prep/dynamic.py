"""Precomputed summary images: dynamic images (and the baselines of Table 1), stored as 8-bit images.

The paper's "precomputed and cached" path: each video (or each window of tau frames, stride s) becomes one
image. A dynamic image `sum_t alpha_t I_t` (eq. 3; or exact rank pooling, "rp") is min-max scaled to
0..255 for storage exactly as `arp_jax.to_image` displays it (the paper's step iv, "scale the computed
dynamic images into [0, 255] range again"); the baselines of Table 1 keep their natural range (mean and
max image: that of the frames, 0..255; the motion history image: 0..1). The range is kept beside each
image (`low`, `high`), so `low + q / 255 * (high - low)` recovers the pooled values up to the 8-bit step.

The weights and the windows come from `arp_jax` (`arp_weights`, `window_indices`), so the convention is
the library's. ARP, the common case, runs here frame by frame with OpenCV, because a data-preparation
worker pools thousands of videos of different lengths and a compiled `arp_jax.pool` would recompile for
each length (the result equals `arp_jax.pool` to float32 rounding; tests/test_dynamic.py checks it). The
other methods call `arp_jax.pool` itself, through `arp_jax.pooling.bucketed.pool_bucketed` (the video padded
to a multiple of 64 frames, with its length, so that one compilation serves every video of up to that many
frames).
"""

from __future__ import annotations

import cv2
import numpy as np

import arp_jax
from arp_jax.pooling.bucketed import check_video, pool_bucketed, window_arguments

# The summary images of Table 1 (and Table 2's exact rank pooling): `arp_jax.pool` methods.
SUMMARIES = ("arp", "rp", "mean", "max", "mhi")
# The natural range of the baselines' values, stored as is (None: min-max per image, the dynamic images).
VALUE_RANGES = {"mean": (0.0, 255.0), "max": (0.0, 255.0), "mhi": (0.0, 1.0)}


def summary_images(frames, method: str = "arp", window: int | None = None, stride: int | None = None,
                   start: int = 0) -> np.ndarray:
  """Summary images of a video, whole or in windows: `dynamic_images` for any method of Table 1.

  Args:
    frames: `uint8 [T, H, W, C]`.
    method: one of `SUMMARIES`: "arp" (the dynamic image of eq. 3), "rp" (exact rank pooling in section
      5.3's order, `arp_jax.pooling.bucketed.RP_OPTIONS`: square root, time-varying mean, one regression
      per channel), "mean", "max" or "mhi" (the motion history image with `arp_jax.pool`'s defaults:
      motion where the mean over channels of |I_t - I_t-1| exceeds 32, remembered over the whole clip;
      one grey value per pixel, repeated over C).
    window, stride, start: as `dynamic_images`.

  Returns:
    `float32 [S, H, W, C]`, S = 1 for the whole video.

  Raises:
    ValueError: an unknown method, or the arguments `dynamic_images` refuses.
  """
  if method not in SUMMARIES:
    raise ValueError(f"unknown summary method {method!r}; expected one of {SUMMARIES}")
  if method == "arp":
    return dynamic_images(frames, window, stride, start)
  out = np.asarray(pool_bucketed(frames, method, window, stride, start))
  if window is None:
    return out[None]
  return out[:arp_jax.num_windows(len(frames), window, stride, start)]


def dynamic_images(frames, window: int | None = None, stride: int | None = None, start: int = 0):
  """Dynamic images of a video, whole or in windows.

  Args:
    frames: `uint8 [T, H, W, C]` (RGB frames, C = 3; quantised flow, C = 2; any C).
    window, stride, start: None pools the whole video into one image; otherwise windows of `window`
      frames every `stride` from the 0-based frame `start`, the last one padded by repeating the last
      frame (the reference tail rule, `arp_jax.window_indices`).

  Returns:
    `float32 [S, H, W, C]`, S = 1 for the whole video.

  Raises:
    ValueError: `frames` is not `uint8 [T, H, W, C]` with T >= 1, or the window arguments are invalid.
  """
  frames = check_video(frames)
  T = frames.shape[0]
  windows = window_arguments(window, stride, start)
  indices = arp_jax.window_indices(T, **windows) if windows else np.arange(T)[None]
  alpha = np.asarray(arp_jax.arp_weights(indices.shape[1]), np.float64)
  out = np.zeros((len(indices),) + frames.shape[1:], np.float32)
  for s, frame_ids in enumerate(indices):
    for weight, t in zip(alpha, frame_ids):
      # out[s] += weight * frame in float32, in place, without a float copy of the uint8 frame.
      cv2.addWeighted(frames[t], float(weight), out[s], 1.0, 0.0, dst=out[s], dtype=cv2.CV_32F)
  return out


def to_uint8(images, value_range: tuple[float, float] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each image of `float32 [S, H, W, C]` scaled to uint8: min-max as `arp_jax.to_image` does, or from a
  fixed `value_range` (low, high) (values outside it are clipped).

  Returns:
    (`uint8 [S, H, W, C]`, low `float32 [S]`, high `float32 [S]`): image s maps low -> 0, high -> 255,
    rounded half up; a constant image gives zeros.
  """
  images = np.asarray(images, np.float32)
  low = np.empty(len(images), np.float32)
  high = np.empty(len(images), np.float32)
  out = np.empty(images.shape, np.uint8)
  for s, image in enumerate(images):
    if value_range is None:
      # One pass for both extremes (cv2.minMaxLoc wants one channel: view [H, W, C] as [H, W * C]).
      low[s], high[s], _, _ = cv2.minMaxLoc(image.reshape(image.shape[0], -1))
    else:
      low[s], high[s] = value_range
      image = np.clip(image, low[s], high[s])
    span = high[s] - low[s]
    scale = np.float32(255.0) / span if span > 0 else np.float32(0.0)
    # (x - low) * scale + 0.5 >= 0.5, so truncating to uint8 rounds half up, as `to_image` does; the
    # largest value is 255.5 up to float rounding, which truncates to 255.
    scaled = np.subtract(image, low[s])
    scaled *= scale
    scaled += np.float32(0.5)
    out[s] = scaled
  return out, low, high
