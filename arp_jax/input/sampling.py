"""The reference's random choices for one video: which windows it keeps, which crop and flip each gets.

Two layers: `sample_windows` and `crop_params` check their arguments and are what a user calls;
`draw_windows` and `draw_crop` are the same draws unchecked, for the per-video transforms, whose
arguments were validated once when the pipeline was made (`arp_jax.input.transforms`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arp_jax import checks
from arp_jax.pooling.windows import count_windows, frame_indices

# The reference resizes frames to a short side of 256, then crops sides of SCALES and resizes the crop to
# SIZE; `crop_params` folds that first resize into the crop (the scales are in 256-short-side pixels).
SHORT_SIDE = 256
SCALES = (256, 224, 192, 168)
SIZE = 224
# The reference's training windows start at frame 3 (1-based); test windows at frame 1.
TRAIN_START = 2


def check_rng(rng) -> np.random.Generator:
  if not isinstance(rng, np.random.Generator):
    raise ValueError(f"rng is a {type(rng).__name__}; expected a np.random.Generator "
                     "(np.random.default_rng(seed), or the one Grain's random_map passes)")
  return rng


def check_scales(scales) -> tuple[int, ...]:
  if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
    raise ValueError(f"scales is {scales!r}; expected a non-empty sequence of crop sides, e.g. {SCALES}")
  return tuple(checks.check_int(scale, "each scale") for scale in scales)


def check_short_side(short_side) -> int | None:
  """None (scales in stored pixels) or a positive int (the reference's 256)."""
  return None if short_side is None else checks.check_int(short_side, "short_side")


# --------------------------------------------------------------------------------------------------------
# Windows


def num_kept(n: int, train: bool, max_windows: int, frames: bool) -> int:
  """How many of n windows the reference keeps: at test at most `max_windows`; in training all when
  there are at most `max_windows`, else min(max_windows, ceil(n / 2)) windows, or `max_windows` single
  frames (window 1: the static-image and flow streams sample frames, not half the video)."""
  if n <= max_windows:
    return n
  if train and not frames:
    return min(max_windows, -(-n // 2))
  return max_windows


def keep(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
  """int [count]: a random subset of 0..n-1 in increasing order (temporal order), or all of them."""
  if count >= n:
    return np.arange(n)
  return np.sort(rng.choice(n, size=count, replace=False))


def draw_windows(num_frames: int, window: int, stride: int, train: bool, rng: np.random.Generator,
                 max_windows: int) -> np.ndarray:
  """`sample_windows` without its checks."""
  # The model pools each sampled window whole, so a window of one real frame and its padding copies would
  # pool to ARP's float32 residue, not to the frame: start at frame 0 rather than leave one.
  start = TRAIN_START if train and num_frames - TRAIN_START >= min(window, 2) else 0
  n = int(count_windows(num_frames, window, stride, start, "pad"))
  kept = keep(n, num_kept(n, train, max_windows, window == 1), rng)
  return frame_indices(num_frames, n, window, stride, start)[kept]


def sample_windows(num_frames: int, window: int, stride: int, train: bool, rng: np.random.Generator,
                   max_windows: int) -> np.ndarray:
  """The frames of the windows the reference samples from a video, in temporal order.

  Windows of `window` frames every `stride` start at the 0-based frame 2 in training (frame 3, 1-based;
  frame 0 if that would leave a window of two or more frames a single real one: videos of fewer than 4
  frames, 3 for window 1) and at frame 0 at test; the last one is padded by repeating the last frame
  (`arp_jax.window_indices`). Of the n windows, training keeps all when n <= max_windows, else a random
  min(max_windows, ceil(n / 2)); test keeps at most `max_windows`, a random subset when there are more.
  With window 1 (frames), training keeps `max_windows` random frames.

  Args:
    num_frames: T >= 1 frames of the video (flow: T - 1 flow images).
    window, stride: tau >= 1 and s >= 1.
    train: training (True) or test (False) sampling.
    rng: draws the subset (untouched when every window is kept).
    max_windows: S_max >= 1 (the reference: 10 in training, 20 at test).

  Returns:
    int32 [S, window] 0-based frame indices, S <= max_windows, windows in temporal order.

  Raises:
    TypeError: a count is not an int, or `train` not a bool.
    ValueError: a count is out of range, or `rng` is not a Generator.
  """
  return draw_windows(checks.check_int(num_frames, "num_frames"), checks.check_int(window, "window"),
                      checks.check_int(stride, "stride"), checks.check_bool(train, "train"),
                      check_rng(rng), checks.check_int(max_windows, "max_windows"))


# --------------------------------------------------------------------------------------------------------
# Crops


def _round_half_down(numerator: int, denominator: int) -> int:
  """numerator / denominator (denominator > 0) rounded to the nearest int, halves down; exact."""
  return -((denominator - 2 * numerator) // (2 * denominator))


def _crop_span(stored: int, crop: int, short_side: int, stored_short: int, position: int) -> tuple[int, int]:
  """(start, length) in stored pixels, along a side of `stored` pixels, of a crop `crop` pixels long in the
  frame resized from short side `stored_short` to `short_side` (clipped to that frame's side, and at least
  one stored pixel), placed at the side's start (position 0), end (1) or centre (2). Each edge is rounded
  to the nearest stored pixel, halves down: without a resize (short_side = stored_short) a centred crop
  starts at (stored - crop) // 2, as it always has."""
  # Lengths in units of 1 / short_side stored pixel: the side is `full`, the crop `span`.
  full = stored * short_side
  span = min(max(crop * stored_short, short_side), full)
  # Edges in units of 1 / (2 short_side) stored pixel, where they are whole numbers.
  low = (0, 2 * (full - span), full - span)[position]
  start = _round_half_down(low, 2 * short_side)
  return start, _round_half_down(low + 2 * span, 2 * short_side) - start


def draw_crop(height: int, width: int, rng: np.random.Generator, train: bool, scales: tuple[int, ...],
              size: int, flip: bool, short_side: int | None) -> tuple[int, int, int, int, bool]:
  """`crop_params` without its checks."""
  stored_short = min(height, width)
  short_side = short_side or stored_short
  if not train:
    side = min(size, short_side)
    top, crop_h = _crop_span(height, side, short_side, stored_short, 2)
    left, crop_w = _crop_span(width, side, short_side, stored_short, 2)
    return top, left, crop_h, crop_w, False
  scale_h, scale_w = int(rng.choice(scales)), int(rng.choice(scales))
  position = int(rng.integers(5))  # 0..3: top-left, top-right, bottom-left, bottom-right; 4: centre
  # Along each side: 0 start, 1 end, 2 centre.
  vertical, horizontal = (2, 2) if position == 4 else (position // 2, position % 2)
  top, crop_h = _crop_span(height, scale_h, short_side, stored_short, vertical)
  left, crop_w = _crop_span(width, scale_w, short_side, stored_short, horizontal)
  # The flip is drawn even when flips are off, so that the crops stay the same either way.
  flipped = bool(rng.integers(2)) and flip
  return top, left, crop_h, crop_w, flipped


def crop_params(height: int, width: int, rng: np.random.Generator, train: bool,
                scales: Sequence[int] = SCALES, size: int = SIZE, flip: bool = True,
                short_side: int | None = SHORT_SIDE) -> tuple[int, int, int, int, bool]:
  """One crop and flip draw (the reference's multi-scale crop), shared by the frames of a window.

  The reference first resizes frames to a short side of 256 (`short_side`), then crops. Here the crop is
  drawn in the pixels of that resized frame and its box mapped back to the stored frame, so the
  `cv2.resize` of the crop to size x size does both resizes in one, with no pass over the whole frame.
  Each edge of the box is rounded to the nearest stored pixel (halves down), so it lies within half a
  stored pixel of the exact box (the resized frame's long side unrounded: 341.3 for 320 x 240, where a
  resize to 341 x 256 moves the right corner crops by 0.3 stored pixel). UCF101's 320 x 240 frames
  (240 / 256 stored pixels per resized one): training crop sides of 240, 210, 180 and 157 or 158 stored
  pixels; the test crop 210 x 210 at (15, 55).

  Training: crop height and width drawn independently from `scales` (each clipped to the resized frame's
  side), placed at one of 5 positions (4 corners, centre) with equal probability, flipped horizontally
  with probability 1/2. Test: the centred size x size square (the resized frame's short side square if
  size exceeds it), no flip.

  Args:
    height, width: the frame's stored size in pixels (>= 1).
    rng: draws the crop in training (untouched at test).
    train: random crop (True) or centre crop (False).
    scales: the crop sides to draw from, in pixels of the resized frame.
    size: the test crop side in pixels of the resized frame (the network's input side).
    flip: whether training may flip. False for classes that a mirror image changes (the synthetic
      benchmark's "left" and "right"); the draw is made either way, so the crops stay the same.
    short_side: the resized frame's short side (the reference's 256), or None: no resize, the scales and
      size are stored pixels (the crops of short_side = min(height, width)).

  Returns:
    (top, left, crop_h, crop_w, flip) in stored pixels: the crop is
    frames[..., top:top + crop_h, left:left + crop_w, :].

  Raises:
    TypeError: a size or scale is not an int, `train` or `flip` not a bool.
    ValueError: a size is not positive, `scales` is empty or not a sequence, `rng` is not a Generator
      (training).
  """
  train = checks.check_bool(train, "train")
  return draw_crop(checks.check_int(height, "height"), checks.check_int(width, "width"),
                   check_rng(rng) if train else rng, train, check_scales(scales),
                   checks.check_int(size, "size"), checks.check_bool(flip, "flip"),
                   check_short_side(short_side))
