"""Input conventions: the map from 0..255 frames to what each kind of pretrained weights expects."""

import numpy as np
import pytest

import arp_jax
from arp_jax import normalization


def test_normalize_follows_each_convention():
  x = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(arp_jax.normalize(x, "torchvision"), (x / 255 - mean) / std, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(arp_jax.normalize(x, "caffe"),
                             x - np.array([104.00698793, 116.66876762, 122.67891434])[::-1], atol=1e-4)
  assert arp_jax.normalize(x, "torchvision").dtype == np.float32
  # Flow: centred on 128; the stds of the RGB filters the flow conv1 came from (R, G or their mean).
  uv = x[..., :2]
  np.testing.assert_allclose(arp_jax.normalize(uv, "torchvision"), (uv / 255 - 128 / 255) / std[:2],
                             rtol=1e-5, atol=1e-5)
  flow_mean = normalization.convention("torchvision", "flow", flow_init="mean")
  np.testing.assert_allclose(arp_jax.normalize(uv, flow_mean), (uv - 128.0) / (255 * std.mean()),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(arp_jax.normalize(uv, "caffe"), uv - np.float32(128))
  # A restored dynamic image (zero-sum weights) gets the gain only.
  di = np.random.default_rng(2).normal(0, 300, (4, 5, 3)).astype(np.float32)
  np.testing.assert_allclose(arp_jax.normalize(di, "torchvision", zero_sum=True), di / (255 * std),
                             rtol=1e-5)
  convention = normalization.convention("torchvision")
  assert normalization.Convention.from_dict(convention.to_dict()) == convention
  with pytest.raises(ValueError, match="expected \\[..., 3\\] \\(RGB\\) or \\[..., 2\\]"):
    arp_jax.normalize(np.zeros((4, 5, 4)))
  with pytest.raises(ValueError, match="convention is 'imagenet'"):
    arp_jax.normalize(x, "imagenet")
  with pytest.raises(ValueError, match="flow_init is 'average'"):
    normalization.convention("torchvision", "flow", flow_init="average")


@pytest.mark.parametrize("name", normalization.CONVENTIONS)
def test_normalize_gives_the_per_channel_values_for_any_layout(name):
  # Contiguous frames are normalised row by row with the [C] vectors tiled (the fast path); strided
  # frames, a strided `out`, a single pixel and empty frames take other paths: every one must give
  # (x - offset) * gain channel by channel, exactly.
  rng = np.random.default_rng(3)
  for channels in (3, 2):
    convention = normalization.resolve(name, "rgb" if channels == 3 else "flow")
    frames = rng.integers(0, 256, (3, 6, 7, channels), dtype=np.uint8)
    for x in (frames, frames[:, ::2, 1:], frames[0, 0, 0], frames[:0]):
      expected = (x.astype(np.float32) - convention.offset) * convention.gain
      np.testing.assert_array_equal(arp_jax.normalize(x, convention), expected)
    out = np.zeros((3, 6, 14, channels), np.float32)
    got = arp_jax.normalize(frames, convention, out=out[:, :, ::2])
    np.testing.assert_array_equal(out[:, :, ::2], (frames - convention.offset) * convention.gain)
    assert got.base is out and not out[:, :, 1::2].any()
    np.testing.assert_array_equal(arp_jax.normalize(frames.astype(np.float32), convention, zero_sum=True),
                                  frames.astype(np.float32) * convention.gain)
