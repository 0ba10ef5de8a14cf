"""The per-video step of data preparation: one video file -> its JPEG frames and JPEG flow.

`prepare_video` is the one function that every way of building runs per video: the local build's worker
processes (`data_prep.build`), the TFDS builders when called directly, and Apache Beam workers. It is
pure (a file and options in, a `VideoRecord` out); where results are kept is `data_prep.cache`'s job.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import time

import numpy as np

from arp_jax import flow as flow_lib
from arp_jax.checks import check_positive_number
from arp_jax.jpeg import JPEG_QUALITY, check_quality, encode_jpeg
from arp_jax.video import decode, resized_size

FLOW_CHOICES = flow_lib.FLOW_METHODS + ("none",)


@dataclasses.dataclass(frozen=True)
class ProcessOptions:
  """How each video is prepared.

  Attributes:
    flow: "tvl1" (the paper), "farneback", "dis" or "none".
    short_side: resize during decoding so the shorter side is this many pixels; None keeps the size
      (UCF101 and HMDB51 are 240 pixels high; the reference crops from a 256 short side at training time).
    bound: flow clipping bound in pixels for the 8-bit quantisation (the paper: 20).
    quality: JPEG quality of frames and flow images.
  """
  flow: str = "tvl1"
  short_side: int | None = None
  bound: float = flow_lib.DEFAULT_BOUND
  quality: int = JPEG_QUALITY

  def __post_init__(self):
    if self.flow not in FLOW_CHOICES:
      raise ValueError(f"flow is {self.flow!r}; expected one of {FLOW_CHOICES}")
    resized_size(1, 1, self.short_side)  # the checks of the functions that use each option
    check_positive_number(self.bound, "bound")
    check_quality(self.quality)

  @property
  def tag(self) -> str:
    """A folder name that differs whenever the prepared data would differ."""
    side = "orig" if self.short_side is None else str(self.short_side)
    return f"flow-{self.flow}_bound-{self.bound:g}_side-{side}_q{self.quality}"


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """A prepared video.

  Attributes:
    fps: frames per second of the source.
    num_frames: T, the decoded frame count.
    height, width: frame size after the optional resize.
    frames: T JPEG images, RGB.
    flow_x, flow_y: T - 1 grey JPEG images each, the quantised horizontal and vertical flow from frame k to
      k + 1 (empty with flow "none" or a single frame).
  """
  fps: float
  num_frames: int
  height: int
  width: int
  frames: tuple[bytes, ...]
  flow_x: tuple[bytes, ...] = ()
  flow_y: tuple[bytes, ...] = ()


def encode_flow(frames: np.ndarray, options: ProcessOptions) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
  """Flow between consecutive `uint8 [T, H, W, 3]` frames as (x JPEGs, y JPEGs), T - 1 of each."""
  if options.flow == "none" or len(frames) < 2:
    return (), ()
  quantized = flow_lib.quantize(flow_lib.compute_flow(frames, options.flow), options.bound)
  return (tuple(encode_jpeg(q[..., 0], options.quality) for q in quantized),
          tuple(encode_jpeg(q[..., 1], options.quality) for q in quantized))


def prepare_video(path, options: ProcessOptions = ProcessOptions()) -> VideoRecord:
  """Decodes the video file `path` and encodes its frames and flow as JPEG.

  Raises:
    FileNotFoundError: `path` does not exist.
    TruncatedVideoError (a ValueError): the file ends early (cut), so its frames are not the video's; a
      dataset must not take it for a shorter video.
    ValueError: the file is not a decodable video (the message names it).
  """
  video = decode(path, short_side=options.short_side)  # strict: a truncated file raises
  frames = video.frames
  flow_x, flow_y = encode_flow(frames, options)
  return VideoRecord(
      fps=video.fps, num_frames=len(frames), height=frames.shape[1], width=frames.shape[2],
      frames=tuple(encode_jpeg(frame, options.quality) for frame in frames), flow_x=flow_x, flow_y=flow_y)


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What happened to one video: status "done" (prepared now), "cached" (prepared before), "failed"
  (unusable, `detail` says why) or "missing" (no such file: not recorded, so it is tried again once added)."""
  video: str
  status: str
  detail: str = ""
  seconds: float = 0.0


def prepare_into_cache(cache, video_root, video: str, options: ProcessOptions) -> Outcome:
  """Prepares `video_root / video` into `cache` unless it is already there; never raises for a bad video.

  A video that cannot be prepared (missing, corrupt, truncated, undecodable: any Exception) is recorded in
  the cache as failed with the reason (e.g. "TruncatedVideoError: ... decoded 44 of the 164 frames ..."),
  so that a resumed build neither retries nor forgets it (the build's report lists it as skipped with that
  reason). KeyboardInterrupt and other BaseExceptions propagate: an interrupted video leaves no entry and
  is prepared on the next run.
  """
  status = cache.status(video)
  if status is not None:
    return Outcome(video, "cached" if status == "done" else "failed", cache.failure(video) or "")
  path = Path(os.fspath(video_root)) / video
  if not path.is_file():
    return Outcome(video, "missing", f"no file {str(path)!r}")
  start = time.perf_counter()
  try:
    record = prepare_video(path, options)
  except Exception as error:  # pylint: disable=broad-except  # a corrupt file must never stop the build
    reason = f"{type(error).__name__}: {error}"
    cache.store_failure(video, reason)
    return Outcome(video, "failed", reason, time.perf_counter() - start)
  cache.store(video, record)
  return Outcome(video, "done", "", time.perf_counter() - start)
