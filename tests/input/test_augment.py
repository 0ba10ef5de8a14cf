"""Crop, resize, flip and normalisation of one window: flow flips, mean subtraction, conventions."""

import cv2
import numpy as np
import pytest

import arp_jax
from arp_jax import input as ip
from arp_jax import normalization


def test_flow_flip_negates_the_horizontal_displacement():
  frames = np.empty((2, 8, 8, 2), np.uint8)
  frames[..., 0], frames[..., 1] = 200, 77
  flipped = ip.augment(frames, (0, 0, 8, 8, True), 8, "flow")
  np.testing.assert_array_equal(flipped[..., 0], 55 - 128.0)  # u -> 255 - u, minus the mean 128
  np.testing.assert_array_equal(flipped[..., 1], 77 - 128.0)  # v unchanged
  kept = ip.augment(frames, (0, 0, 8, 8, False), 8, "flow")
  np.testing.assert_array_equal(kept[..., 0], 200 - 128.0)
  assert flipped.dtype == np.float32 and flipped.shape == (2, 8, 8, 2)


def test_rgb_crop_flip_and_mean_subtraction():
  frames = np.zeros((3, 6, 8, 3), np.uint8)
  frames[..., 0] = np.arange(8) * 10  # red grows to the right
  frames[..., 1], frames[..., 2] = 200, 50
  out = ip.augment(frames, (1, 2, 4, 4, True), 4, "rgb")  # columns 2..5, mirrored, same size
  np.testing.assert_allclose(out[0, 0, :, 0], np.array([50, 40, 30, 20]) - 123.675, rtol=1e-6)
  np.testing.assert_allclose(out[..., 1], 200 - 116.28, rtol=1e-6)
  np.testing.assert_allclose(out[..., 2], 50 - 103.53, rtol=1e-6)
  resized = ip.augment(frames, (0, 0, 6, 8, False), 16, "rgb")
  assert resized.shape == (3, 16, 16, 3)
  np.testing.assert_allclose(resized[..., 1], 200 - 116.28, rtol=1e-6)  # constant stays constant


def test_augment_errors():
  frames = np.zeros((2, 8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match=r"expected uint8 \[tau, H, W, 2\] \(flow\)"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "flow")
  with pytest.raises(ValueError, match="runs past the 8 x 8 frames"):
    ip.augment(frames, (4, 0, 8, 8, False), 8, "rgb")
  with pytest.raises(ValueError, match="expected \\(top, left, crop_h, crop_w, flip\\)"):
    ip.augment(frames, (0, 0, 8), 8, "rgb")
  with pytest.raises(ValueError, match="modality is 'depth'"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "depth")
  with pytest.raises(ValueError, match="convention is 'imagenet'"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "rgb", convention="imagenet")
  with pytest.raises(ValueError, match="the input convention is for flow"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "rgb", convention=normalization.convention("caffe", "flow"))


def test_the_default_convention_is_the_reference_mean_subtraction_bit_for_bit():
  rng = np.random.default_rng(0)
  for modality, mean in (("rgb", ip.RGB_MEAN), ("flow", ip.FLOW_MEAN)):
    frames = rng.integers(0, 256, (2, 20, 24, ip.CHANNELS[modality]), dtype=np.uint8)
    resized = np.stack([cv2.resize(frame[1:13, 2:19], (9, 9), interpolation=cv2.INTER_LINEAR)[:, ::-1]
                        for frame in frames])
    if modality == "flow":
      resized[..., 0] = 255 - resized[..., 0]
    expected = resized.astype(np.float32) - np.float32(mean)
    for convention in ({}, {"convention": "reference"}):
      np.testing.assert_array_equal(ip.augment(frames, (1, 2, 12, 17, True), 9, modality, **convention),
                                    expected)
    np.testing.assert_array_equal(arp_jax.normalize(frames), frames.astype(np.float32) - np.float32(mean))
