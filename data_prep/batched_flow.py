"""The local build's path for TV-L1 flow by the JAX op: videos decoded by threads, flow in batches.

With `--flow tvl1` the flow is `arp_jax.flow.tvl1` on whatever JAX backend is there (the accelerator when
there is one), so one process computes it for every video, in batches of consecutive pairs across videos
(`arp_jax.flow.flow_of_videos`). Around it the host work runs in parallel: `workers` threads decode the
videos and encode their frames as JPEG (`process.decode_video`; PyAV, libjpeg and OpenCV release the GIL
while they work), while the main thread dispatches the batches, quantises and encodes each finished
video's flow (`process.flow_jpegs`) and stores it in the cache. Threads, not processes: each process would
start its own JAX runtime and, on a GPU, claim the device's memory.

Host memory is bounded: at most `workers + 2` videos are decoded ahead of the flow, and the flow holds the
videos of at most two batches in flight. Every promise of the process-pool path holds: a video is stored
atomically once its flow is done (only the main thread writes to the cache), a video that cannot be
decoded is recorded as failed with the reason and skipped, and Ctrl-C or SIGTERM (a KeyboardInterrupt in
the main thread) cancels the decoding not yet started and leaves the ones running to end within their
video; what was stored stays.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
import concurrent.futures
import os
from pathlib import Path
import time

from arp_jax import flow as flow_lib
from arp_jax.flow.batching import DEFAULT_BATCH_PAIRS
from data_prep.process import Outcome, ProcessOptions, decode_video, flow_jpegs, known_outcome, store_failure


def _decode_timed(path: Path, options: ProcessOptions):
  """(`DecodedVideo` or the Exception that stopped it, seconds); runs on a decoding thread."""
  start = time.perf_counter()
  try:
    decoded = decode_video(path, options)
  except Exception as error:  # pylint: disable=broad-except  # reported per video by the main thread
    decoded = error
  return decoded, time.perf_counter() - start


def prepare_batched(videos: list[str], video_root, cache, options: ProcessOptions, workers: int,
                    batch_pairs: int = DEFAULT_BATCH_PAIRS) -> Iterator[Outcome]:
  """Prepares `videos` (none of them in `cache` yet) with the JAX op's TV-L1 flow, in batches of
  `batch_pairs` pairs, `workers` threads decoding; yields one Outcome each.

  Outcomes come as videos finish, not in the order of `videos`. A missing file is "missing", a video that
  cannot be decoded (or whose frames the flow refuses) "failed" and recorded with the reason. On
  KeyboardInterrupt the decoding not yet started is cancelled and the interrupt propagates.
  """
  pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="decode")
  settled = collections.deque()  # outcomes known before any flow (missing, undecodable), to yield next
  handed = {}  # video -> (DecodedVideo, seconds so far, when handed to the flow)

  def decoded_videos():
    """(video, frames) for the flow, decoding up to `workers + 2` videos ahead of it."""
    pending, queue = collections.deque(), iter(videos)
    while True:
      while len(pending) < workers + 2:
        video = next(queue, None)
        if video is None:
          break
        known = known_outcome(cache, video_root, video)
        if known is not None:
          settled.append(known)
        else:
          pending.append((video, pool.submit(_decode_timed, Path(os.fspath(video_root)) / video, options)))
      if not pending:
        return
      video, future = pending.popleft()
      decoded, seconds = future.result()
      if isinstance(decoded, Exception):
        settled.append(store_failure(cache, video, decoded, seconds))
        continue
      handed[video] = (decoded, seconds, time.perf_counter())
      yield video, decoded.frames

  try:
    for video, flow in flow_lib.flow_of_videos(decoded_videos(), batch_pairs=batch_pairs):
      yield from _drain(settled)
      decoded, decode_seconds, handed_at = handed.pop(video)
      if isinstance(flow, Exception):
        yield store_failure(cache, video, flow, decode_seconds + time.perf_counter() - handed_at)
        continue
      cache.store(video, decoded.record(*flow_jpegs(flow, options)))
      yield Outcome(video, "done", "", decode_seconds + time.perf_counter() - handed_at)
    yield from _drain(settled)
  finally:
    # Interrupted (or done): drop the videos not started; those being decoded end within their video.
    pool.shutdown(wait=False, cancel_futures=True)


def _drain(outcomes: collections.deque) -> Iterator[Outcome]:
  while outcomes:
    yield outcomes.popleft()
