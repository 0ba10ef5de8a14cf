"""Window sampling and crop draws: the reference's choices of windows, crops and flips for one video."""

import numpy as np
import pytest

from arp_jax import input as ip


def test_reference_windows_of_a_20_frame_video():
  rng = np.random.default_rng(0)
  train = ip.sample_windows(20, 10, 6, True, rng, 10)
  np.testing.assert_array_equal(train[:, 0], [2, 8, 14])  # frame 3 (1-based) onwards
  np.testing.assert_array_equal(train[0], np.arange(2, 12))
  np.testing.assert_array_equal(train[-1], [14, 15, 16, 17, 18, 19, 19, 19, 19, 19])  # padded
  test = ip.sample_windows(20, 10, 6, False, rng, 20)
  np.testing.assert_array_equal(test[:, 0], [0, 6, 12])  # frame 1 onwards
  np.testing.assert_array_equal(test[-1], [12, 13, 14, 15, 16, 17, 18, 19, 19, 19])
  assert train.dtype == test.dtype == np.int32


def test_long_videos_keep_a_random_subset_in_temporal_order():
  rng = np.random.default_rng(1)
  train = ip.sample_windows(300, 10, 6, True, rng, 10)  # 49 windows: keep min(10, 25) = 10
  assert train.shape == (10, 10)
  assert (np.diff(train[:, 0]) > 0).all() and ((train[:, 0] - 2) % 6 == 0).all()
  np.testing.assert_array_equal(train - train[:, :1], np.tile(np.arange(10), (10, 1)))
  # 13 windows (> 10): the reference keeps ceil(13 / 2) = 7, not 10.
  assert ip.sample_windows(80, 10, 6, True, rng, 10).shape == (7, 10)
  assert ip.sample_windows(62, 10, 6, True, rng, 10).shape == (10, 10)  # exactly 10 windows: all
  test = ip.sample_windows(300, 10, 6, False, rng, 20)  # 50 windows: 20 at random
  assert test.shape == (20, 10) and (np.diff(test[:, 0]) > 0).all() and (test[:, 0] % 6 == 0).all()
  assert ip.sample_windows(100, 10, 6, False, rng, 20).shape == (16, 10)  # 16 <= 20: all


def test_sampling_is_deterministic_for_a_seed():
  first = ip.sample_windows(300, 10, 6, True, np.random.default_rng(7), 10)
  np.testing.assert_array_equal(first, ip.sample_windows(300, 10, 6, True, np.random.default_rng(7), 10))
  assert not np.array_equal(first, ip.sample_windows(300, 10, 6, True, np.random.default_rng(8), 10))


def test_short_videos_and_single_frames():
  rng = np.random.default_rng(0)
  np.testing.assert_array_equal(ip.sample_windows(2, 4, 3, True, rng, 10), [[0, 1, 1, 1]])  # < 3 frames
  # Starting at frame 3 would leave one real frame in the window (and ARP's residue): start at frame 1.
  np.testing.assert_array_equal(ip.sample_windows(3, 4, 3, True, rng, 10), [[0, 1, 2, 2]])
  np.testing.assert_array_equal(ip.sample_windows(4, 4, 3, True, rng, 10), [[2, 3, 3, 3]])
  np.testing.assert_array_equal(ip.sample_windows(3, 1, 1, True, rng, 10), [[2]])
  np.testing.assert_array_equal(ip.sample_windows(1, 10, 6, False, rng, 20), [[0] * 10])
  # window 1: frames. Training samples max_windows random frames from frame 3 on, in order.
  frames = ip.sample_windows(30, 1, 1, True, rng, 10)
  assert frames.shape == (10, 1) and (np.diff(frames[:, 0]) > 0).all() and frames.min() >= 2
  np.testing.assert_array_equal(ip.sample_windows(5, 1, 1, True, rng, 10)[:, 0], [2, 3, 4])
  assert ip.sample_windows(30, 1, 1, False, rng, 20).shape == (20, 1)
  np.testing.assert_array_equal(ip.sample_windows(8, 1, 1, False, rng, 20)[:, 0], np.arange(8))


@pytest.mark.parametrize("args, error, match", [
    ((0, 10, 6, True, 10), ValueError, "num_frames is 0"),
    ((20, 0, 6, True, 10), ValueError, "window is 0"),
    ((20, 10, 0, True, 10), ValueError, "stride is 0"),
    ((20, 10, 6, True, 0), ValueError, "max_windows is 0"),
    ((20, 10.0, 6, True, 10), TypeError, "window is 10.0; expected an int"),
    ((20, 10, 6, "yes", 10), TypeError, "train is 'yes'"),
])
def test_sample_windows_errors(args, error, match):
  T_, window, stride, train, max_windows = args
  with pytest.raises(error, match=match):
    ip.sample_windows(T_, window, stride, train, np.random.default_rng(0), max_windows)
  with pytest.raises(ValueError, match="expected a np.random.Generator"):
    ip.sample_windows(20, 10, 6, True, 0, 10)


def test_training_crops_come_from_the_scales_at_five_positions():
  rng = np.random.default_rng(0)
  height, width = 256, 340
  positions, flips = set(), set()
  for _ in range(300):
    top, left, crop_h, crop_w, flip = ip.crop_params(height, width, rng, True)
    assert crop_h in ip.SCALES and crop_w in ip.SCALES
    assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width
    corners = {(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w)}
    centre = ((height - crop_h) // 2, (width - crop_w) // 2)
    assert (top, left) in corners | {centre}
    positions.add("centre" if (top, left) == centre and centre not in corners else (top == 0, left == 0))
    flips.add(flip)
  assert len(positions) == 5 and flips == {True, False}
  # With short_side=None the scales are stored pixels: frames smaller than a scale clip it.
  heights = {ip.crop_params(240, 320, rng, True, short_side=None)[2] for _ in range(100)}
  assert heights == {240, 224, 192, 168}


def test_test_crop_is_the_centre_square_without_flip():
  assert ip.crop_params(256, 340, None, False) == (16, 58, 224, 224, False)
  # size above the short side: the largest centred square, of the stored frame or of the resized one.
  assert ip.crop_params(32, 48, None, False, size=224, short_side=None) == (0, 8, 32, 32, False)
  assert ip.crop_params(32, 48, None, False, size=300, short_side=256) == (0, 8, 32, 32, False)
  rng = np.random.default_rng(0)
  assert ip.crop_params(256, 340, rng, False) == ip.crop_params(256, 340, rng, False)


def _exact_boxes(height, width, short_side, scales, size):
  """{(what, position): (top, left, bottom, right)}: the reference's crops of a frame resized to
  `short_side`, in fractional stored pixels (float64), computed directly from the resized frame."""
  ratio = min(height, width) / short_side  # stored pixels per resized pixel
  resized_h, resized_w = height / ratio, width / ratio
  boxes = {}
  for ch in scales:
    for cw in scales:
      ch_, cw_ = min(ch, resized_h), min(cw, resized_w)
      tops = (0, 0, resized_h - ch_, resized_h - ch_, (resized_h - ch_) / 2)
      lefts = (0, resized_w - cw_, 0, resized_w - cw_, (resized_w - cw_) / 2)
      for position, (top, left) in enumerate(zip(tops, lefts)):
        boxes[(ch, cw), position] = np.array([top, left, top + ch_, left + cw_]) * ratio
  side = min(size, short_side)
  top, left = (resized_h - side) / 2, (resized_w - side) / 2
  boxes["test", 4] = np.array([top, left, top + side, left + side]) * ratio
  return boxes


def _matches(params, boxes):
  """The keys of `boxes` whose every edge lies within half a stored pixel of the crop `params`."""
  top, left, crop_h, crop_w, _ = params
  edges = np.array([top, left, top + crop_h, left + crop_w])
  return {key for key, box in boxes.items() if np.abs(edges - box).max() <= 0.5 + 1e-9}  # float64 error


def test_crops_are_drawn_in_the_frame_resized_to_short_side_256():
  """UCF101's 320 x 240 frames: each scale covers scale / 256 of the short side (256: all of it), at the 5
  positions of the 256-short-side frame, every edge within half a stored pixel."""
  rng = np.random.default_rng(0)
  for height, width in ((240, 320), (320, 240), (257, 300)):
    boxes = _exact_boxes(height, width, 256, ip.SCALES, ip.SIZE)
    seen = set()
    for _ in range(2000):
      params = ip.crop_params(height, width, rng, True)  # short_side=256, the reference, by default
      found = _matches(params, boxes)
      assert found, (height, width, params)
      seen |= found
    assert seen >= {key for key in boxes if key[0] != "test"}  # every scale pair at every position
  # The whole short side for 256, 210 = 224 * 240 / 256 stored pixels for 224, and so on.
  sides = {ip.crop_params(240, 320, rng, True)[2] for _ in range(200)}
  assert sides == {240, 210, 180, 157, 158}  # 168 * 240 / 256 = 157.5: 157 at the top, else 158
  top, _, crop_h, crop_w, _ = ip.crop_params(240, 320, rng, True, scales=(256,))
  assert (top, crop_h, crop_w) == (0, 240, 240)


def test_the_test_crop_covers_224_of_256_of_the_short_side():
  """The reference's centre crop of 224 of the 256-short-side frame: 210 stored pixels of UCF101's 240."""
  assert ip.crop_params(240, 320, None, False) == (15, 55, 210, 210, False)
  assert ip.crop_params(320, 240, None, False) == (55, 15, 210, 210, False)
  assert ip.crop_params(480, 640, None, False) == (30, 110, 420, 420, False)
  for height, width in ((240, 320), (240, 352), (257, 300), (31, 45)):
    params = ip.crop_params(height, width, None, False)
    assert "test" in {key[0] for key in _matches(params, _exact_boxes(height, width, 256, (256,), 224))}


@pytest.mark.parametrize("height, width, short_side, scales", [
    (256, 340, 256, ip.SCALES), (256, 341, 256, ip.SCALES), (301, 256, 256, ip.SCALES),
    (256, 256, 256, ip.SCALES), (64, 85, 64, (64, 56)), (85, 64, 64, (64, 56))])
def test_frames_whose_short_side_is_short_side_crop_as_with_short_side_none(height, width, short_side,
                                                                            scales):
  for train in (True, False):
    for seed in range(200 if train else 1):
      draw = dict(height=height, width=width, train=train, scales=scales)
      assert (ip.crop_params(rng=np.random.default_rng(seed), short_side=short_side, **draw)
              == ip.crop_params(rng=np.random.default_rng(seed), short_side=None, **draw))


def test_crop_params_errors():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="height is 0"):
    ip.crop_params(0, 10, rng, True)
  with pytest.raises(ValueError, match="scales is"):
    ip.crop_params(10, 10, rng, True, scales=())
  with pytest.raises(ValueError, match="size is -1"):
    ip.crop_params(10, 10, rng, False, size=-1)
  for short_side, error in ((0, ValueError), (True, TypeError), (25.6, TypeError)):
    with pytest.raises(error, match=f"short_side is {short_side}"):
      ip.crop_params(10, 10, rng, True, short_side=short_side)
