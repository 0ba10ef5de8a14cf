"""Precomputed dynamic images (data_prep.dynamic), JPEG bytes (arp_jax.jpeg) and the video cache."""

import cv2
import numpy as np
import pytest

import arp_jax
from arp_jax.jpeg import decode_jpeg, encode_jpeg
from arp_jax.pooling.bucketed import RP_C, RP_OPTIONS
from arp_jax.pooling.rank_pooling import rank_pool_pixels
from data_prep.cache import VideoCache
from data_prep.dynamic import SUMMARIES, VALUE_RANGES, dynamic_images, summary_images, to_uint8
from data_prep.process import ProcessOptions, VideoRecord


@pytest.mark.parametrize("args", [{}, dict(window=10, stride=6), dict(window=10, stride=6, start=2),
                                  dict(window=20, stride=12)])
def test_dynamic_images_equal_arp_jax_pool(small_clips, args):
  frames = small_clips[0]
  expected = np.asarray(arp_jax.pool(frames, **args), np.float64)
  expected = expected[None] if not args else expected
  got = dynamic_images(frames, **args)
  assert got.shape == expected.shape and got.dtype == np.float32
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_dynamic_images_of_two_channel_flow_and_a_single_frame(small_clips):
  codes = small_clips[1][..., :2]
  np.testing.assert_allclose(dynamic_images(codes)[0], arp_jax.pool(codes), rtol=1e-5, atol=1e-2)
  np.testing.assert_array_equal(dynamic_images(codes[:1])[0], codes[0])  # T = 1: the frame itself


def test_to_uint8_matches_to_image_per_image(small_clips):
  pooled = dynamic_images(small_clips[0], window=10, stride=6)
  images, low, high = to_uint8(pooled)
  for s in range(len(pooled)):
    np.testing.assert_array_equal(images[s], arp_jax.to_image(pooled[s]))
  np.testing.assert_array_equal(low, pooled.min(axis=(1, 2, 3)))
  np.testing.assert_array_equal(high, pooled.max(axis=(1, 2, 3)))
  restored = low[:, None, None, None] + images / 255.0 * (high - low)[:, None, None, None]
  assert np.abs(restored - pooled).max() <= 0.51 / 255 * (high - low).max()
  assert not to_uint8(np.full((1, 2, 2, 3), 7.0))[0].any()  # a constant image is black, not NaN


@pytest.mark.parametrize("method", [m for m in SUMMARIES if m != "arp"])
def test_summary_images_equal_arp_jax_pool(small_clips, method):
  """The baselines of Table 1 are `arp_jax.pool` of the video alone, whole or in windows, whatever the
  padding to a bucket of frames that `summary_images` adds."""
  frames = small_clips[0][:70]  # longer than one bucket of 64 frames
  options = dict(rp_options=RP_OPTIONS) if method == "rp" else {}
  for args in ({}, dict(window=10, stride=6, start=2)):
    expected = np.asarray(arp_jax.pool(frames, method, **args, **options))
    expected = expected[None] if not args else expected
    got = summary_images(frames, method, **args)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
  np.testing.assert_array_equal(summary_images(frames[:5], "max")[0], frames[:5].max(0))


def test_rp_summary_images_are_dynamic_images_in_the_paper_order(small_clips):
  """Table 1's "Dynamic Image" by exact rank pooling: section 5.3's order (square root, time-varying mean,
  one hyperplane per channel), C = 10, not VideoDarwin's."""
  frames = small_clips[0][:30, ::2, ::2]
  assert RP_OPTIONS == dict(C=RP_C, order="paper") and RP_C == 10.0
  got = summary_images(frames, "rp")[0]
  expected = np.asarray(rank_pool_pixels(frames, RP_C, order="paper"), np.float64)
  assert np.linalg.norm(got - expected) <= 1e-4 * np.linalg.norm(expected)
  windows = summary_images(frames, "rp", window=10, stride=6)
  expected = np.asarray(rank_pool_pixels(frames[6:16], RP_C), np.float64)
  assert np.linalg.norm(windows[1] - expected) <= 1e-4 * np.linalg.norm(expected)


def test_summary_images_are_stored_in_their_natural_range(small_clips):
  frames = small_clips[0]
  mean = summary_images(frames, "mean")
  images, low, high = to_uint8(mean, VALUE_RANGES["mean"])
  assert (low.tolist(), high.tolist()) == ([0.0], [255.0])
  # The mean image itself, rounded (float32 rounding moves a few values that lie on a half by one).
  assert np.abs(images[0].astype(int) - np.round(frames.mean(0, dtype=np.float64))).max() <= 1
  mhi = summary_images(frames, "mhi")
  assert mhi.min() >= 0 and mhi.max() <= 1
  images, _, _ = to_uint8(mhi, VALUE_RANGES["mhi"])
  assert np.abs(images[0].astype(int) - np.round(mhi[0] * 255.0)).max() <= 1
  np.testing.assert_array_equal(to_uint8(np.array([[[[-3.0, 300.0]]]]), (0.0, 255.0))[0], [[[[0, 255]]]])
  assert "arp" in SUMMARIES and "arp" not in VALUE_RANGES  # dynamic images: min-max per image
  with pytest.raises(ValueError, match="unknown summary method 'median'"):
    summary_images(frames, "median")
  with pytest.raises(ValueError, match="uint8"):
    summary_images(frames.astype(np.float32), "mean")


def test_dynamic_images_bad_input():
  with pytest.raises(ValueError, match="uint8"):
    dynamic_images(np.zeros((3, 4, 4, 3), np.float32))
  with pytest.raises(ValueError, match="T >= 1"):
    dynamic_images(np.zeros((0, 4, 4, 3), np.uint8))
  with pytest.raises(ValueError, match="need window"):
    dynamic_images(np.zeros((3, 4, 4, 3), np.uint8), stride=2)


def test_jpeg_round_trip(ucf_frames):
  frame = ucf_frames[0]
  # The bytes OpenCV's imwrite (denseflow, TSN) writes at its default quality 95.
  assert encode_jpeg(frame) == cv2.imencode(".jpg", frame[..., ::-1].copy())[1].tobytes()
  assert encode_jpeg(frame[..., 0]) == cv2.imencode(".jpg", frame[..., 0].copy())[1].tobytes()
  back = decode_jpeg(encode_jpeg(frame))
  assert back.shape == frame.shape and np.abs(back.astype(int) - frame).mean() < 2.0
  grey = frame[..., 1]
  assert np.abs(decode_jpeg(encode_jpeg(grey), grey=True).astype(int) - grey).mean() < 1.5
  with pytest.raises(ValueError, match="uint8"):
    encode_jpeg(frame.astype(np.float32))
  with pytest.raises(ValueError, match="shape"):
    encode_jpeg(np.zeros((4, 4, 2), np.uint8))
  with pytest.raises(ValueError, match="quality"):
    encode_jpeg(frame, quality=0)
  with pytest.raises(ValueError, match="cannot decode JPEG"):
    decode_jpeg(b"not a jpeg")


def test_process_options_are_checked():
  assert ProcessOptions().tag == "flow-tvl1-jax_bound-20_side-orig_q95"
  for bad in (dict(flow="brox"), dict(short_side=0), dict(bound=0.0), dict(quality=101)):
    with pytest.raises(ValueError):
      ProcessOptions(**bad)


def test_cache_round_trip_failure_and_partial_files(tmp_path):
  cache = VideoCache(tmp_path)
  record = VideoRecord(fps=25.0, num_frames=2, height=4, width=6, frames=(b"a", b"bcd"), flow_x=(b"x",),
                       flow_y=(b"",))
  assert cache.status("C/v.avi") is None
  cache.store("C/v.avi", record)
  assert cache.status("C/v.avi") == "done" and cache.load("C/v.avi") == record
  cache.store_failure("C/w.avi", "ValueError: corrupt")
  assert cache.status("C/w.avi") == "failed" and cache.failure("C/w.avi") == "ValueError: corrupt"
  cache.store("C/w.avi", record)  # prepared after all: the failure record goes
  assert cache.status("C/w.avi") == "done" and cache.failure("C/w.avi") is None
  leftover = tmp_path / "C" / "x.avi.npz.tmp-123"
  leftover.write_bytes(b"half")
  assert cache.remove_partial() == [leftover] and not leftover.exists()
  cache.path("C/v.avi").write_bytes(b"damaged")
  with pytest.raises(ValueError, match="damaged"):
    cache.load("C/v.avi")
  with pytest.raises(FileNotFoundError, match="data_prep.build"):
    cache.load("C/none.avi")
