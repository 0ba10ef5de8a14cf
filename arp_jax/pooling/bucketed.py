"""`pool` of videos of many lengths with few compilations: each video padded to a multiple of `BUCKET` frames.

A pass over a dataset pools thousands of videos of different lengths; a compiled `pool` would recompile
for each length. Padded with zeros to the next multiple of `BUCKET` frames and given its length
(`pool(..., lengths=...)` ignores the padding), every video of up to that many frames shares one
compilation. Used by the precomputed summary images (`data_prep.dynamic`) and the ranking study.
"""

from __future__ import annotations

import numpy as np

from arp_jax.pooling.temporal import pool

BUCKET = 64
# C of exact rank pooling for dynamic images (REFERENCE.md: 10 in the dynamic-image work, 1 in VideoDarwin).
RP_C = 10.0
# Exact rank pooling of the "rp" images (`pool`'s rp_options): `rank_pool_pixels` in section 5.3's order
# (square root of the pixels, time-varying mean, one hyperplane per channel, each frame's channel vector
# L2-normalised); order="videodarwin" gives VideoDarwin's (one joint hyperplane).
RP_OPTIONS = dict(C=RP_C, order="paper")


def check_video(frames) -> np.ndarray:
  """`frames` as a NumPy array; ValueError unless it is `uint8 [T, H, W, C]` with T >= 1."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] == 0:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     "[T, H, W, C] with T >= 1")
  return frames


def window_arguments(window: int | None, stride: int | None, start: int) -> dict:
  """`pool`'s window arguments; {} pools the whole video (and then stride and start must be unset)."""
  if window is None:
    if stride is not None or start != 0:
      raise ValueError("stride and start need window=...; without a window the whole video is pooled")
    return {}
  return dict(window=window, stride=stride, start=start)


def pad_to_bucket(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """frames [T, ...] -> (the video padded with zeros to a multiple of `BUCKET` frames as a batch of one,
  [1, T', ...], and its length [1] = [T]): what `pool(..., axis=1, lengths=...)` takes."""
  T = frames.shape[0]
  padded = np.zeros((1, -(-T // BUCKET) * BUCKET) + frames.shape[1:], frames.dtype)
  padded[0, :T] = frames
  return padded, np.array([T])


def pool_bucketed(frames, method: str, window: int | None = None, stride: int | None = None,
                  start: int = 0):
  """`pool(frames, method, ...)` of one video, computed on the video padded to a multiple of `BUCKET`
  frames with its length given.

  Args:
    frames: `uint8 [T, H, W, C]`.
    method: a `pool` method; "rp" pools with `RP_OPTIONS` (section 5.3's dynamic image).
    window, stride, start: None pools the whole video; otherwise `pool`'s windows.

  Returns:
    float32 `jax.Array` [H, W, C], or with windows [S', H, W, C] where the first
    `num_windows(T, window, stride, start)` are the video's and the rest zeros.
  """
  windows = window_arguments(window, stride, start)
  padded, lengths = pad_to_bucket(check_video(frames))
  options = dict(rp_options=RP_OPTIONS) if method == "rp" else {}
  return pool(padded, method, axis=1, lengths=lengths, **windows, **options)[0]
