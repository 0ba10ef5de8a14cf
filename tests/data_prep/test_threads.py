"""`data_prep.threads.map_in_order`: order, laziness, errors at their turn, cancellation on close."""

import threading
import time

import pytest

from data_prep.threads import map_in_order


def test_results_come_in_the_order_of_the_items_whatever_order_they_finish_in():
  def slow_first(i):
    time.sleep(0.02 * (i % 3 == 0))  # every third item finishes after the two behind it
    return i * i, threading.current_thread().name

  out = list(map_in_order(slow_first, range(12), workers=3))
  assert [value for value, _ in out] == [i * i for i in range(12)]
  assert {name for _, name in out} <= {f"map_in_order_{k}" for k in range(3)}
  assert len({name for _, name in out}) > 1  # the work was shared


def test_items_are_read_lazily_at_most_ahead_beyond_the_last_result():
  read = []

  def items():
    for i in range(100):
      read.append(i)
      yield i

  results = map_in_order(lambda i: i, items(), workers=2, ahead=4)
  assert read == []  # nothing is read before the first result is asked for
  assert next(results) == 0
  assert len(read) <= 5
  assert next(results) == 1
  assert len(read) <= 6
  results.close()


def test_an_error_is_raised_at_its_items_turn_after_the_results_before_it():
  def fail_on_three(i):
    if i == 3:
      raise KeyError(f"item {i}")
    return i

  results = map_in_order(fail_on_three, range(8), workers=2)
  assert [next(results) for _ in range(3)] == [0, 1, 2]
  with pytest.raises(KeyError, match="item 3"):
    next(results)


def test_closing_early_cancels_the_items_not_started():
  started = []
  gate = threading.Event()

  def work(i):
    started.append(i)
    if i == 1:
      gate.wait(5)  # the worker is busy with item 1 when the generator is closed
    return i

  results = map_in_order(work, range(50), workers=1, ahead=10)
  assert next(results) == 0
  while 1 not in started:
    time.sleep(0.001)
  results.close()  # items 2..10 were submitted, not started: cancelled
  gate.set()
  time.sleep(0.2)
  assert started == [0, 1]


@pytest.mark.parametrize("workers, ahead, error", [(0, None, ValueError), (1.5, None, TypeError),
                                                   (2, 1, ValueError), (True, None, TypeError)])
def test_bad_counts_are_refused_before_any_item_is_read(workers, ahead, error):
  def items():
    raise AssertionError("read")
    yield  # pylint: disable=unreachable

  with pytest.raises(error):
    map_in_order(lambda i: i, items(), workers=workers, ahead=ahead)
