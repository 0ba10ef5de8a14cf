"""The per-video steps of the pipelines, as small frozen dataclasses (picklable, for worker processes).

Each transform validates its fields once, in `__post_init__`, when the pipeline is made; its `__call__`
then runs once per video and trusts them. Every video comes out in the window layout the model reads:

    frames   float32 [S_max, tau, size, size, C]  the kept windows in temporal order; tau = 1 for
                                                  precomputed dynamic images and single frames
    windows  int32                                S, the real windows; slots S..S_max-1 repeat window S-1
    label    int32
    index    int32, name uint8 [NAME_BYTES], valid bool   (evaluation only)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses

import numpy as np

from arp_jax import checks
from arp_jax.input import sampling
from arp_jax.input import symmetries as symmetries_lib
from arp_jax.input.augment import check_convention, crop_resize_flip, flip_code
from arp_jax.input.decode import (CHANNELS, DYNAMIC_IMAGE_KEYS, FRAME_KEYS, check_modality,
                                  decode_sequences, restore_dynamic_images, sequences)
from arp_jax.input.sampling import SCALES, SHORT_SIDE
from arp_jax.input.symmetries import Checked
from arp_jax.normalization import Convention

# The width of a video name in eval batches (`encode_name`); UCF101's and HMDB51's are under 128.
NAME_BYTES = 256
# What the offline pipeline feeds the network (`make_dynamic_image_dataset`).
OFFLINE_VALUES = ("image", "restored")


def encode_name(name) -> np.ndarray:
  """A video name as uint8 [NAME_BYTES] (UTF-8, zero-padded): an array, so that evaluation gathers the
  names of every host's videos with their scores instead of reading the test set again.

  Raises:
    ValueError: the name is longer than NAME_BYTES bytes in UTF-8.
  """
  raw = bytes(name) if isinstance(name, (bytes, np.bytes_)) else str(name).encode()
  if len(raw) > NAME_BYTES:
    raise ValueError(f"video name {raw[:40]!r}... has {len(raw)} bytes; expected at most {NAME_BYTES}")
  out = np.zeros(NAME_BYTES, np.uint8)
  out[:len(raw)] = np.frombuffer(raw, np.uint8)
  return out


def decode_names(codes) -> list[str]:
  """`encode_name`'s inverse for uint8 [N, NAME_BYTES] -> N names."""
  return [bytes(row).rstrip(b"\0").decode() for row in np.asarray(codes, np.uint8)]


@dataclasses.dataclass(frozen=True)
class Element:
  """What the pipeline carries to the per-video transform: the example and where it came from."""
  index: int
  example: Mapping
  valid: bool = True


@dataclasses.dataclass(frozen=True)
class WithIndex:
  """map_with_index: the position in the source (modulo its length: `repeat` passes positions past it)."""
  length: int

  def __call__(self, index: int, example) -> Element:
    return Element(index % self.length, example)


def as_padding(element: Element) -> Element:
  return dataclasses.replace(element, valid=False)


def _outputs(element: Element, train: bool, frames: np.ndarray, windows: int,
             applied: tuple[str, ...] = (), symmetries: Checked = ()) -> dict:
  """The video's outputs (module docstring); its label mapped by the symmetries `applied` to its frames."""
  label = element.example.get("label")
  if not checks.is_int(label):
    raise ValueError(f"video {element.index} has label {label!r}; expected an int class index")
  label = symmetries_lib.map_label(int(label), applied, symmetries)
  out = dict(frames=frames, windows=np.int32(windows), label=np.int32(label))
  if not train:
    out.update(index=np.int32(element.index), valid=np.bool_(element.valid),
               name=encode_name(element.example.get("name", b"")))
  return out


def _pad(frames: np.ndarray, count: int) -> None:
  """Slots count.. of `frames` [S_max, ...] repeat slot count - 1: a real window rather than zeros, so a
  model that forgets `windows` still sees plausible input; with it the merge ignores them."""
  frames[count:] = frames[count - 1]


@dataclasses.dataclass(frozen=True)
class _Augmentation:
  """The fields both transforms share, validated once; `convention` becomes a `Convention`."""
  train: bool
  modality: str
  max_windows: int
  size: int
  scales: tuple[int, ...] = SCALES
  flip: bool = True
  short_side: int | None = SHORT_SIDE
  convention: str | Convention = "reference"
  # Class-mapping transforms of the whole video in training (`symmetries`): name -> the class each
  # class becomes, e.g. {"hflip": [...]}; stored as `symmetries.Checked`.
  symmetries: Mapping[str, Sequence[int]] | Checked = ()

  def __post_init__(self):
    fields = dict(
        train=checks.check_bool(self.train, "train"), modality=check_modality(self.modality),
        max_windows=checks.check_int(self.max_windows, "max_windows"),
        size=checks.check_int(self.size, "size"), scales=sampling.check_scales(self.scales),
        flip=checks.check_bool(self.flip, "flip"), short_side=sampling.check_short_side(self.short_side),
        convention=check_convention(self.convention, self.modality),
        symmetries=symmetries_lib.check_symmetries(self.symmetries))
    if fields["flip"] and "hflip" in dict(fields["symmetries"]):
      raise ValueError("flip is True and symmetries has 'hflip'; expected one of them: flip mirrors and keeps "
                       "the class, symmetries['hflip'] mirrors and maps it")
    for name, value in fields.items():
      object.__setattr__(self, name, value)

  def _symmetries(self, rng: np.random.Generator) -> tuple[str, ...]:
    """The symmetries applied to this video: drawn in training (first, and only if any are configured,
    so that configs without them draw what they drew before), none at test."""
    return symmetries_lib.draw(rng, self.symmetries) if self.train and self.symmetries else ()

  def _crop(self, height: int, width: int, rng: np.random.Generator):
    return sampling.draw_crop(height, width, rng, self.train, self.scales, self.size, self.flip,
                              self.short_side)

  def _slots(self, tau: int) -> np.ndarray:
    """float32 [max_windows, tau, size, size, C] to fill: one video's windows."""
    return np.empty((self.max_windows, tau, self.size, self.size, CHANNELS[self.modality]), np.float32)


@dataclasses.dataclass(frozen=True, kw_only=True)
class VideoTransform(_Augmentation):
  """Grain random_map of the frames pipeline: sample windows, decode their frames, augment each window.

  Per video (module docstring): `frames float32 [max_windows, window, size, size, C]`, `windows`, `label`
  (and `index`, `name`, `valid` at test), normalised as `convention` says (a name or a `Convention`).
  """
  window: int
  stride: int

  def __post_init__(self):
    super().__post_init__()
    object.__setattr__(self, "window", checks.check_int(self.window, "window"))
    object.__setattr__(self, "stride", checks.check_int(self.stride, "stride"))

  def __call__(self, element: Element, rng: np.random.Generator) -> dict:
    applied = self._symmetries(rng)
    keys = FRAME_KEYS[self.modality]
    images = sequences(element.example, keys)
    ids = sampling.draw_windows(len(images[0]), self.window, self.stride, self.train, rng,
                                self.max_windows)  # [S, tau]
    # Each frame is decoded once, however many windows (or padded window ends) it appears in.
    unique, inverse = np.unique(ids, return_inverse=True)
    frames = decode_sequences(images, keys, unique)
    inverse = inverse.reshape(ids.shape)
    out = self._slots(self.window)
    flip_u = flip_code if self.modality == "flow" else None
    for s, window in enumerate(inverse):
      params = self._crop(frames.shape[1], frames.shape[2], rng)
      crop_resize_flip([frames[k] for k in window], params, self.size, flip_u, self.convention, out[s],
                       applied=applied)
    _pad(out, len(ids))
    return _outputs(element, self.train, out, len(ids), applied, self.symmetries)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DynamicImageTransform(_Augmentation):
  """Grain random_map of the dynamic-image pipeline: keep windows as the reference does, augment each.

  Per video (module docstring): `frames float32 [max_windows, 1, size, size, C]`, one dynamic image per
  window slot (`values`: "image", the 8-bit images normalised as frames are; "restored", the float range
  of `decode_dynamic_images` times the convention's gain, its offset cancelling in the zero-sum ARP
  weights), `windows`, `label` (and `index`, `name`, `valid` at test).
  """
  values: str = "image"

  def __post_init__(self):
    super().__post_init__()
    if self.values not in OFFLINE_VALUES:
      raise ValueError(f"values is {self.values!r}; expected one of {OFFLINE_VALUES}")

  def __call__(self, element: Element, rng: np.random.Generator) -> dict:
    applied = self._symmetries(rng)
    keys = DYNAMIC_IMAGE_KEYS[self.modality]
    images = sequences(element.example, keys)
    n = len(images[0])
    # The dataset's windows already start where the reference starts them (frame 3 in the training
    # split, 1 in the test split); only the subset is drawn here. A dynamic image is one window.
    kept = sampling.keep(n, sampling.num_kept(n, self.train, self.max_windows, frames=False), rng)
    flow = self.modality == "flow"
    if self.values == "image":
      decoded = decode_sequences(images, keys, kept)
      # A flip negates the dynamic image's u (below), and min-max scaling maps -v to the code 255 - q.
      flip_u, zero_sum = (flip_code if flow else None), False
    else:
      decoded = restore_dynamic_images(element.example, images, keys, kept)
      # Flipping a flow video maps u to 255 - u in every frame; the ARP weights sum to zero, so the 255s
      # cancel and the dynamic image's u is negated (exact for windows of 2 or more frames). The
      # convention's offset cancels likewise: only its gain applies.
      flip_u, zero_sum = (np.negative if flow else None), True
    out = self._slots(1)
    for s, image in enumerate(decoded):
      params = self._crop(image.shape[0], image.shape[1], rng)
      crop_resize_flip([image], params, self.size, flip_u, self.convention, out[s], zero_sum, applied)
    _pad(out, len(kept))
    return _outputs(element, self.train, out, len(kept), applied, self.symmetries)


@dataclasses.dataclass(frozen=True)
class Stack:
  """batch_fn: stacks a batch's videos; at test pads a short last batch to `batch_size` with copies of
  its last video marked valid=False, so every batch has one shape (one compilation)."""
  batch_size: int
  pad: bool

  def __call__(self, elements: Sequence[dict]) -> dict:
    elements = list(elements)
    n = len(elements)
    if self.pad and n < self.batch_size:
      elements += [dict(elements[-1], valid=np.bool_(False))] * (self.batch_size - n)
    return {key: np.stack([element[key] for element in elements]) for key in elements[0]}
