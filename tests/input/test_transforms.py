"""The per-video transforms: their fields checked once, and video names as fixed-width arrays."""

import numpy as np
import pytest

from arp_jax import input as ip


def test_video_names_as_fixed_width_arrays():
  codes = np.stack([ip.encode_name(b"v_Punch_g01_c01.avi"), ip.encode_name("punch/été.avi"),
                    ip.encode_name("")])
  assert codes.shape == (3, ip.NAME_BYTES) and codes.dtype == np.uint8
  assert ip.decode_names(codes) == ["v_Punch_g01_c01.avi", "punch/été.avi", ""]
  with pytest.raises(ValueError, match="at most 256"):
    ip.encode_name("x" * 257)


@pytest.mark.parametrize("fields, error, match", [
    (dict(modality="depth"), ValueError, "modality is 'depth'"),
    (dict(size=0), ValueError, "size is 0"),
    (dict(max_windows=2.0), TypeError, "max_windows is 2.0"),
    (dict(flip="no"), TypeError, "flip is 'no'"),
    (dict(scales=()), ValueError, "scales is"),
    (dict(convention="imagenet"), ValueError, "convention is 'imagenet'"),
])
def test_transforms_check_their_fields_once_when_made(fields, error, match):
  common = {**dict(train=True, modality="rgb", max_windows=2, size=16, short_side=None), **fields}
  with pytest.raises(error, match=match):
    ip.VideoTransform(window=10, stride=6, **common)
  with pytest.raises(error, match=match):
    ip.DynamicImageTransform(**common)
  with pytest.raises(ValueError, match="values is 'raw'"):
    ip.DynamicImageTransform(train=True, modality="rgb", max_windows=2, size=16, values="raw")


def test_transforms_hold_their_fields_normalised():
  """Made once, a transform holds what its per-video call uses: ints, a tuple of scales, a Convention."""
  transform = ip.VideoTransform(train=np.bool_(True), modality="flow", window=np.int64(10), stride=6,
                                max_windows=3, size=16, scales=[32, 24], convention="torchvision")
  assert transform.window == 10 and type(transform.window) is int and transform.train is True
  assert transform.scales == (32, 24)
  assert transform.convention.name == "torchvision" and transform.convention.modality == "flow"
