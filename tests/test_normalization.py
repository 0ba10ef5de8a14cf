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
