"""Decoding videos and frame folders into RGB frame arrays.

Every reader returns `uint8 [T, H, W, 3]` RGB frames at the original frame rate (the paper pools frames
at the original rate). The frame count comes from what the decoder actually produces, never from the
container header: HMDB51 AVI files, for example, decode one frame fewer than their header claims.

Decoding is layered: `_decoded_frames` yields PyAV frames in decoder order (with the error handling),
`_frame_arrays` converts them to RGB arrays, resizing in the same libswscale conversion when a short side
is asked for, `iter_frames` yields those arrays and `read_frames` stacks them; `decode` adds the frame rate
and duration (`Video`). Order and duration come from decoder order and the frame count, never from pts.

A cut file (an interrupted download or copy) still decodes, to its first frames only, with no decoder error:
the first 30 % of the bytes of a 164-frame UCF101 clip gives 44 frames. So the decoded count is compared
with the count the stream declares (`declared_frames`), and a video decoding far fewer frames, or whose
decoder fails part-way, is truncated: `TruncatedVideoError`, a ValueError, so that every reader that skips
a corrupt video skips it too. `decode(..., strict=False)` keeps the frames instead and says why in
`Video.truncated`, for tools that warn and go on (`arp-jax pool`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image

from arp_jax.checks import is_int

# Suffixes read by `read_frame_dir` (compared lower-case); other files in the folder are ignored.
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# How many of its declared frames a complete video may not decode: HMDB51 AVIs decode one frame fewer than
# their header declares, so a small shortfall is a counting convention; more is a cut file.
TRUNCATION_TOLERANCE = 0.05  # of the declared frames
TRUNCATION_MIN_MISSING = 2  # frames, for short videos


class TruncatedVideoError(ValueError):
  """A video file that ends early: its decoder failed part-way, or it decoded far fewer frames than its
  stream declares. `decoded` frames were decoded; `declared` is the stream's count (None if unknown)."""

  def __init__(self, message: str, decoded: int, declared: int | None):
    super().__init__(message)
    self.decoded = decoded
    self.declared = declared


def _existing_path(path) -> Path:
  """`path` as a Path, or FileNotFoundError naming it."""
  path = Path(os.fspath(path))
  if not path.exists():
    raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
  return path


def declared_frames(stream) -> int | None:
  """The number of frames a PyAV video `stream` declares, or None when it declares none.

  The larger of the header's frame count and the stream duration x frame rate: a cut AVI keeps the count
  of the whole video in its header, while the duration of its stream is measured on what is left.
  """
  counts = [stream.frames or 0]
  rate = stream.average_rate or stream.guessed_rate
  if stream.duration and stream.time_base and rate:
    counts.append(round(float(stream.duration * stream.time_base * rate)))
  return max(counts) or None


def _check_complete(decoded: int, declared: int | None, path: Path) -> None:
  """TruncatedVideoError unless `decoded` frames are about the `declared` ones (see TRUNCATION_TOLERANCE)."""
  if declared is None:
    return
  if declared - decoded > max(TRUNCATION_MIN_MISSING, TRUNCATION_TOLERANCE * declared):
    raise TruncatedVideoError(
        f"{str(path)!r} is truncated: it decoded {decoded} of the {declared} frames its video stream "
        "declares; expected a complete file (download or copy it again)", decoded, declared)


def _decoded_frames(container, path: Path) -> Iterator[av.VideoFrame]:
  """PyAV frames of the first video stream of an open `container`, in the order the decoder emits them.

  After the last frame, TruncatedVideoError if the stream decoded far fewer frames than it declares. A
  decoding error after some frames is TruncatedVideoError too, before any frame ValueError; both name the
  file and the number of frames decoded.
  """
  if not container.streams.video:
    raise ValueError(f"{str(path)!r} has no video stream; expected a video file (e.g. .avi, .mp4)")
  stream = container.streams.video[0]
  count = 0
  try:
    for frame in container.decode(stream):
      yield frame
      count += 1
  except av.FFmpegError as error:
    if count:
      raise TruncatedVideoError(f"{str(path)!r} is truncated: its decoder failed after {count} frames "
                                f"({error}); expected a complete file", count, None) from error
    raise ValueError(f"cannot decode {str(path)!r} after {count} frames: {error}") from error
  _check_complete(count, declared_frames(stream), path)


def _open_video(path) -> tuple[Path, av.container.InputContainer]:
  """Opens the video file `path`: FileNotFoundError if missing, ValueError naming it for a folder or non-video."""
  path = _existing_path(path)
  if path.is_dir():
    raise ValueError(f"{str(path)!r} is a folder; use read_frame_dir (or read_video) for a folder of frames")
  try:
    return path, av.open(str(path))
  except av.FFmpegError as error:
    raise ValueError(f"cannot open {str(path)!r} as a video: {error}") from error


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
  """(height, width) scaled so that the shorter side is `short_side`, keeping the aspect ratio.

  The longer side is rounded half up (`floor(x + 0.5)`): 240x320 with short_side 128 gives 128x171
  (320 * 128 / 240 = 170.67). None keeps the size. ValueError unless short_side is a positive int.
  """
  if short_side is None:
    return height, width
  if not is_int(short_side) or short_side <= 0:
    raise ValueError(f"short_side is {short_side!r}; expected a positive int (e.g. 256) or None")
  scale = short_side / min(height, width)
  if height <= width:
    return short_side, max(1, math.floor(width * scale + 0.5))
  return max(1, math.floor(height * scale + 0.5)), short_side


def _frame_arrays(frames: Iterator[av.VideoFrame], short_side: int | None) -> Iterator[np.ndarray]:
  """RGB arrays of PyAV frames, resized by libswscale (bilinear) in the same conversion when short_side is set."""
  for frame in frames:
    height, width = resized_size(frame.height, frame.width, short_side)
    if (height, width) == (frame.height, frame.width):
      yield frame.to_ndarray(format="rgb24")
    else:
      yield frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")


def iter_frames(path, short_side: int | None = None) -> Iterator[np.ndarray]:
  """Yields the RGB frames of the video file `path` one by one, each `uint8 [H, W, 3]`.

  Every frame, in decoder order, at the original rate; with `short_side`, resized during decoding (see
  `resized_size`). FileNotFoundError for a missing path, ValueError naming the file when it is a folder or
  cannot be opened or decoded, TruncatedVideoError after the last frame of a truncated video.
  """
  resized_size(1, 1, short_side)  # validate before opening the file
  path, container = _open_video(path)
  with container:
    yield from _frame_arrays(_decoded_frames(container, path), short_side)


def _stack_frames(frames: list[np.ndarray], path) -> np.ndarray:
  """`uint8 [T, H, W, 3]` from decoded frames; ValueError naming `path` for no frames or a size change."""
  if not frames:
    raise ValueError(f"{str(path)!r} decoded to 0 frames; expected a video with at least one frame")
  first = frames[0].shape
  for index, frame in enumerate(frames):
    if frame.shape != first:
      raise ValueError(
          f"{str(path)!r} changes frame size at frame {index}: {frame.shape} after {first}; "
          "expected one size for the whole video")
  return np.stack(frames)


@dataclass(frozen=True)
class Video:
  """A decoded video.

  Attributes:
    frames: `uint8 [T, H, W, 3]` RGB, every frame in decoder order.
    fps: frames per second, the stream's average frame rate.
    duration: seconds, `T / fps` from the decoded frame count (not from timestamps or the header).
    truncated: why the file is truncated and `frames` only its start (`decode(..., strict=False)`); ""
      for a complete video.
  """
  frames: np.ndarray
  fps: float
  duration: float
  truncated: str = ""


def decode(path, short_side: int | None = None, *, max_frames: int | None = None,
           strict: bool = True) -> Video:
  """Decodes the video file `path` with PyAV into frames, frame rate and duration.

  Ordering and duration come from decoder order and the decoded frame count, never from pts: AVI files
  with packed B-frames (UCF101, HMDB51) carry shuffled pts.

  Args:
    path: a video file (str or path-like).
    short_side: if set, every frame is resized during decoding so that its shorter side is `short_side`
      (aspect ratio kept, see `resized_size`); None keeps the original size.
    max_frames: if set, decode only the first `max_frames` frames (a truncated file whose cut comes later
      is then complete as far as read).
    strict: raise TruncatedVideoError for a truncated file (the default: a dataset must not take it for a
      shorter video); False returns the frames decoded, with the reason in `Video.truncated`.

  Returns:
    `Video(frames uint8 [T, H, W, 3], fps, duration = T / fps, truncated)`.

  Raises:
    FileNotFoundError: `path` does not exist.
    TruncatedVideoError (a ValueError): with `strict`, the file ends early (see the module docstring).
    ValueError: `path` is a folder, is not a video, is corrupt, holds no frames, changes frame size, has
      no usable frame rate, or `short_side` or `max_frames` is not a positive int.
  """
  resized_size(1, 1, short_side)
  if max_frames is not None and (not is_int(max_frames) or max_frames <= 0):
    raise ValueError(f"max_frames is {max_frames!r}; expected a positive int or None (every frame)")
  path, container = _open_video(path)
  frames, truncated = [], ""
  with container:
    decoded = _frame_arrays(_decoded_frames(container, path), short_side)
    try:
      for frame in decoded:
        frames.append(frame)
        if len(frames) == max_frames:
          break
    except TruncatedVideoError as error:
      if strict:
        raise
      truncated = str(error)
    finally:
      decoded.close()  # stopped at max_frames: end the generators while the container is open
    rate = container.streams.video[0].average_rate or container.streams.video[0].guessed_rate
  if not rate or float(rate) <= 0:
    raise ValueError(f"{str(path)!r} has no frame rate in its video stream; expected a positive fps")
  frames = _stack_frames(frames, path)
  fps = float(rate)
  return Video(frames=frames, fps=fps, duration=frames.shape[0] / fps, truncated=truncated)


def read_frames(path) -> np.ndarray:
  """Decodes the video file `path` with PyAV.

  Args:
    path: a video file (str or path-like).

  Returns:
    `uint8 [T, H, W, 3]` RGB, every frame in decoder order at the original rate; T is the number of frames
    actually decoded (not the header's count).

  Raises:
    FileNotFoundError: `path` does not exist.
    TruncatedVideoError (a ValueError): the file ends early (`decode(path, strict=False)` keeps its frames).
    ValueError: `path` is a folder, is not a video, is corrupt, holds no frames, or changes frame size.
  """
  return _stack_frames(list(iter_frames(path)), path)


def natural_key(name: str) -> tuple:
  """Sort key that orders digit runs as integers, so `frame_2` comes before `frame_10`.

  `re.split` with a capturing group alternates text (even positions) and digits (odd positions), so keys
  of two names always compare text with text and int with int. The name itself breaks ties such as
  `frame_01` / `frame_1`.
  """
  parts = re.split(r"(\d+)", name)
  return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)) + (name,)


def read_image(path, mode: str = "RGB") -> np.ndarray:
  """One image file as uint8, converted to the PIL `mode`: "RGB" gives [H, W, 3] (grey, palette and alpha
  images converted), "L" gives grey [H, W]. ValueError naming the file when it cannot be read."""
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert(mode), dtype=np.uint8)
  except (OSError, ValueError) as error:
    # PIL.UnidentifiedImageError and truncated-file errors are both OSError subclasses.
    raise ValueError(f"cannot read image {str(path)!r}: {error}") from error


def read_frame_dir(path) -> np.ndarray:
  """Reads a folder of frame images (.jpg, .jpeg, .png, .bmp; other files ignored) in natural order.

  Args:
    path: a folder such as `frame_1.jpg, frame_2.jpg, ..., frame_10.jpg`.

  Returns:
    `uint8 [T, H, W, 3]` RGB, frames sorted by `natural_key` of their file names.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: `path` is not a folder, holds no frame images, an image cannot be read, or the frames
      differ in size (the message names the file).
  """
  path = _existing_path(path)
  if not path.is_dir():
    raise ValueError(f"{str(path)!r} is not a folder; use read_frames (or read_video) for a video file")
  files = sorted(
      (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
      key=lambda p: natural_key(p.name))
  if not files:
    raise ValueError(f"folder {str(path)!r} holds no frame images; expected files ending in {FRAME_SUFFIXES}")
  frames = []
  for file in files:
    frame = read_image(file)
    if frames and frame.shape != frames[0].shape:
      raise ValueError(
          f"frame {str(file)!r} has size {frame.shape[:2]} (H, W) but {str(files[0])!r} has "
          f"{frames[0].shape[:2]}; expected every frame of a folder to have the same size")
    frames.append(frame)
  return np.stack(frames)


def read_video(path) -> np.ndarray:
  """`uint8 [T, H, W, 3]` RGB frames of a video file (`read_frames`) or a frame folder (`read_frame_dir`)."""
  path = _existing_path(path)
  return read_frame_dir(path) if path.is_dir() else read_frames(path)
