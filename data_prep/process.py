"""The per-video step of data preparation: one video file -> its JPEG frames and JPEG flow.

`prepare_video` is the one function that every way of building runs per video: the local build's worker
processes (`data_prep.process_pool`), the TFDS builders when called directly, and Apache Beam workers. It is
pure (a file and options in, a `VideoRecord` out); where results are kept is `data_prep.cache`'s job.
Its two halves, `decode_video` (frames, on the host) and `flow_jpegs` (quantised flow as JPEG), also serve
the local build's TV-L1 path (`data_prep.batched_flow`), which computes the flow of many videos in batches.
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
    flow: "tvl1" (the paper's, by the JAX op), "tvl1_opencv" (OpenCV's DualTVL1), "farneback", "dis" or
      "none".
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
  def flow_identity(self) -> str:
    """What made the flow, as the cache folder and the dataset metadata record it (`FLOW_IDENTITIES`)."""
    return "none" if self.flow == "none" else flow_lib.FLOW_IDENTITIES[self.flow]

  @property
  def tag(self) -> str:
    """A folder name that differs whenever the prepared data would differ."""
    side = "orig" if self.short_side is None else str(self.short_side)
    return f"flow-{self.flow_identity}_bound-{self.bound:g}_side-{side}_q{self.quality}"


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


@dataclasses.dataclass(frozen=True)
class DecodedVideo:
  """A video decoded and its frames encoded, its flow still to compute (the host half of `prepare_video`).

  Attributes:
    fps: frames per second of the source.
    frames: `uint8 [T, H, W, 3]` RGB, after the optional resize.
    jpegs: the T frames as JPEG.
  """
  fps: float
  frames: np.ndarray
  jpegs: tuple[bytes, ...]

  def record(self, flow_x: tuple[bytes, ...] = (), flow_y: tuple[bytes, ...] = ()) -> VideoRecord:
    """The `VideoRecord` of this video with its flow JPEGs."""
    return VideoRecord(fps=self.fps, num_frames=len(self.frames), height=self.frames.shape[1],
                       width=self.frames.shape[2], frames=self.jpegs, flow_x=flow_x, flow_y=flow_y)


def decode_video(path, options: ProcessOptions) -> DecodedVideo:
  """Decodes the video file `path` (resized to `options.short_side`) and encodes its frames as JPEG.

  Raises:
    FileNotFoundError: `path` does not exist.
    TruncatedVideoError (a ValueError): the file ends early (cut), so its frames are not the video's; a
      dataset must not take it for a shorter video.
    ValueError: the file is not a decodable video (the message names it).
  """
  video = decode(path, short_side=options.short_side)  # strict: a truncated file raises
  return DecodedVideo(fps=video.fps, frames=video.frames,
                      jpegs=tuple(encode_jpeg(frame, options.quality) for frame in video.frames))


def flow_jpegs(flow: np.ndarray, options: ProcessOptions) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
  """`float32 [K, H, W, 2]` flow quantised with `options.bound` as (x JPEGs, y JPEGs), K of each."""
  quantized = flow_lib.quantize(flow, options.bound)
  return (tuple(encode_jpeg(q[..., 0], options.quality) for q in quantized),
          tuple(encode_jpeg(q[..., 1], options.quality) for q in quantized))


def encode_flow(frames: np.ndarray, options: ProcessOptions) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
  """Flow between consecutive `uint8 [T, H, W, 3]` frames as (x JPEGs, y JPEGs), T - 1 of each."""
  if options.flow == "none" or len(frames) < 2:
    return (), ()
  return flow_jpegs(flow_lib.compute_flow(frames, options.flow), options)


def prepare_video(path, options: ProcessOptions = ProcessOptions()) -> VideoRecord:
  """Decodes the video file `path` and encodes its frames and flow as JPEG.

  Raises:
    the errors of `decode_video`.
  """
  decoded = decode_video(path, options)
  return decoded.record(*encode_flow(decoded.frames, options))


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
  known = known_outcome(cache, video_root, video)
  if known is not None:
    return known
  start = time.perf_counter()
  try:
    record = prepare_video(Path(os.fspath(video_root)) / video, options)
  except Exception as error:  # pylint: disable=broad-except  # a corrupt file must never stop the build
    return store_failure(cache, video, error, time.perf_counter() - start)
  cache.store(video, record)
  return Outcome(video, "done", "", time.perf_counter() - start)


def known_outcome(cache, video_root, video: str) -> Outcome | None:
  """The outcome of `video` without preparing it: "cached" or "failed" as recorded in `cache`, "missing"
  when there is no file; None when it is to be prepared."""
  status = cache.status(video)
  if status is not None:
    return Outcome(video, "cached" if status == "done" else "failed", cache.failure(video) or "")
  path = Path(os.fspath(video_root)) / video
  if not path.is_file():
    return Outcome(video, "missing", f"no file {str(path)!r}")
  return None


def store_failure(cache, video: str, error: Exception, seconds: float) -> Outcome:
  """Records in `cache` that `video` could not be prepared, with the reason ("TruncatedVideoError: ...")."""
  reason = f"{type(error).__name__}: {error}"
  cache.store_failure(video, reason)
  return Outcome(video, "failed", reason, seconds)
