"""Windows for multiple dynamic images (MDI): which frames each of the S windows of a video pools.

Window k (0-based) starts at frame `start + k * stride` and spans `window` frames. The reference's tail
rule ("pad"): windows continue until one reaches the last frame (or would start past it), and that last
window, if it runs past the end, is padded by repeating the last frame; so only the last window can be
short, and with stride <= window every frame is covered. "drop" keeps only the windows that fit entirely.
`arp_jax.pool` pools a padded window that holds a single real frame as that one frame (the T = 1 rule).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import checks

TAILS = ("pad", "drop")


def check_window_args(window: int, stride: int | None, start: int, tail: str) -> int:
  """Validates the window arguments; returns the stride (default: `window`, non-overlapping windows)."""
  for name, value, low in (("window", window, 1), ("stride", stride, 1), ("start", start, 0)):
    if value is None and name == "stride":
      continue
    if not checks.is_int(value):
      raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
      raise ValueError(f"{name}={value}; expected an int >= {low}")
  if tail not in TAILS:
    raise ValueError(f"unknown tail rule {tail!r}; expected one of {TAILS}")
  return int(window if stride is None else stride)


def count_windows(length, window: int, stride: int, start: int, tail: str):
  """Number of windows of a video of `length` frames (int or int array; 0 where none fits)."""
  xp = _array_module(length)
  span = length - start  # frames from the first window's start to the end
  if tail == "pad":
    # Smallest K with start + K * stride + window >= length: windows 0..K reach the last frame. A stride
    # longer than the window skips frames, and then no window may start past the end either.
    count = xp.minimum(-(-xp.maximum(span - window, 0) // stride) + 1, -(-span // stride))
    return xp.where(span > 0, count, 0)
  return xp.where(span >= window, (span - window) // stride + 1, 0)


def _array_module(length):
  """NumPy for lengths known now (so counts stay static under jit), jax.numpy for traced ones."""
  return np if isinstance(length, (int, np.integer, np.ndarray)) else jnp


def num_windows(T: int, window: int, stride: int | None = None, start: int = 0, tail: str = "pad") -> int:
  """Number of windows S that `pool(..., window=window, stride=stride)` makes from T frames.

  Raises ValueError when no window fits: `start` at or past the end, or, with tail="drop", a window
  longer than the frames from `start` on.
  """
  stride = check_window_args(window, stride, start, tail)
  if not checks.is_int(T) or T < 1:
    raise ValueError(f"T={T!r}; expected the number of frames, an int >= 1")
  if start >= T:
    raise ValueError(f"start={start} is past the last frame of a {T}-frame video")
  if tail == "drop" and T - start < window:
    raise ValueError(
        f"window={window} is longer than the {T - start} frames from start={start} of a {T}-frame "
        "video, and tail='drop' keeps only full windows; use a shorter window or tail='pad'")
  return int(count_windows(T, window, stride, start, tail))


def frame_indices(length, num: int, window: int, stride: int, start: int):
  """0-based frame index of every frame of every window, the tail padded by repeating the last frame.

  Args:
    length: int or int array [...], the video lengths (>= 1).
    num: static number of windows to index (windows past a video's own count are clipped copies of its
      last frame; callers mask them).

  Returns:
    int32 [..., num, window].
  """
  xp = _array_module(length)
  offsets = start + stride * np.arange(num)[:, None] + np.arange(window)[None, :]
  last = xp.asarray(length)[..., None, None] - 1
  return xp.minimum(offsets, last).astype(xp.int32)


def window_indices(T: int, window: int, stride: int | None = None, start: int = 0,
                   tail: str = "pad") -> np.ndarray:
  """int32 [S, window]: the frames each window of a T-frame video pools (see the module docstring)."""
  count = num_windows(T, window, stride, start, tail)
  stride = check_window_args(window, stride, start, tail)
  return np.asarray(frame_indices(T, count, window, stride, start))


def check_lengths_have_windows(lengths, window: int, stride: int, start: int, tail: str) -> None:
  """ValueError naming the first video of int [B] `lengths` that has no window (only when concrete)."""
  if not checks.is_concrete(lengths):
    return
  for b, length in enumerate(np.asarray(lengths)):
    if count_windows(int(length), window, stride, start, tail) == 0:
      try:
        num_windows(int(length), window, stride, start, tail)
      except ValueError as error:
        raise ValueError(f"video {b} (length {length}): {error}") from None


def gather_windows(x, window: int, stride: int | None = None, start: int = 0, tail: str = "pad",
                   lengths=None):
  """The frames of every window of every video, for operators that need them side by side.

  Args:
    x: [B, T, ...] videos (time at axis 1).
    window, stride, start, tail: as in `num_windows`.
    lengths: optional int [B]: video b is x[b, :lengths[b]], the rest padding.

  Returns:
    (windows [B, S, window, ...], real) with S = num_windows(T, ...). `real` is None without `lengths`,
    else bool [B, S], False for windows past a video's own count (their frames are copies of its last
    frame).
  """
  stride = check_window_args(window, stride, start, tail)
  T = x.shape[1]
  count = int(count_windows(T, window, stride, start, tail))
  if count == 0:
    num_windows(T, window, stride, start, tail)  # raises the explanatory ValueError
  if lengths is not None:
    check_lengths_have_windows(lengths, window, stride, start, tail)
    lengths = jnp.asarray(lengths)
  if stride == window and start + count * window <= T:
    windows = _tiled_windows(x, count, window, start, lengths)
  else:
    windows = _gathered_windows(x, count, window, stride, start, lengths)
  if lengths is None:
    return windows, None
  real = jnp.arange(count) < count_windows(lengths[:, None], window, stride, start, tail)
  return windows, real


def _gathered_windows(x, count: int, window: int, stride: int, start: int, lengths):
  """`gather_windows`' windows by a gather of their `frame_indices` (each video's own with `lengths`)."""
  if lengths is None:
    return jnp.take(x, frame_indices(x.shape[1], count, window, stride, start), axis=1)
  indices = frame_indices(lengths, count, window, stride, start)  # [B, S, window]
  return jax.vmap(lambda video, index: jnp.take(video, index, axis=0))(x, indices)


def _tiled_windows(x, count: int, window: int, start: int, lengths):
  """`gather_windows`' windows when they tile x[:, start:start + count * window] (stride = window, no
  tail padding): a reshape, with each frame past a video's length replaced by its last frame (what
  `frame_indices` picks there). No gather: XLA:CPU lowers the general case's to a transposed copy of the
  whole input, which costs more than pooling it (the networks' windows, [B * S, tau] clips, are tiled;
  benchmarks/windows_bench.py)."""
  B = x.shape[0]
  windows = x[:, start:start + count * window].reshape((B, count, window) + x.shape[2:])
  if lengths is None:
    return windows
  frame_axes = (1,) * (x.ndim - 2)
  last = jnp.take_along_axis(x, (lengths - 1).astype(jnp.int32).reshape((B, 1) + frame_axes), axis=1)
  offsets = start + window * np.arange(count)[:, None] + np.arange(window)[None, :]  # [S, window]
  past = offsets[None] >= lengths[:, None, None]  # [B, S, window]
  return jnp.where(past.reshape(past.shape + frame_axes), last[:, None], windows)
