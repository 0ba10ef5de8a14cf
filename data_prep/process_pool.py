"""The local build's path for the OpenCV flow methods (and no flow): `workers` processes, a video each.

Each process runs the whole per-video step (`process.prepare_into_cache`: decode, flow, JPEG, store) with
OpenCV single-threaded, so `workers` processes use `workers` cores. The processes end with the build, even
when it is killed (kill -9): an orphaned worker would otherwise prepare videos on and then wait forever.
"""

from __future__ import annotations

from collections.abc import Iterator
import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

from data_prep.process import Outcome, ProcessOptions, prepare_into_cache


def _exit_with_parent(parent_pid: int) -> None:
  """Ends this worker process when the build that started it dies (kill -9 included).

  Otherwise an orphaned worker would go on preparing videos and then wait forever for more work. Linux
  kills it at once (PR_SET_PDEATHSIG); elsewhere, and as a backstop, a thread polls the parent's pid.
  """
  if sys.platform.startswith("linux"):
    try:
      ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      pass
  if os.getppid() != parent_pid:  # the parent died before the line above
    os._exit(1)  # pylint: disable=protected-access

  def watch():
    while os.getppid() == parent_pid:
      time.sleep(1.0)
    os._exit(1)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


def _init_worker(parent_pid: int) -> None:
  _exit_with_parent(parent_pid)
  # One process per core already: OpenCV's own threads would only oversubscribe the cores.
  import cv2  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(1)


def prepare_in_processes(videos: list[str], video_root, cache, options: ProcessOptions,
                         workers: int) -> Iterator[Outcome]:
  """Prepares `videos` in `workers` processes (in this one when `workers` is 1); yields one Outcome each,
  as videos finish. On KeyboardInterrupt the videos in progress are stopped and the interrupt propagates."""
  if workers == 1:
    for video in videos:
      yield prepare_into_cache(cache, video_root, video, options)
    return
  # "spawn": the workers need only OpenCV and PyAV, and must not inherit the parent's threads.
  context = multiprocessing.get_context("spawn")
  executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                                    initargs=(os.getpid(),))
  try:
    futures = [executor.submit(prepare_into_cache, cache, str(video_root), video, options) for video in videos]
    for future in concurrent.futures.as_completed(futures):
      yield future.result()
  except BaseException:
    # Interrupted (Ctrl-C, SIGTERM): stop the videos in progress now rather than wait for them; their
    # files are written atomically, so nothing partial stays. The executor has no public way to do it.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
      process.terminate()
    raise
  finally:
    executor.shutdown(wait=True, cancel_futures=True)
