"""Precomputed dynamic images: approximate rank pooling of a video's frames, stored as 8-bit images.

The paper's "precomputed and cached" path: each video (or each window of tau frames, stride s) becomes one
dynamic image `sum_t alpha_t I_t` (eq. 3), min-max scaled to 0..255 for storage exactly as `arp_jax.to_image`
displays it. The scale is kept beside each image (`low`, `high`), so `low + q / 255 * (high - low)`
recovers the dynamic image up to the 8-bit step.

The weights and the windows come from `arp_jax` (`arp_weights`, `window_indices`), so the convention is
the library's; only the weighted sum runs here, frame by frame with OpenCV, because a data-preparation
worker pools thousands of videos of different lengths and a compiled `arp_jax.pool` would recompile for
each length (the result equals `arp_jax.pool` to float32 rounding; tests/test_dynamic.py checks it).
"""

from __future__ import annotations

import cv2
import numpy as np

import arp_jax


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
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] == 0:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     "[T, H, W, C] with T >= 1")
  T = frames.shape[0]
  if window is None:
    if stride is not None or start != 0:
      raise ValueError("stride and start need window=...; without a window the whole video is pooled")
    indices = np.arange(T)[None]
  else:
    indices = arp_jax.window_indices(T, window, stride, start)
  alpha = np.asarray(arp_jax.arp_weights(indices.shape[1]), np.float64)
  out = np.zeros((len(indices),) + frames.shape[1:], np.float32)
  for s, frame_ids in enumerate(indices):
    for weight, t in zip(alpha, frame_ids):
      # out[s] += weight * frame in float32, in place, without a float copy of the uint8 frame.
      cv2.addWeighted(frames[t], float(weight), out[s], 1.0, 0.0, dst=out[s], dtype=cv2.CV_32F)
  return out


def to_uint8(images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each image of `float32 [S, H, W, C]` min-max scaled to uint8 as `arp_jax.to_image` does.

  Returns:
    (`uint8 [S, H, W, C]`, low `float32 [S]`, high `float32 [S]`): image s maps low -> 0, high -> 255,
    rounded half up; a constant image gives zeros.
  """
  images = np.asarray(images, np.float32)
  low = np.empty(len(images), np.float32)
  high = np.empty(len(images), np.float32)
  out = np.empty(images.shape, np.uint8)
  for s, image in enumerate(images):
    # One pass for both extremes (cv2.minMaxLoc wants one channel: view [H, W, C] as [H, W * C]).
    low[s], high[s], _, _ = cv2.minMaxLoc(image.reshape(image.shape[0], -1))
    span = high[s] - low[s]
    scale = np.float32(255.0) / span if span > 0 else np.float32(0.0)
    # (x - low) * scale + 0.5 >= 0.5, so truncating to uint8 rounds half up, as `to_image` does; the
    # largest value is 255.5 up to float rounding, which truncates to 255.
    scaled = np.subtract(image, low[s])
    scaled *= scale
    scaled += np.float32(0.5)
    out[s] = scaled
  return out, low, high
