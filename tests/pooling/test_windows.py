"""Windows for multiple dynamic images: counts, frame indices and the reference's tail rule."""

import numpy as np
import pytest

from arp_jax.pooling import windows


def test_reference_windows_cover_every_frame_and_pad_the_last():
  indices = windows.window_indices(23, 10, 6)
  np.testing.assert_array_equal(indices[:, 0], [0, 6, 12, 18])
  np.testing.assert_array_equal(indices[-1], [18, 19, 20, 21, 22, 22, 22, 22, 22, 22])
  np.testing.assert_array_equal(indices[0], np.arange(10))


def test_training_windows_start_at_frame_three():
  indices = windows.window_indices(30, 10, 6, start=2)
  np.testing.assert_array_equal(indices[:, 0], [2, 8, 14, 20])
  assert indices.max() == 29


def test_drop_keeps_full_windows_only():
  indices = windows.window_indices(23, 10, 6, tail="drop")
  np.testing.assert_array_equal(indices[:, 0], [0, 6, 12])
  assert (np.diff(indices, axis=1) == 1).all()


@pytest.mark.parametrize("T", range(1, 40))
@pytest.mark.parametrize("window, stride", [(10, 6), (5, 3), (20, 12), (4, 4), (1, 1), (10, 20)])
def test_counts_agree_with_a_direct_enumeration(T, window, stride):
  firsts = list(range(0, T, stride))
  # "pad": windows starting inside the video, until one reaches the last frame.
  expected = next((i + 1 for i, first in enumerate(firsts) if first + window >= T), len(firsts))
  assert windows.num_windows(T, window, stride) == expected
  full = [first for first in range(0, T) if first % stride == 0 and first + window <= T]
  if full:
    assert windows.num_windows(T, window, stride, tail="drop") == len(full)
  else:
    with pytest.raises(ValueError, match="longer than the"):
      windows.num_windows(T, window, stride, tail="drop")


def test_whole_video_window_is_one_window():
  assert windows.num_windows(164, 164) == 1
  assert windows.num_windows(164, 1000) == 1


def test_stride_defaults_to_the_window():
  np.testing.assert_array_equal(windows.window_indices(9, 3)[:, 0], [0, 3, 6])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(window=0), ValueError, "window=0"),
    (dict(window=4, stride=0), ValueError, "stride=0"),
    (dict(window=4, start=-1), ValueError, "start=-1"),
    (dict(window=4.0), TypeError, "window must be an int"),
    (dict(window=4, tail="wrap"), ValueError, "unknown tail rule"),
    (dict(window=4, start=10), ValueError, "past the last frame"),
])
def test_bad_arguments(kwargs, error, message):
  with pytest.raises(error, match=message):
    windows.num_windows(10, **kwargs)


def _has_window(T, window, stride, start, tail) -> bool:
  try:
    return T > 0 and windows.num_windows(T, window, stride, start, tail) > 0
  except ValueError:
    return False


@pytest.mark.parametrize("T, window, stride, start, tail", [
    (10, 10, 10, 0, "pad"), (30, 10, 10, 0, "pad"), (23, 5, 5, 2, "drop"), (16, 4, 4, 0, "pad"),
    (23, 10, 6, 0, "pad"), (23, 10, 10, 0, "pad"), (9, 3, 2, 1, "drop")])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gathered_windows_are_the_frames_the_indices_name(T, window, stride, start, tail, with_lengths):
  # Tiled windows (stride = window, no tail padding: the networks' [B * S, tau] clips) are a reshape with
  # the frames past a video's length replaced, not a gather; both must pick the frames frame_indices names.
  rng = np.random.default_rng(T + window)
  x = rng.normal(size=(4, T, 3, 2)).astype(np.float32)
  count = windows.num_windows(T, window, stride, start, tail)
  if with_lengths:  # every length that holds a window: the whole video, a short one, one frame
    lengths = np.array([n for n in (T, T - 7, T // 2, start + 1)
                        if _has_window(n, window, stride, start, tail)])
    x = x[:len(lengths)]
  else:
    lengths = None
  got, real = windows.gather_windows(x, window, stride, start, tail, lengths)
  for b in range(x.shape[0]):
    indices = windows.frame_indices(T if lengths is None else int(lengths[b]), count, window, stride, start)
    np.testing.assert_array_equal(np.asarray(got[b]), x[b][indices])
  if lengths is None:
    assert real is None
  else:
    expected = [[s < windows.num_windows(int(n), window, stride, start, tail) for s in range(count)]
                for n in lengths]
    np.testing.assert_array_equal(np.asarray(real), expected)
