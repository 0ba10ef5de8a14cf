"""TV-L1 flow of many videos through `tvl1` in batches of a fixed number of consecutive pairs.

A video of T frames has T - 1 flow fields, one per pair of consecutive frames (k, k + 1). Videos differ in
length, so batching by video would compile one program per length; `flow_of_videos` instead packs the pairs
of successive videos of one frame size into batches of exactly `batch_pairs` pairs (the last one padded
with a copy of a real pair), so each frame size compiles one program, and reassembles each video's flow.

Device memory stays bounded whatever the length of a video: at most two batches are on the device. JAX
dispatches asynchronously, so batch k + 1 is dispatched before batch k is pulled to the host; the host work
on batch k (reassembling, and whatever the caller does with a finished video) overlaps the device's work on
batch k + 1.

Only jax and numpy: the same code runs on a CPU, a GPU or a TPU host.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
import dataclasses
import time
from typing import Any

import numpy as np

from arp_jax.checks import check_int
from arp_jax.flow.tvl1 import tvl1

# Pairs per batch: enough to fill an accelerator at 320x240 and to amortise the dispatch on a CPU, while
# two batches of 320x240 frames and flow stay a few tens of MB of device memory.
DEFAULT_BATCH_PAIRS = 32

# How often the host looks whether the device finished a batch. Waiting in small sleeps instead of one
# blocking call keeps the main thread responsive to Ctrl-C and SIGTERM (Python runs signal handlers only
# between bytecodes; a blocking wait in XLA would hold them until the batch is done).
_POLL_SECONDS = 0.002


def check_frames(frames, name: str = "frames") -> np.ndarray:
  """`frames` as a NumPy array, or ValueError unless it is uint8 RGB `[T, H, W, 3]` or grey `[T, H, W]`."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    raise ValueError(f"{name} has dtype {frames.dtype}; expected uint8 RGB frames [T, H, W, 3]")
  if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
    raise ValueError(
        f"{name} has shape {frames.shape}; expected RGB frames [T, H, W, 3] or grey frames [T, H, W]")
  return frames


@dataclasses.dataclass(eq=False)
class _Video:
  """One input video while its flow is computed: pieces arrive batch by batch, in order."""
  key: Any
  pieces: list = dataclasses.field(default_factory=list)  # float32 [n_i, H, W, 2], in pair order
  missing: int = 0  # pairs not yet back from the device
  error: Exception | None = None

  @property
  def done(self) -> bool:
    return self.error is not None or self.missing == 0

  def result(self):
    return self.error if self.error is not None else np.concatenate(self.pieces)


@dataclasses.dataclass
class _Batch:
  """Pairs packed on the host, and which video each run of pairs belongs to."""
  frame_shape: tuple[int, ...]
  first: list = dataclasses.field(default_factory=list)  # uint8 [n_i, H, W(, 3)]: frames k
  second: list = dataclasses.field(default_factory=list)  # uint8 [n_i, H, W(, 3)]: frames k + 1
  owners: list = dataclasses.field(default_factory=list)  # (_Video, n_i)
  size: int = 0


def flow_of_videos(videos: Iterable[tuple[Any, Any]], *, batch_pairs: int = DEFAULT_BATCH_PAIRS,
                   **tvl1_params) -> Iterator[tuple[Any, np.ndarray | Exception]]:
  """TV-L1 flow (`tvl1`) of each video of `videos`, computed in batches of consecutive pairs.

  Reads `videos` lazily: a video is taken when its pairs are needed to fill a batch, and the generator
  holds at most the videos of the batches in flight and of the one being packed. A change of frame size
  ends the batch being packed (padded: one batch is one array) and waits for the batches in flight.

  A bad video does not stop the others: its key comes back with the exception instead of a flow. It is
  found before any of its pairs is packed when its frames are not uint8 `[T, H, W(, 3)]`, and when the
  batch is dispatched when `tvl1` refuses its frame size (frames too small for the pyramid: a ValueError);
  every video of that frame size then gets that error, and later videos of the size get it without being
  packed. A bad parameter in `tvl1_params` comes back the same way, for every video.

  Args:
    videos: `(key, frames)` items; frames uint8 RGB `[T, H, W, 3]` or grey `[T, H, W]`, any T >= 0.
    batch_pairs: pairs per batch, >= 1; each frame size compiles one program for this many pairs.
    **tvl1_params: keyword arguments of `tvl1` (tau, lambda_, ..., interpolation); its defaults otherwise.

  Yields:
    `(key, flow)` in the order of `videos`: flow float32 `[T - 1, H, W, 2]` as `tvl1` gives it for each
    pair (k, k + 1), `[0, H, W, 2]` for a video of fewer than 2 frames; or `(key, exception)` for a bad
    video. A pair's flow equals `tvl1(frames[k], frames[k + 1])` up to float rounding (a batch compiles to
    another program than a single pair).

  Raises:
    ValueError: `batch_pairs` is not a positive int (when called, before any video is read).
  """
  batch_pairs = check_int(batch_pairs, "batch_pairs")
  return _flows(iter(videos), batch_pairs, tvl1_params)


def _flows(videos: Iterator, batch_pairs: int, params: dict) -> Iterator[tuple[Any, Any]]:
  waiting = collections.deque()  # _Video in input order, until done and yielded
  refused = {}  # frame shape -> the error tvl1 gave for it
  batch = None  # _Batch being packed
  in_flight = None  # (device flow [batch_pairs, H, W, 2], owners) of the last dispatched batch
  frame_shape_now = None  # the frame shape of the pairs packed last

  def dispatch(batch: _Batch):
    """Pads and dispatches `batch`; returns its (device flow, owners), or None when tvl1 refused it."""
    first, second = np.concatenate(batch.first), np.concatenate(batch.second)
    if batch.size < batch_pairs:  # repeat the last real pair: same program, results thrown away
      pad = batch_pairs - batch.size
      first = np.concatenate([first, np.repeat(first[-1:], pad, axis=0)])
      second = np.concatenate([second, np.repeat(second[-1:], pad, axis=0)])
    try:
      return tvl1(first, second, **params), batch.owners  # returns at once: the device works on
    except (ValueError, TypeError) as error:  # tvl1's checks, made before anything is computed
      refused[batch.frame_shape] = error
      for video, _ in batch.owners:
        video.error = error
      return None

  def collect(flights):
    """Pulls a dispatched batch to the host and hands each run of pairs to its video."""
    flow, owners = flights
    while not flow.is_ready():
      time.sleep(_POLL_SECONDS)
    flow = np.asarray(flow)
    start = 0
    for video, count in owners:
      if video.error is None:
        video.pieces.append(flow[start:start + count])
        video.missing -= count
      start += count

  def shift(new):
    """Dispatches `new`, then collects the batch before it: two batches on the device at most."""
    nonlocal in_flight
    previous, in_flight = in_flight, (dispatch(new) if new is not None else None)
    if previous is not None:
      collect(previous)

  def finished():
    while waiting and waiting[0].done:
      video = waiting.popleft()
      yield video.key, video.result()

  for key, frames in videos:
    video = _Video(key)
    waiting.append(video)
    try:
      frames = check_frames(frames)
    except ValueError as error:
      video.error = error
      continue
    frame_shape = frames.shape[1:]
    pairs = frames.shape[0] - 1
    if pairs < 1:
      video.pieces.append(np.zeros((0, *frame_shape[:2], 2), np.float32))
      continue
    if frame_shape in refused:
      video.error = refused[frame_shape]
      continue
    video.missing = pairs
    if frame_shape_now not in (None, frame_shape):
      # A new frame size: the batch being packed goes as it is, and every batch is collected before the
      # first of the new size is dispatched (and compiled, seconds), so the videos before are done first.
      shift(batch)
      shift(None)
      batch = None
      yield from finished()
    frame_shape_now = frame_shape
    start = 0
    while start < pairs:
      if batch is None:
        batch = _Batch(frame_shape)
      count = min(batch_pairs - batch.size, pairs - start)
      batch.first.append(frames[start:start + count])
      batch.second.append(frames[start + 1:start + count + 1])
      batch.owners.append((video, count))
      batch.size += count
      start += count
      if batch.size == batch_pairs:
        shift(batch)
        batch = None
        yield from finished()
        if video.error is not None:  # its frame size was refused: no more of its pairs
          break
  shift(batch)
  shift(None)
  yield from finished()
  assert not waiting, "every video is done once every batch is collected"


__all__ = ["DEFAULT_BATCH_PAIRS", "check_frames", "flow_of_videos"]
