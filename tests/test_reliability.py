"""Reliability: user mistakes get one clear error, not a wrong result or a raw library error.

One test per reported case (issue "Nothing silent, nothing lost"), each of which failed before its fix.
"""

import jax
import numpy as np
import pytest

import arp_jax


@pytest.fixture
def frames():
  return np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)


@pytest.mark.parametrize("duration", [0, -2.0, float("nan"), True, "3"])
def test_mhi_duration_must_be_a_positive_number(frames, duration):
  # Before: all-NaN (0) or all-zero (negative) images, returned without a word.
  with pytest.raises((TypeError, ValueError), match="mhi_duration"):
    arp_jax.pool(frames, "mhi", mhi_duration=duration)


@pytest.mark.parametrize("threshold", ["x", None, float("inf"), np.zeros(2)])
def test_mhi_threshold_must_be_a_finite_number(frames, threshold):
  # Before: a raw JAX TypeError about abstract arrays for a string.
  with pytest.raises((TypeError, ValueError), match="mhi_threshold"):
    arp_jax.pool(frames, "mhi", mhi_threshold=threshold)


def test_mhi_numbers_may_be_numpy_scalars_or_traced(frames):
  expected = np.asarray(arp_jax.pool(frames, "mhi", mhi_threshold=10.0, mhi_duration=3.0))
  np.testing.assert_array_equal(
      arp_jax.pool(frames, "mhi", mhi_threshold=np.float32(10), mhi_duration=np.int64(3)), expected)
  traced = jax.jit(lambda t: arp_jax.pool(frames, "mhi", mhi_threshold=t, mhi_duration=3.0))(10.0)
  np.testing.assert_array_equal(traced, expected)


def test_rank_pool_of_empty_feature_vectors_is_a_clear_error():
  # Before: ZeroDivisionError from the chunk size.
  with pytest.raises(ValueError, match="D = 0"):
    arp_jax.rank_pool(np.zeros((2, 5, 0), np.float32))


def test_rank_pool_takes_a_list_of_lengths_as_pool_does():
  features = np.random.default_rng(1).normal(size=(2, 5, 7)).astype(np.float32)
  np.testing.assert_array_equal(arp_jax.rank_pool(features, lengths=[5, 3]),
                                arp_jax.rank_pool(features, lengths=np.array([5, 3])))
  with pytest.raises(ValueError, match="1..5"):
    arp_jax.rank_pool(features, lengths=[5, 6])


def test_to_image_of_a_range_wider_than_float32_max():
  # Before: [0, 0, 0] (the span overflowed to infinity).
  for x in (np.array([-3e38, 0.0, 3e38], np.float32), jax.numpy.array([-3e38, 0.0, 3e38])):
    np.testing.assert_array_equal(arp_jax.to_image(x), [0, 128, 255])


def test_to_image_of_finite_float64_beyond_float32_is_scaled_not_called_nan():
  # Before: "x holds NaN or infinity" (the float32 cast made infinities of finite values).
  np.testing.assert_array_equal(arp_jax.to_image(np.array([-1e300, 0.0, 1e300])), [0, 128, 255])
  np.testing.assert_array_equal(arp_jax.to_image(np.array([-1.5e308, 0.0, 1.5e308])), [0, 128, 255])
  with pytest.raises(ValueError, match="NaN or infinity"):
    arp_jax.to_image(np.array([0.0, np.inf]))


def test_to_image_of_ordinary_ranges_is_unchanged():
  x = np.random.default_rng(2).normal(size=(16, 16, 3)).astype(np.float32) * 100
  expected = np.floor((x - x.min()) * np.float32(255 / (x.max() - x.min())) + 0.5).clip(0, 255)
  np.testing.assert_allclose(np.asarray(arp_jax.to_image(x), np.float64), expected, atol=1)
  np.testing.assert_array_equal(arp_jax.to_image(np.array([0.0, 1.0, 2.0], np.float32)), [0, 128, 255])


def test_traced_lengths_beyond_the_time_axis_are_clipped_like_rank_pool():
  # Before: a length of 20 on 12 frames summed ARP weights of a 20-frame video over 12 frames.
  x = np.random.default_rng(3).normal(size=(2, 12, 4, 4, 3)).astype(np.float32)
  pooled = jax.jit(lambda x, n: arp_jax.pool(x, axis=1, lengths=n))(x, np.array([20, 0]))
  np.testing.assert_allclose(pooled[0], arp_jax.pool(x[0]), rtol=1e-5, atol=1e-4)
  np.testing.assert_array_equal(pooled[1], 0.0)
  with pytest.raises(ValueError, match="1..12"):  # concrete lengths keep their clear error
    arp_jax.pool(x, axis=1, lengths=np.array([20, 12]))


def test_traced_segment_ids_out_of_range_are_dropped_not_pooled_as_video_0():
  # Before: id -1 was pooled into video 0 while an id >= num_segments was dropped.
  packed = np.random.default_rng(4).normal(size=(9, 4, 4, 3)).astype(np.float32)
  ids = np.array([0, 0, 0, 1, 1, -1, 1, 5, 0])
  pooled = jax.jit(lambda x, i: arp_jax.pool(x, segment_ids=i, num_segments=2, max_length=5))(packed, ids)
  np.testing.assert_allclose(pooled[0], arp_jax.pool(packed[[0, 1, 2, 8]]), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(pooled[1], arp_jax.pool(packed[[3, 4, 6]]), rtol=1e-5, atol=1e-5)
  for bad, match in ((-1, ">= 0"), (5, "num_segments=2")):  # concrete ids keep their clear errors
    with pytest.raises(ValueError, match=match):
      arp_jax.pool(packed, segment_ids=np.where(ids == -1, bad, np.minimum(ids, 1)), num_segments=2)


def test_sparse_segment_ids_are_refused_before_allocating():
  # Before: an id of 10**7 for 4 frames of 64 x 64 x 3 tried to allocate hundreds of GB.
  packed = np.zeros((4, 64, 64, 3), np.float32)
  with pytest.raises(ValueError, match="densely"):
    arp_jax.pool(packed, segment_ids=np.array([0, 1, 2, 10**7]))
  with pytest.raises(ValueError, match="densely"):
    jax.jit(lambda x, i: arp_jax.pool(x, segment_ids=i, num_segments=10**7, max_length=4))(
        packed, np.arange(4))
