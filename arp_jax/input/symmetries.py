"""Symmetries of a video that map each class to a known class: augmentation for classes a mirror changes.

The reference flips frames horizontally because a mirrored "playing guitar" is still a guitar player
(`flip`). Where a geometric transform changes the class in a known way, as a mirror turns the synthetic
benchmark's "disk_left" into "disk_right", the transform still augments the data if the label moves with
it: a training video is transformed as a whole (every window, every frame) and its label replaced by the
class the transform maps it to. The data is multiplied without changing what tells the classes apart.

Three transforms of a square image, each its own inverse, so that each class map must be too:

  hflip      mirror left-right: x -> W - 1 - x; flow u -> -u
  vflip      mirror top-bottom: y -> H - 1 - y; flow v -> -v
  transpose  x <-> y;                           flow (u, v) -> (v, u)

Together they generate the 8 symmetries of the square (rotations by 90 degrees are a transpose and a
flip). In training each configured transform is drawn with probability 1/2, once per video, and applied
in the order above, to the images and to the label alike.

    symmetries = {"hflip": [1, 0, 2, 3], ...}  # class c becomes symmetries["hflip"][c]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np

from arp_jax import checks

SYMMETRIES = ("hflip", "vflip", "transpose")

# A checked `symmetries` argument: ((name, class map), ...) in `SYMMETRIES` order, hashable for the
# frozen transforms.
Checked = tuple[tuple[str, tuple[int, ...]], ...]
# cv2.flip's codes: 1 mirrors left-right, 0 top-bottom, -1 both.
_FLIP_CODES = {("hflip",): 1, ("vflip",): 0, ("hflip", "vflip"): -1}


def check_symmetries(symmetries: Mapping[str, Sequence[int]] | Checked | None) -> Checked:
  """`symmetries` (name -> class map; empty or None for none) in `SYMMETRIES` order, as int tuples.

  Raises:
    ValueError: an unknown name, a map that is not a permutation of 0..K-1 or not its own inverse (each
      transform undoes itself, so its class map must), or maps of different lengths.
  """
  if symmetries is None:
    return ()
  items = dict(symmetries.items() if isinstance(symmetries, Mapping) else symmetries)
  unknown = sorted(set(items) - set(SYMMETRIES))
  if unknown:
    raise ValueError(f"symmetries has {unknown}; expected names among {SYMMETRIES} "
                     "(each mapped to the class every class becomes)")
  checked = []
  for name in (name for name in SYMMETRIES if name in items):
    classes = items[name]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or \
        not all(checks.is_int(c) for c in classes):
      raise ValueError(f"symmetries[{name!r}] is {classes!r}; expected a list of class indices")
    classes = tuple(int(c) for c in classes)
    if sorted(classes) != list(range(len(classes))) or any(classes[c] != i for i, c in enumerate(classes)):
      raise ValueError(f"symmetries[{name!r}] is {list(classes)}; expected a permutation of 0..K-1 that is "
                       f"its own inverse ({name} undone is the identity)")
    checked.append((name, classes))
  if len({len(classes) for _, classes in checked}) > 1:
    raise ValueError(f"symmetries map {[len(c) for _, c in checked]} classes; expected one number of classes")
  return tuple(checked)


def draw(rng: np.random.Generator, symmetries: Checked) -> tuple[str, ...]:
  """The transforms applied to one training video: each of `symmetries` with probability 1/2."""
  return tuple(name for name, _ in symmetries if rng.integers(2))


def map_label(label: int, applied: Sequence[str], symmetries: Checked) -> int:
  """The class of a video of class `label` once `applied` (from `draw`) transformed it.

  Raises:
    ValueError: `label` is outside the classes the maps cover.
  """
  maps = dict(symmetries)
  for name in applied:
    if not 0 <= label < len(maps[name]):
      raise ValueError(f"label {label} is outside the {len(maps[name])} classes of symmetries[{name!r}]")
    label = maps[name][label]
  return label


def transform(image: np.ndarray, applied: Sequence[str], negate: Callable | None) -> np.ndarray:
  """`image` [..., S, S, C] (square: after the resize) transformed by `applied`, in `SYMMETRIES` order.

  negate: for flow (C = 2: u, v), what a reversed displacement does to a stored value (`augment.flip_code`
  for uint8 codes, `np.negative` for pooled values); None for images, which only move.

  Returns `image` itself when nothing is applied, else a new C-contiguous array: the pixels are moved by
  OpenCV, image by image, because NumPy's copy of a mirrored or transposed view, element by element of C
  bytes, made the normalisation that reads it 5x slower (benchmarks/input_bench.py).
  """
  if not applied:
    return image
  flips = tuple(name for name in applied if name != "transpose")
  transpose = "transpose" in applied
  *lead, height, width, channels = image.shape
  out = np.empty((*lead, *((width, height) if transpose else (height, width)), channels), image.dtype)
  flipped = np.empty((height, width, channels), image.dtype) if flips and transpose else None
  for source, target in zip(image.reshape(-1, height, width, channels), out.reshape(-1, *out.shape[-3:])):
    if flipped is not None:
      cv2.transpose(cv2.flip(source, _FLIP_CODES[flips], dst=flipped), dst=target)
    elif flips:
      cv2.flip(source, _FLIP_CODES[flips], dst=target)
    else:
      cv2.transpose(source, dst=target)
  if negate is None:
    return out
  # Flow: each transform reverses or swaps the displacements, in the order applied.
  for name in applied:
    if name == "transpose":
      out = out[..., ::-1].copy()
    else:
      channel = 0 if name == "hflip" else 1
      out[..., channel] = negate(out[..., channel])
  return out
