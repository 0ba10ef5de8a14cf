"""Tests for arp_jax.flow.batching: the flow of many videos in batches of consecutive pairs.

Real frames of the shipped clips at two small sizes; the op runs with one pyramid scale (`PARAMS`) so
that each program compiles in seconds: what is tested is the packing, padding, order and reassembly, the
same for any parameters.
"""

import functools

import numpy as np
import pytest

from arp_jax.flow import batching, flow_of_videos, tvl1

PARAMS = dict(scales=1)


@pytest.fixture(scope="module")
def sizes(small_clips):
  """Real frames at two sizes: uint8 [164, 30, 40, 3] and [T, 24, 32, 3]."""
  ucf, hmdb = small_clips
  return ucf[:, ::2, ::2], hmdb[:, 6:30, 8:40]


@functools.lru_cache(maxsize=None)
def _pair(frame0: bytes, frame1: bytes, shape: tuple) -> np.ndarray:
  """`tvl1` of one pair alone (cached: the two tests share their videos)."""
  as_array = lambda data: np.frombuffer(data, np.uint8).reshape(shape)
  return np.asarray(tvl1(as_array(frame0), as_array(frame1), **PARAMS))


def _pair_by_pair(frames) -> np.ndarray:
  return np.stack([_pair(frames[k].tobytes(), frames[k + 1].tobytes(), frames.shape[1:])
                   for k in range(len(frames) - 1)]).reshape(-1, *frames.shape[1:3], 2)


def _videos(sizes):
  a, b = sizes
  grey = (a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114).astype(np.uint8)
  return [("one", a[:1]), ("two", a[10:12]), ("five", a[20:25]), ("forty", a[30:70]), ("b_forty", b[:40]),
          ("b_five", b[50:55]), ("grey_five", grey[80:85]), ("five_again", a[100:105])]


def test_flow_of_videos_equals_tvl1_pair_by_pair(sizes):
  # 8 pairs a batch: more than some videos hold (1, 4), fewer than others (39); sizes change twice.
  videos = _videos(sizes)
  results = list(flow_of_videos(videos, batch_pairs=8, **PARAMS))
  assert [key for key, _ in results] == [key for key, _ in videos]
  for (key, frames), (_, result) in zip(videos, results):
    assert result.dtype == np.float32 and result.shape == (len(frames) - 1, *frames.shape[1:3], 2), key
    if len(frames) > 1:
      # A batch is another program than one pair: float rounding only (measured: equal on XLA:CPU).
      np.testing.assert_allclose(result, _pair_by_pair(frames), atol=1e-5, err_msg=key)


def test_a_bad_video_is_reported_and_the_others_are_correct(sizes):
  a, b = sizes
  videos = [("five", a[20:25]), ("float", a[:5].astype(np.float32)), ("tiny", a[:6, :7, :7]),
            ("b_forty", b[:40]), ("rank", a[:5, 0, 0]), ("tiny_again", a[40:43, :7, :7]), ("forty", a[30:70])]
  results = dict(flow_of_videos(videos, batch_pairs=8, **PARAMS))
  assert list(results) == [key for key, _ in videos]
  assert isinstance(results["float"], ValueError) and "dtype float32" in str(results["float"])
  assert isinstance(results["rank"], ValueError) and "shape (5, 3)" in str(results["rank"])
  for key in ("tiny", "tiny_again"):  # the op refuses frames too small for its pyramid
    assert isinstance(results[key], ValueError) and "too small" in str(results[key])
  for key, frames in videos:
    if key in ("five", "b_forty", "forty"):
      np.testing.assert_allclose(results[key], _pair_by_pair(frames), atol=1e-5, err_msg=key)


class _FakeFlow:
  """Stands in for the device result of one batch, recording when the host pulls it."""

  def __init__(self, events, index, shape):
    self.events, self.index, self.shape = events, index, shape

  def is_ready(self):
    return True

  def __array__(self, dtype=None, copy=None):
    self.events.append(("pull", self.index))
    return np.zeros(self.shape, np.float32)


def test_two_batches_at_most_on_the_device_and_every_batch_full(monkeypatch):
  events, shapes = [], []

  def fake_tvl1(frame0, frame1, **params):
    assert frame0.shape == frame1.shape and not params
    shapes.append(frame0.shape)
    events.append(("dispatch", len(shapes) - 1))
    return _FakeFlow(events, len(shapes) - 1, (*frame0.shape[:3], 2))

  def videos():
    for index, length in enumerate([100, 3, 30, 1, 7]):
      events.append(("read", index))
      yield index, np.zeros((length, 16, 16 if index < 4 else 20, 3), np.uint8)

  monkeypatch.setattr(batching, "tvl1", fake_tvl1)
  results = list(flow_of_videos(videos(), batch_pairs=8))
  assert [key for key, _ in results] == [0, 1, 2, 3, 4]
  assert [flow.shape[0] for _, flow in results] == [99, 2, 29, 0, 6]
  assert set(shapes) == {(8, 16, 16, 3), (8, 16, 20, 3)}  # the last batch of each size padded
  in_flight, most = set(), 0
  for event, index in events:
    if event == "dispatch":
      in_flight.add(index)
      most = max(most, len(in_flight))
    elif event == "pull":
      in_flight.remove(index)
  assert most == 2 and not in_flight
  # Batch k + 1 is dispatched before batch k is pulled, and the 100-frame video is read once, not held
  # whole: its first 96 pairs go out in 12 batches before the next video is read.
  assert events[:4] == [("read", 0), ("dispatch", 0), ("dispatch", 1), ("pull", 0)]
  assert events.index(("read", 1)) > events.index(("dispatch", 11))


def test_batch_pairs_is_checked_when_called():
  with pytest.raises(ValueError, match="batch_pairs"):
    flow_of_videos([], batch_pairs=0)
