"""JPEG bytes of frames and flow images.

Frames and flow are stored as JPEG, the format of TSN/denseflow datasets: quality 95 with 4:2:0 chroma
subsampling, which is what OpenCV's `imwrite` (and so denseflow) writes by default. The bytes here are
identical to `cv2.imencode(".jpg", image)`'s (tests/data_prep/test_dynamic.py checks it). Grey images go through
OpenCV; RGB images through PIL, whose libjpeg-turbo build encodes the same bitstream faster than
OpenCV's. libjpeg-turbo's TurboJPEG API (simplejpeg) was faster still but loses accuracy at the same
nominal quality, so it is not used (the figures: benchmarks/README.md).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from arp_jax.checks import is_int

JPEG_QUALITY = 95


def check_quality(quality) -> int:
  """`quality`, or ValueError unless it is an int in 1..100."""
  if not is_int(quality) or not 1 <= quality <= 100:
    raise ValueError(f"quality is {quality!r}; expected an int in 1..100")
  return quality


def encode_jpeg(image, quality: int = JPEG_QUALITY) -> bytes:
  """JPEG bytes of one image.

  Args:
    image: `uint8 [H, W, 3]` RGB (encoded with 4:2:0 chroma) or `uint8 [H, W]` / `[H, W, 1]` grey.
    quality: 1..100.

  Raises:
    ValueError: `image` is not uint8, has another shape, or `quality` is out of range.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"image has dtype {image.dtype}; expected uint8 (0..255)")
  check_quality(quality)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3) or 0 in image.shape:
    raise ValueError(f"image has shape {image.shape}; expected RGB [H, W, 3] or grey [H, W] / [H, W, 1]")
  image = np.ascontiguousarray(image)
  if image.ndim == 2:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=quality)  # 4:2:0, as OpenCV
  return buffer.getvalue()


def decode_jpeg(data: bytes, grey: bool = False) -> np.ndarray:
  """`uint8 [H, W, 3]` RGB (or `[H, W]` with `grey`) from JPEG bytes; ValueError for data that is not JPEG."""
  array = np.frombuffer(data, np.uint8)
  image = cv2.imdecode(array, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if array.size else None
  if image is None:
    raise ValueError(f"cannot decode JPEG data ({len(data)} bytes); expected a JPEG image")
  return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
