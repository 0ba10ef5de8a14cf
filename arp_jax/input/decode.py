"""The images of a dataset example: frames, flow, and precomputed dynamic images, decoded from JPEG.

Examples come from `arp_jax.input.data_source` (image sequences as JPEG bytes, decoded here with
`arp_jax.jpeg`, the decoder that wrote them, and only the images a pipeline samples) or from
`tfds.data_source` (images TFDS already decoded). `decode_video` and `decode_dynamic_images` check their
arguments; `decode_sequences` and `restore_dynamic_images` are the same work unchecked, for the per-video
transforms. What an example holds (keys, one image size per video) is checked everywhere: it comes from
disk, not from a caller.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arp_jax.jpeg import decode_jpeg

MODALITIES = ("rgb", "flow")
CHANNELS = {"rgb": 3, "flow": 2}
# Features of the datasets: the image sequences of each modality (flow: one grey sequence per channel).
FRAME_KEYS = {"rgb": ("frames",), "flow": ("flow_x", "flow_y")}
DYNAMIC_IMAGE_KEYS = {"rgb": ("images",), "flow": ("images_x", "images_y")}


def check_modality(modality) -> str:
  if modality not in MODALITIES:
    raise ValueError(f"modality is {modality!r}; expected one of {MODALITIES}")
  return modality


def _check_indices(indices, n: int) -> np.ndarray:
  indices = np.arange(n) if indices is None else np.asarray(indices)
  if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer) or indices.size == 0 \
      or indices.min() < 0 or indices.max() >= n:
    raise ValueError(f"indices are {indices!r}; expected a non-empty 1-D array of ints in 0..{n - 1}")
  return indices


def _decode_image(item, grey: bool, what: str) -> np.ndarray:
  """uint8 [H, W, 3] (or [H, W] with `grey`) from JPEG bytes or an image TFDS already decoded."""
  if isinstance(item, (bytes, np.bytes_)):
    return decode_jpeg(bytes(item), grey=grey)
  image = np.asarray(item)
  if grey and image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.dtype != np.uint8 or image.ndim != (2 if grey else 3) or (not grey and image.shape[-1] != 3):
    raise ValueError(f"{what} has shape {image.shape} and dtype {image.dtype}; expected JPEG bytes or uint8 "
                     f"{'[H, W, 1]' if grey else '[H, W, 3]'}")
  return image


def sequences(example, keys: tuple[str, ...]) -> list:
  """The image sequences `keys` of an example, of one length >= 1."""
  if not isinstance(example, Mapping) or any(key not in example for key in keys):
    found = sorted(example) if isinstance(example, Mapping) else type(example).__name__
    raise ValueError(f"example has {found}; expected a dataset example with {keys}")
  out = [example[key] for key in keys]
  if len({len(sequence) for sequence in out}) != 1 or not len(out[0]):
    raise ValueError(f"example has {[len(s) for s in out]} images in {keys}; expected the same number >= 1 "
                     "in each")
  return out


def decode_sequences(images: list, keys: tuple[str, ...], indices: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W, C]: images `indices` (int [N], in range) of the sequences `images` (`sequences`), one
  channel per grey sequence (C = 3 for one RGB sequence); each distinct image is decoded once."""
  grey = len(keys) > 1
  decoded = {}
  for i in np.unique(indices):
    planes = [_decode_image(sequence[i], grey, f"{key}[{i}]") for key, sequence in zip(keys, images)]
    decoded[i] = np.stack(planes, -1) if grey else planes[0]
  shapes = {image.shape for image in decoded.values()}
  if len(shapes) != 1:
    raise ValueError(f"the images of {keys} have shapes {sorted(shapes)}; expected one size per video")
  out = np.empty((len(indices),) + shapes.pop(), np.uint8)
  for j, i in enumerate(indices):
    out[j] = decoded[i]
  return out


def decode_video(example, modality: str, indices=None) -> np.ndarray:
  """The frames (RGB) or the flow (u and v as 2 channels) of a frames-dataset example.

  Args:
    example: an example of `ucf101_frames`, `hmdb51_frames` or `synthetic_motion`, from
      `tfds.data_source` (frames as a list of uint8 [H, W, 3]; flow_x / flow_y as [H, W, 1]) or from
      `data_source` (the same as JPEG bytes).
    modality: "rgb" or "flow".
    indices: optional int [N] 0-based frames to decode, in any order, repeats allowed; None for all.

  Returns:
    uint8 [T, H, W, 3] (RGB) or [T - 1, H, W, 2] (flow: T - 1 flow images), or [N, H, W, C] with
    `indices`.

  Raises:
    ValueError: the example lacks the modality's features, its images are not JPEG / uint8 images of one
      size, `indices` are out of range or `modality` is unknown.
  """
  keys = FRAME_KEYS[check_modality(modality)]
  images = sequences(example, keys)
  return decode_sequences(images, keys, _check_indices(indices, len(images[0])))


def restore_dynamic_images(example, images: list, keys: tuple[str, ...], indices: np.ndarray) -> np.ndarray:
  """float32 [N, H, W, C]: `decode_dynamic_images` of the sequences `images` of `example`, unchecked
  `indices`."""
  n = len(images[0])
  if "low" not in example or "high" not in example:
    raise ValueError(f"example has {sorted(example)}; expected `low` and `high` (the range of each image)")
  low, high = np.asarray(example["low"], np.float32), np.asarray(example["high"], np.float32)
  if low.shape != (n,) or high.shape != (n,):
    raise ValueError(f"low has shape {low.shape} and high {high.shape}; expected ({n},), one per image")
  q = decode_sequences(images, keys, indices).astype(np.float32)
  scale = (high[indices] - low[indices]) / np.float32(255)
  return q * scale[:, None, None, None] + low[indices][:, None, None, None]


def decode_dynamic_images(example, modality: str, indices=None) -> np.ndarray:
  """The precomputed dynamic images of an example, restored to their float range.

  Each image was stored min-max scaled to 8 bits with its own range (`data_prep.dynamic.to_uint8`), so
  value = low + q / 255 * (high - low), exact up to the 8-bit step and the JPEG error. The values are
  the weighted sums of eq. 3 on 0..255 frames (or flow codes): no mean to subtract, since the ARP
  weights sum to zero (a constant offset of the frames cancels).

  Args:
    example: an example of `*_dynamic_images` (`images`, or `images_x` / `images_y` for flow, and
      `low`, `high` float [S]).
    modality: "rgb" or "flow".
    indices: optional int [N] of windows to decode; None for all.

  Returns:
    float32 [S, H, W, C] (or [N, H, W, C]), C = 3 (RGB) or 2 (flow).

  Raises:
    ValueError: the example lacks the features or `low` / `high` do not have one value per image.
  """
  keys = DYNAMIC_IMAGE_KEYS[check_modality(modality)]
  images = sequences(example, keys)
  return restore_dynamic_images(example, images, keys, _check_indices(indices, len(images[0])))
