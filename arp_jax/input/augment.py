"""Crop, resize, flip and normalise the frames of one window (or one dynamic image).

The resize runs on the uint8 frames (bilinear, OpenCV's fixed-point path, 4x less memory than float); its
rounding to whole levels is below the JPEG error of the stored frames. Normalisation follows the input
convention of the network's weights (`arp_jax.normalization`): the default "reference" is 0..255 minus
the ImageNet mean for RGB and flow codes minus 128; "torchvision" and "caffe" for converted ImageNet
weights, whose checkpoints record theirs (`weights.read_convention`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from arp_jax import checks
from arp_jax import normalization
from arp_jax.input import symmetries
from arp_jax.input.decode import CHANNELS, check_modality
from arp_jax.normalization import Convention

# The "reference" input convention's means: ImageNet's in 0..255 (R, G, B); flow codes are centred on 128
# (no motion).
RGB_MEAN = normalization.RGB_MEAN
FLOW_MEAN = normalization.FLOW_MEAN


def check_convention(convention, modality: str) -> Convention:
  """A name of `normalization.CONVENTIONS` or a `Convention` -> the `Convention` for `modality`."""
  if not isinstance(convention, (str, Convention)):
    raise ValueError(f"convention is {convention!r}; expected one of {normalization.CONVENTIONS} or an "
                     "arp_jax.normalization.Convention (e.g. weights.read_convention(checkpoint))")
  return normalization.resolve(convention, modality)


def flip_code(u: np.ndarray) -> np.ndarray:
  """The stored code of the horizontal displacement -v for the code u of v: codes are symmetric about
  127.5 (`q = round((v + 20) * 255 / 40)`), so uint8 u -> 255 - u."""
  return 255 - u


def crop_resize_flip(images, params, size: int, flip_u, convention: Convention, out: np.ndarray,
                     zero_sum: bool = False, applied: tuple[str, ...] = ()) -> None:
  """Writes each of `images` ([H, W, C] uint8 or float32 arrays) cropped as `params` (top, left, crop_h,
  crop_w, flip) say, resized to size x size, mirrored if they say so (then `flip_u` applied to channel 0,
  the horizontal displacement of flow), transformed by the class-mapping symmetries `applied`
  (`symmetries.transform`, with `flip_u` negating flow) and normalised as `convention` says
  (`normalization.normalize`, with `zero_sum`) into float32 `out` [n, size, size, C]. Unchecked: `params`
  fit the images."""
  top, left, crop_h, crop_w, flip = params
  # One array for the window (a copy: the decoded frames may be shared by several windows), then every
  # step on the whole window: per image, the fixed costs were most of a 64 x 64 frame's.
  window = np.stack([image[top:top + crop_h, left:left + crop_w] for image in images])
  if (crop_h, crop_w) != (size, size):
    window = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in window])
  if flip:
    # Bilinear sampling is symmetric about the centre, so mirroring after the resize equals mirroring
    # before it, and costs nothing: the normalisation below reads the mirrored view.
    window = window[:, :, ::-1]
    if flip_u is not None:
      window[..., 0] = flip_u(window[..., 0])
  if applied:
    # On the stored values, before normalisation: flow codes are negated about 127.5, not about the
    # convention's mean.
    window = symmetries.transform(window, applied, flip_u)
  normalization.normalize(window, convention, zero_sum=zero_sum, out=out)


def _check_params(params, height: int, width: int) -> tuple[int, int, int, int, bool]:
  if not isinstance(params, Sequence) or len(params) != 5:
    raise ValueError(f"params is {params!r}; expected (top, left, crop_h, crop_w, flip) from crop_params")
  top, left, crop_h, crop_w, flip = params
  top, left = checks.check_int(top, "top", 0), checks.check_int(left, "left", 0)
  crop_h, crop_w = checks.check_int(crop_h, "crop_h"), checks.check_int(crop_w, "crop_w")
  if top + crop_h > height or left + crop_w > width:
    raise ValueError(f"the crop {crop_h} x {crop_w} at (top={top}, left={left}) runs past the {height} x "
                     f"{width} frames; expected crop_params(height, width, ...) of these frames")
  return top, left, crop_h, crop_w, bool(flip)


def augment(frames: np.ndarray, params, size: int, modality: str,
            convention: str | Convention = "reference") -> np.ndarray:
  """Crops, flips and resizes the frames of one window, then normalises them as the weights expect.

  Flow: a horizontal flip reverses horizontal motion, so it also maps the stored horizontal displacement
  code u to 255 - u (channel 0; the codes are symmetric about 128 = no motion, REFERENCE.md "Data").

  Args:
    frames: uint8 [tau, H, W, C], C = 3 (RGB) or 2 (flow u, v).
    params: (top, left, crop_h, crop_w, flip) from `crop_params(H, W, ...)`.
    size: output side.
    modality: "rgb" or "flow".
    convention: a name of `normalization.CONVENTIONS` or a `normalization.Convention` of the modality.

  Returns:
    float32 [tau, size, size, C].

  Raises:
    ValueError: `frames` is not uint8 [tau, H, W, C] with the modality's C, `params` do not fit the
      frames, `size` is not positive, `modality` is unknown or `convention` not one of it.
    TypeError: `size` or a crop parameter is not an int.
  """
  modality = check_modality(modality)
  convention = check_convention(convention, modality)
  size = checks.check_int(size, "size")
  frames = np.asarray(frames)
  channels = CHANNELS[modality]
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != channels or 0 in frames.shape:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     f"[tau, H, W, {channels}] ({modality})")
  params = _check_params(params, frames.shape[1], frames.shape[2])
  out = np.empty((len(frames), size, size, channels), np.float32)
  crop_resize_flip(frames, params, size, flip_code if modality == "flow" else None, convention, out)
  return out
