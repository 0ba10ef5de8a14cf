"""Class-mapping symmetries: the maps checked, the images and flow transformed, and, through the training
transform on prepared synthetic videos, the label moved exactly as the motion in the frames and flow."""

import numpy as np
import pytest

from arp_jax import input as ip
from arp_jax.input import symmetries
from arp_jax.input.augment import flip_code
from data_prep import synthetic
from pipeline_helpers import FRAME, T


def test_maps_are_checked_and_ordered():
  checked = ip.check_symmetries({"transpose": [1, 0], "hflip": (0, np.int64(1))})
  assert checked == (("hflip", (0, 1)), ("transpose", (1, 0)))
  assert ip.check_symmetries(None) == ip.check_symmetries({}) == ()
  assert ip.check_symmetries(synthetic.SYMMETRIES)[0][0] == "hflip"


@pytest.mark.parametrize("value, match", [
    ({"rotate": [0, 1]}, r"symmetries has \['rotate'\]"),
    ({"hflip": [0, 0]}, "a permutation of 0..K-1"),
    ({"hflip": [1, 2, 0]}, "its own inverse"),  # a permutation, but a mirror applied twice is the identity
    ({"hflip": "10"}, "a list of class indices"),
    ({"hflip": [0.0, 1.0]}, "a list of class indices"),
    ({"hflip": [1, 0], "vflip": [0, 1, 2]}, "one number of classes"),
])
def test_bad_maps_get_one_clear_error(value, match):
  with pytest.raises(ValueError, match=match):
    ip.check_symmetries(value)


def test_flip_and_hflip_exclude_each_other():
  with pytest.raises(ValueError, match="flip is True and symmetries has 'hflip'"):
    ip.VideoTransform(train=True, modality="rgb", window=1, stride=1, max_windows=1, size=16, flip=True,
                      symmetries={"hflip": [1, 0]})


def test_images_move_and_flow_turns_with_them():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
  np.testing.assert_array_equal(symmetries.transform(image, ("hflip",), None), image[:, ::-1])
  np.testing.assert_array_equal(symmetries.transform(image, ("vflip", "transpose"), None),
                                image[::-1].transpose(1, 0, 2))
  # A uniform motion (u, v) = (+2, -1) px, as stored codes (q = (d + 20) * 255 / 40, 127.5 = none).
  flow = np.stack([np.full((4, 4), 140.25), np.full((4, 4), 121.125)], -1)
  displacement = lambda f: tuple(np.round(f[0, 0] * 40 / 255 - 20, 6))
  turned = {applied: displacement(symmetries.transform(flow, applied, flip_code))
            for applied in [("hflip",), ("vflip",), ("transpose",), ("hflip", "transpose")]}
  assert turned == {("hflip",): (-2, -1), ("vflip",): (2, 1), ("transpose",): (-1, 2),
                    ("hflip", "transpose"): (-1, -2)}
  # Pooled values (dynamic images of flow) are negated about 0.
  pooled = np.stack([np.full((2, 2), 3.0), np.full((2, 2), -1.0)], -1)
  assert tuple(symmetries.transform(pooled, ("hflip",), np.negative)[0, 0]) == (-3.0, -1.0)
  assert flow[0, 0, 0] == 140.25  # the caller's array untouched


def _direction(frames: np.ndarray, modality: str) -> str:
  """The direction a window [tau, H, W, C] of normalised frames or flow shows, as the synthetic classes
  name it: RGB from the shape's displacement between the first and last frames (the shape is brighter
  than the background, which is static), flow from the mean displacement where there is motion."""
  if modality == "rgb":
    change = (frames[-1] - frames[0]).sum(-1)
    ys, xs = np.mgrid[:change.shape[0], :change.shape[1]]
    arrived, left = np.clip(change, 0, None), np.clip(-change, 0, None)
    dx = (xs * arrived).sum() / arrived.sum() - (xs * left).sum() / left.sum()
    dy = (ys * arrived).sum() / arrived.sum() - (ys * left).sum() / left.sum()
  else:
    flow = frames + 0.5  # codes - 128 -> codes - 127.5, the displacement in 1/6.375 px
    weight = np.abs(flow).sum(-1)  # where the shape moves counts, the background's noise barely
    dx, dy = (flow[..., 0] * weight).sum(), (flow[..., 1] * weight).sum()
  if abs(dx) > abs(dy):
    return "right" if dx > 0 else "left"
  return "down" if dy > 0 else "up"


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_training_videos_are_relabelled_as_they_are_transformed(train_source, modality):
  """Every prepared video of the 12 classes, under each of the 8 symmetries of the square the draws give:
  the direction its transformed frames (or flow) show is the direction of its new label, and its shape
  is kept. Without the relabelling, 3 of 4 draws would show another direction than their label's."""
  transform = ip.VideoTransform(train=True, modality=modality, window=T if modality == "rgb" else T - 1,
                                stride=1, max_windows=1, size=FRAME, scales=(FRAME,), flip=False,
                                short_side=None, symmetries=synthetic.SYMMETRIES)
  seen = set()
  for index in range(len(train_source)):
    element = ip.transforms.Element(index, train_source[index])
    original = synthetic.class_name(element.example["label"])
    for seed in range(8):
      out = transform(element, np.random.default_rng(seed))
      shape, direction = synthetic.class_name(int(out["label"])).split("_")
      assert shape == original.split("_")[0]
      assert _direction(out["frames"][0], modality) == direction, (original, seed)
      seen.add((original, direction))
  assert len(seen) > 24  # the draws moved most classes to other directions
