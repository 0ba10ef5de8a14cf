"""`pool`: one entry point for the paper's temporal pooling operators.

Every method is a fold over the frames of a clip, `acc = step(acc, t, frame_t)`. Whole videos, windows
(MDI), padded batches (`lengths`) and packed videos (`segment_ids`) differ only in how frame t of each clip
is fetched and how long each clip is, so one fold serves them all. XLA fuses the fold, the dtype conversion
and the window gather into a single pass over the frames: the frames are read once, in their own dtype
(uint8 frames cost a quarter of the memory traffic of float32 ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import math

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from arp_jax import checks
from arp_jax.pooling import arp
from arp_jax.pooling.rank_pooling import rank_pool, rank_pool_pixels
from arp_jax.pooling import windows as windows_lib

METHODS = ("arp", "arp_linear", "rp", "mean", "max", "mhi")
NAN_POLICIES = ("propagate", "raise")

# `segment_ids` are turned into a padded batch [G, max_length, ...]; one bigger than both of these (bytes,
# and times the packed frames) comes from sparse ids and is refused before it is allocated.
_MAX_PADDED_BYTES = 1 << 30
_MAX_PADDING_RATIO = 64

# Clips up to this many frames are folded by a fully unrolled expression, which XLA fuses into one loop
# over the pixels; longer clips run a `fori_loop` over blocks of `_BLOCK` unrolled frames, so the program
# stays small for whole videos of thousands of frames.
_UNROLL = 64
_BLOCK = 16


def pool(frames, method: str = "arp", *, axis: int = 0, window: int | None = None,
         stride: int | None = None, start: int = 0, tail: str = "pad", lengths=None,
         segment_ids=None, num_segments: int | None = None, max_length: int | None = None,
         nan_policy: str = "propagate", mhi_threshold: float = 32.0,
         mhi_duration: float | None = None, mhi_channel_axis: int | None = -1,
         rp_options: Mapping | None = None) -> jax.Array:
  """Pools the time axis of `frames` into one image (or feature map, or vector) per clip.

  Args:
    frames: [..., T, ...] with time at `axis`: [T, H, W, C] frames, [B, T, H, W, C] batches (axis=1),
      [T, h, w, c] feature maps, [T, D] vectors. Any real dtype (uint8, float16, bfloat16, float32, ...);
      accumulated in float32.
    method: "arp" (approximate rank pooling, eq. 3: the dynamic image), "arp_linear" (eq. 5), "rp" (exact
      rank pooling, `arp_jax.rank_pool` with `rp_options`, over the flattened frame), "mean", "max" or
      "mhi" (motion history image, below).
    axis: the time axis. Axes before it are batch axes (one video each), axes after it are the frame.
    window, stride, start, tail: multiple dynamic images. The time axis becomes a window axis of length
      S = `num_windows(T, window, stride, start, tail)`: window k pools frames
      `start + k * stride ... + window - 1` (0-based `start`; the reference starts at frame 3, start=2,
      in training and at frame 1, start=0, at test). stride defaults to `window`. tail="pad" (the
      reference) pads the last window by repeating the last frame; "drop" keeps only full windows. A
      window holding a single real frame (it starts at the last frame) is pooled as a one-frame clip, so
      for ARP it is that frame (the T = 1 rule) rather than the float32 residue of weights summing to 0.
    lengths: int [...] with the shape of the batch axes (frames.shape[:axis]): video b is
      `frames[b, :lengths[b]]` and the rest is padding, ignored even if it holds NaN. With windows, the
      window axis has the length S of the longest possible video, and windows past a video's own count
      are zero (`num_windows(lengths[b], ...)` tells how many are real). Concrete lengths outside 1..T
      are a ValueError; traced ones (inside jit) cannot be checked and are clipped to 0..T, as
      `rank_pool` does (a length of 0 pools to zeros).
    segment_ids: int [T], the video of each frame along `axis` of packed frames (like
      `jax.ops.segment_sum`); frames of a video keep their order of appearance. The time axis becomes a
      segment axis of length `num_segments` (default: max id + 1), followed by the window axis when
      windowed. Under `jax.jit` pass `num_segments` and `max_length` (the longest video) as ints. A
      segment without frames gives zeros. Concrete ids outside 0..num_segments - 1 and videos longer
      than `max_length` are a ValueError; traced ones cannot be checked: frames with such ids are
      dropped (as `jax.ops.segment_sum` drops them) and a video keeps its first `max_length` frames. A
      segment count that would need a padded copy over 1 GiB and 64 times the packed frames (sparse
      ids, e.g. 10**7 for a few videos) is a ValueError before anything is allocated: renumber the ids
      densely (`np.unique(ids, return_inverse=True)`).
    nan_policy: "propagate" (default): NaN or inf in a frame that a method reads reaches the output
      (arp, arp_linear, mean: every element where it occurs; max: that element; mhi: the pixel, across
      channels; rp: the whole clip); padding outside `lengths` is never read. "raise": a ValueError
      names the first frame holding NaN or inf (needs concrete frames, so not inside jit).
    mhi_threshold: motion history image (Bobick and Davis): a pixel moves at frame t when the mean over
      `mhi_channel_axis` of |I_t - I_{t-1}| exceeds this threshold (in units of the input: 32 is for
      0..255 frames).
    mhi_duration: frames over which motion fades out (decay 1 per frame); default the clip length, so the
      whole clip is remembered. The MHI value is `max(0, duration - (T - t)) / duration` for the last
      frame t at which the pixel moved (1-based), 0 where it never moved: in [0, 1], brighter = later.
    mhi_channel_axis: the axis of `frames` (after `axis`) averaged to decide motion; the MHI is scalar per
      pixel and repeated along it so that every method returns the same shape. None: every element alone.
    rp_options: keyword arguments for `arp_jax.rank_pool` (C, epsilon, objective, ...) with method="rp",
      which ranks the flattened frames in VideoDarwin's order (for feature maps and vectors). With an
      `order` ("paper": section 5.3's dynamic image, one hyperplane per colour channel of the square roots;
      or "videodarwin"), frames [..., T, H, W, C] go to `arp_jax.rank_pool_pixels` instead; the datasets'
      RP summary images use `arp_jax.pooling.bucketed.RP_OPTIONS` = {C: 10, order: "paper"}.

  Returns:
    float32 with the time axis removed ([T, H, W, C] -> [H, W, C]), or replaced by the window axis
    ([T, H, W, C] -> [S, H, W, C]) or by the segment axis. Works under `jax.jit`, `jax.vmap` and
    `jax.grad`; for arp, the gradient with respect to frame t is alpha_t times the incoming gradient
    (eq. 9).
  """
  if method not in METHODS:
    raise ValueError(f"unknown pooling method {method!r}; expected one of {METHODS}")
  if nan_policy not in NAN_POLICIES:
    raise ValueError(f"unknown nan_policy {nan_policy!r}; expected one of {NAN_POLICIES}")
  checks.check_real_dtype(frames, "frames")
  axis, T = checks.check_time_axis(frames, axis, "frames")
  if method == "mhi":
    _check_mhi_number(mhi_threshold, "mhi_threshold", positive=False)
    if mhi_duration is not None:
      _check_mhi_number(mhi_duration, "mhi_duration", positive=True)
  if method != "rp" and rp_options:
    raise ValueError(f"rp_options is for method='rp', not {method!r}")
  if window is not None:
    stride = windows_lib.check_window_args(window, stride, start, tail)
  elif stride is not None or start != 0 or tail != "pad":
    raise ValueError("stride, start and tail need window=...; without a window the whole video is pooled")
  if nan_policy == "raise":
    checks.check_finite(frames, "frames", axis)
  frames = jnp.asarray(frames)
  channel = _channel_offset(mhi_channel_axis, frames.ndim, axis) if method == "mhi" else None

  if segment_ids is not None:
    if lengths is not None:
      raise ValueError("pass lengths (padded batch) or segment_ids (packed frames), not both")
    frames, lengths = _segments_to_padded(frames, segment_ids, axis, num_segments, max_length)
    axis, T = axis + 1, frames.shape[axis + 1]
  elif num_segments is not None or max_length is not None:
    raise ValueError("num_segments and max_length go with segment_ids")
  elif lengths is not None:
    lengths = checks.check_lengths(lengths, frames.shape[:axis], T)

  batch, frame_shape = frames.shape[:axis], frames.shape[axis + 1:]
  x = frames.reshape((math.prod(batch), T) + frame_shape)  # free: the batch axes lead
  length = None if lengths is None else jnp.reshape(lengths, (-1,))
  if window is not None and length is not None:
    windows_lib.check_lengths_have_windows(length, window, stride, start, tail)
  static = dict(method=method, window=window, stride=stride, start=start, tail=tail, channel=channel)
  if method == "rp":  # rank_pool's options may be strings; it compiles its own solver
    out = _pool_windows(x, length, mhi_threshold, mhi_duration, rp_options=dict(rp_options or {}), **static)
  else:
    out = _pool_windows_jit(x, length, mhi_threshold, mhi_duration, **static)
  return out.reshape(batch + out.shape[1:])


def _pool_windows(x, length, threshold, duration, *, method, window, stride, start, tail, channel,
                  rp_options=None):
  """Pools clips x: [M, T, ...] -> float32 [M, ...], or [M, S, ...] with windows (see `pool`)."""
  options = dict(method=method, threshold=threshold, duration=duration, channel=channel,
                 rp_options=rp_options or {})
  if window is None:
    return _pool_clips(x, length, **options)
  frame_shape = x.shape[2:]
  clips, real = windows_lib.gather_windows(x, window, stride, start, tail, length)
  count = clips.shape[1]
  out = _pool_clips(clips.reshape((-1, window) + frame_shape), None, **options)
  out = out.reshape((x.shape[0], count) + frame_shape)
  if window > 1:
    out = _one_frame_windows_as_clips(x, length, out, stride, start, options)
  if real is not None:
    out = jnp.where(real.reshape(real.shape + (1,) * len(frame_shape)), out, 0.0)
  return out


def _one_frame_windows_as_clips(x, length, out, stride: int, start: int, options: dict):
  """`out` [M, S, ...] with each window that holds a single real frame replaced by that frame pooled as a
  one-frame clip.

  The tail rule pads a window by repeating the last frame, so a window that starts at a video's last
  frame (T mod window = 1 with stride = window, or `pool(x[:1], window=10)`) holds ten copies of one
  frame. ARP's weights sum to zero, so it would pool to zero, and in float32 to a residue of about 1e-6
  of the pixels that `to_image` or CaffeNet's L2 scaling stretch into a noise picture. A one-frame
  window is pooled as a one-frame video instead (the reference's T = 1 rule: the frame itself).
  Windows with two or more real frames keep the reference's padding.
  """
  starts = start + stride * np.arange(out.shape[1])
  if length is None:
    T = x.shape[1]
    if not np.any(T - starts == 1):
      return out  # known when tracing: no window to fix, nothing computed
    last_frame = x[:, T - 1]
    one = jnp.asarray(T - starts == 1)[None, :]
  else:
    last_frame = jax.vmap(lambda video, n: lax.dynamic_index_in_dim(video, n - 1, 0, keepdims=False))(
        x, length)
    one = (length[:, None] - starts[None, :]) == 1
  single = _pool_clips(last_frame[:, None], None, **options)  # [M, ...]: one frame per video
  one = one.reshape(one.shape + (1,) * (out.ndim - 2))
  return jnp.where(one, single[:, None], out)


# Called eagerly (a notebook's `arp_jax.pool(frames)`), the fold would dispatch one operation per frame;
# compiled, it is one fused pass over the frames, several times faster (benchmarks/README.md). Under an
# outer jit this inner jit is simply inlined.
_pool_windows_jit = jax.jit(
    _pool_windows, static_argnames=("method", "window", "stride", "start", "tail", "channel"))


def _pool_clips(x, length, *, method, threshold, duration, channel, rp_options):
  """Pools clips x: [M, T, ...] (clip m is x[m, :length[m]], or all T frames) -> float32 [M, ...]."""
  M, T, frame_shape = x.shape[0], x.shape[1], x.shape[2:]
  if method == "rp":
    return _rank_pool_clips(x, length, rp_options)
  expand = (slice(None),) + (None,) * len(frame_shape)  # per-clip scalars against [M, ...] frames

  def frame(t):
    xt = lax.dynamic_index_in_dim(x, t, axis=1, keepdims=False).astype(jnp.float32)
    if length is None:
      return xt
    # `where`, not a multiplication: padding may hold NaN, and 0 * NaN is NaN.
    return jnp.where((t < length)[expand], xt, 0.0)

  clip_length = T if length is None else length
  valid = (lambda t: True) if length is None else (lambda t: (t < length)[expand])
  init = jnp.zeros((M,) + frame_shape, jnp.float32)

  if method in ("arp", "arp_linear"):
    variant = "linear" if method == "arp_linear" else "harmonic"
    if length is None:
      table = jnp.asarray(arp.arp_weights(T, variant))
      weight = lambda t: table[t]
    else:
      harmonic = arp.harmonic_numbers(T)
      weight = lambda t: arp.arp_weight_at(t, length, variant, harmonic)[expand]
    return _fold(T, lambda acc, t: acc + weight(t) * frame(t), init)

  if method == "mean":
    scale = 1.0 / T if length is None else (1.0 / jnp.maximum(length, 1).astype(jnp.float32))[expand]
    return _fold(T, lambda acc, t: acc + frame(t), init) * scale

  if method == "max":
    low = jnp.full_like(init, -jnp.inf)
    out = _fold(T, lambda acc, t: jnp.maximum(acc, jnp.where(valid(t), frame(t), -jnp.inf)), low)
    return out if length is None else jnp.where((length > 0)[expand], out, 0.0)

  # Motion history image. Each moving pixel restarts at `duration` and decays by one per frame, so the
  # final value is set by the last frame that moved there: the largest of the per-frame candidates.
  duration_ = (clip_length if duration is None else duration)
  duration_ = jnp.asarray(duration_, jnp.float32)
  if duration_.ndim:
    duration_ = duration_[expand]
  last = jnp.asarray(clip_length, jnp.float32)
  last = last[expand] if last.ndim else last
  reduce_axis = None if channel is None else channel

  def mhi_step(carry, t):
    history, previous = carry
    current = frame(t)
    if isinstance(t, int) and t == 0:  # the first frame has no predecessor: no motion yet
      return history, current
    difference = jnp.abs(current - previous)
    if reduce_axis is not None:
      difference = jnp.mean(difference, axis=reduce_axis, keepdims=True)
    candidate = jnp.maximum(duration_ - (last - 1 - t), 0.0) / duration_
    moved = (difference > threshold) & valid(t)
    history = jnp.maximum(history, jnp.where(moved, candidate, 0.0))
    history = jnp.where(jnp.isnan(difference), jnp.nan, history)
    return history, current

  history_shape = list(init.shape)
  if reduce_axis is not None:
    history_shape[reduce_axis] = 1
  history, _ = _fold(T, mhi_step, (jnp.zeros(history_shape, jnp.float32), init), first_static=True)
  return jnp.broadcast_to(history, init.shape)


def _fold(T: int, step: Callable, init, first_static: bool = False):
  """acc = step(acc, t) for t = 0..T-1: unrolled for short clips, else a loop over unrolled blocks.

  With `first_static`, step(acc, 0) is always traced with a Python 0 (steps may special-case it).
  """
  if T <= _UNROLL:
    acc = init
    for t in range(T):
      acc = step(acc, t)
    return acc
  acc = step(init, 0) if first_static else init
  begin = 1 if first_static else 0
  blocks = (T - begin) // _BLOCK

  def block(i, acc):
    for j in range(_BLOCK):
      acc = step(acc, begin + i * _BLOCK + j)
    return acc

  acc = lax.fori_loop(0, blocks, block, acc)
  for t in range(begin + blocks * _BLOCK, T):
    acc = step(acc, t)
  return acc


def _rank_pool_clips(x, length, rp_options):
  """Exact rank pooling of clips x: [M, T, ...] -> float32 [M, ...]: `rank_pool` over the flattened frame,
  or, when rp_options name an `order`, `rank_pool_pixels` of frames x: [M, T, H, W, C] (the dynamic image
  of section 5.3: order="paper", one hyperplane per channel)."""
  M, T, frame_shape = x.shape[0], x.shape[1], x.shape[2:]
  if rp_options.get("forward_backward"):
    raise ValueError("rp_options forward_backward=True doubles the feature size; call "
                     "arp_jax.rank_pool directly for it")
  if "lengths" in rp_options:
    raise ValueError("pass lengths to pool itself, not in rp_options")
  lengths = None if length is None else jnp.maximum(length, 1)
  if "order" in rp_options:
    out = rank_pool_pixels(x, lengths=lengths, **rp_options).reshape(M, -1)
  else:
    out = rank_pool(x.reshape(M, T, -1), lengths=lengths, **rp_options)
  if length is not None:
    out = jnp.where((length > 0)[:, None], out, 0.0)  # empty segments give zeros, as for every method
  return out.reshape((M,) + frame_shape)


def _check_mhi_number(value, name: str, positive: bool) -> None:
  """TypeError unless `value` is a real scalar (traced ones pass unchecked); ValueError unless a concrete
  one is finite (and > 0 with `positive`: a duration of 0 or less gives NaN or empty images)."""
  if isinstance(value, jax.core.Tracer):
    return
  if (isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0
      or not np.issubdtype(np.asarray(value).dtype, np.number)
      or np.issubdtype(np.asarray(value).dtype, np.complexfloating)):
    raise TypeError(f"{name} is {value!r}; expected a real number")
  number = float(value)
  if not np.isfinite(number) or (positive and number <= 0):
    raise ValueError(f"{name} is {value!r}; expected a finite number{' > 0 (frames)' if positive else ''}")


def _channel_offset(channel_axis, ndim: int, time_axis: int) -> int | None:
  """The MHI channel axis as a negative offset from the end of the frame (same for clips and windows)."""
  if channel_axis is None:
    return None
  channel_axis = checks.normalize_axis(channel_axis, ndim, "frames")
  if channel_axis <= time_axis:
    raise ValueError(f"mhi_channel_axis={channel_axis} must come after the time axis {time_axis} "
                     "(it is an axis of each frame); use None to treat elements alone")
  return channel_axis - ndim


def _segments_to_padded(frames, segment_ids, axis: int, num_segments, max_length):
  """Packed frames [..., N, ...] -> padded [..., G, max_length, ...] and lengths [..., G]."""
  N = frames.shape[axis]
  if getattr(segment_ids, "dtype", None) is None:
    segment_ids = np.asarray(segment_ids)
  if not jnp.issubdtype(segment_ids.dtype, jnp.integer):
    raise TypeError(f"segment_ids has dtype {segment_ids.dtype}; expected integers (video ids)")
  if tuple(segment_ids.shape) != (N,):
    raise ValueError(f"segment_ids has shape {tuple(segment_ids.shape)}; expected ({N},), one video id "
                     f"per frame along the time axis {axis}")
  for name, value in (("num_segments", num_segments), ("max_length", max_length)):
    if value is not None and (not checks.is_int(value) or value < 1):
      raise ValueError(f"{name}={value!r}; expected an int >= 1")
  if checks.is_concrete(segment_ids):
    ids = np.asarray(segment_ids)
    if ids.min() < 0:
      raise ValueError(f"segment_ids holds {ids.min()}; video ids must be >= 0")
    num_segments = int(ids.max()) + 1 if num_segments is None else num_segments
    if ids.max() >= num_segments:
      raise ValueError(f"segment_ids holds {ids.max()} but num_segments={num_segments}")
    longest = int(np.bincount(ids, minlength=num_segments).max())
    max_length = longest if max_length is None else max_length
    if longest > max_length:
      raise ValueError(f"a video has {longest} frames but max_length={max_length}")
  elif num_segments is None or max_length is None:
    raise ValueError("segment_ids is traced (inside jit/vmap): pass num_segments and max_length as ints")
  padded_bytes = num_segments * max_length * math.prod(frames.shape) // N * frames.dtype.itemsize
  if padded_bytes > _MAX_PADDED_BYTES and num_segments * max_length > _MAX_PADDING_RATIO * N:
    raise ValueError(
        f"num_segments={num_segments} videos of max_length={max_length} frames would need a padded copy "
        f"of {padded_bytes / 2**30:.1f} GiB for {N} packed frames; number the videos 0..G-1 densely "
        "(np.unique(segment_ids, return_inverse=True))")
  ids = jnp.asarray(segment_ids)
  # Ids outside 0..num_segments-1 (only possible when traced) go last and are counted nowhere: dropped.
  ids = jnp.where((ids >= 0) & (ids < num_segments), ids, num_segments)
  order = jnp.argsort(ids, stable=True)  # frames of each video together, in their order of appearance
  counts = jnp.bincount(ids, length=num_segments)
  first = jnp.cumsum(counts) - counts
  positions = jnp.minimum(first[:, None] + jnp.arange(max_length), N - 1)
  padded = jnp.take(frames, order[positions], axis=axis)
  lengths = jnp.broadcast_to(jnp.minimum(counts, max_length), frames.shape[:axis] + (num_segments,))
  return padded, lengths.astype(jnp.int32)
