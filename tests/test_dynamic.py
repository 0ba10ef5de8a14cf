"""Precomputed dynamic images (data_prep.dynamic), JPEG bytes (data_prep.jpeg) and the video cache."""

import cv2
import numpy as np
import pytest

import arp_jax
from data_prep.cache import VideoCache
from data_prep.dynamic import dynamic_images, to_uint8
from data_prep.jpeg import decode_jpeg, encode_jpeg
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
  assert ProcessOptions().tag == "flow-tvl1_bound-20_side-orig_q95"
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
