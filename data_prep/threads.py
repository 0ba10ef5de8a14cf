"""`map_in_order`: a function over a stream of items on a few threads, results in the order of the items.

For host work that releases the GIL (XLA running a compiled program, libjpeg, OpenCV, most of NumPy), so
that threads use the cores a single loop leaves idle. The items are read lazily and at most `ahead` results
wait at any time, so memory stays bounded over a long stream.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
import concurrent.futures
from typing import TypeVar

from arp_jax.checks import check_int

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_order(function: Callable[[Item], Result], items: Iterable[Item], workers: int,
                 ahead: int | None = None) -> Iterator[Result]:
  """`function(item)` for each of `items`, computed by `workers` threads, yielded in the order of `items`.

  Args:
    function: called once per item on a worker thread.
    items: read on the calling thread, as results are taken (at most `ahead` items beyond the last result
      yielded).
    workers: threads, >= 1 (1: one worker thread, still overlapping the caller's work on each result).
    ahead: items submitted and not yet yielded, >= `workers`; default 2 x `workers`.

  Yields:
    The results in order. An exception raised by `function` is raised here when its item's turn comes;
    closing the generator early (or an exception in the caller) cancels what was not started, and the
    items being worked on end within their call.

  Raises:
    TypeError, ValueError: `workers` or `ahead` is not a positive int, or `ahead` < `workers` (when
      called, before any item is read).
  """
  workers = check_int(workers, "workers")
  ahead = 2 * workers if ahead is None else check_int(ahead, "ahead", workers)
  return _map_in_order(function, iter(items), workers, ahead)


def _map_in_order(function, items: Iterator, workers: int, ahead: int) -> Iterator:
  pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="map_in_order")
  pending = collections.deque()
  try:
    while True:
      while len(pending) < ahead:
        item = next(items, _END)
        if item is _END:
          break
        pending.append(pool.submit(function, item))
      if not pending:
        return
      yield pending.popleft().result()
  finally:
    pool.shutdown(wait=False, cancel_futures=True)


_END = object()
