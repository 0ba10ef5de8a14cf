"""Training videos kept decoded in memory (`DecodedSource`): the same batches as the source's, each video
read and decoded once, no cache in a pickled copy; and the symmetries' OpenCV copies equal NumPy's views."""

import itertools
import pickle

import numpy as np
import pytest

from arp_jax import input as ip
from arp_jax.input import symmetries
from arp_jax.input.augment import flip_code
from data_prep import synthetic
from pipeline_helpers import FRAME, T, dynamic_example


class _Counting:
  """A source that counts its reads."""

  def __init__(self, examples):
    self.examples, self.reads = examples, 0

  def __len__(self):
    return len(self.examples)

  def __getitem__(self, index):
    self.reads += 1
    return self.examples[index]


def _batches(source, modality, n):
  ds = ip.make_dataset(source, train=True, modality=modality, window=10, stride=6, max_windows=2, size=24,
                       batch_size=4, seed=0, num_epochs=None, scales=(32, 24), short_side=None, flip=False,
                       symmetries=synthetic.SYMMETRIES)
  iterator = iter(ds)
  return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_decoded_source_gives_the_same_batches_reading_each_video_once(train_source, modality):
  examples = [train_source[i] for i in range(len(train_source))]
  counting = _Counting(examples)
  decoded = ip.DecodedSource(counting, ip.FRAME_KEYS[modality])
  # 9 batches of 4: three epochs of the 12 videos, with crops, windows and symmetries drawn.
  for cached, read in zip(_batches(decoded, modality, 9), _batches(examples, modality, 9)):
    assert cached.keys() == read.keys()
    for key in cached:
      np.testing.assert_array_equal(cached[key], read[key], err_msg=key)
  # Read once per video, or twice when Grain's two reader threads met it at once (uncached: 36 reads).
  assert len(examples) <= counting.reads <= 2 * len(examples)
  example = decoded[0]
  other = "flow_x" if modality == "rgb" else "frames"
  assert other not in example and example["label"] == examples[0]["label"]
  shape = (T, FRAME, FRAME, 3) if modality == "rgb" else (T - 1, FRAME, FRAME)
  for key in ip.FRAME_KEYS[modality]:
    assert example[key].shape == shape and example[key].dtype == np.uint8
  stacked = example["frames"] if modality == "rgb" else np.stack([example["flow_x"], example["flow_y"]], -1)
  np.testing.assert_array_equal(stacked, ip.decode_video(examples[0], modality))


def test_a_pickled_decoded_source_carries_no_cache(train_source):
  examples = [train_source[i] for i in range(3)]
  decoded = ip.DecodedSource(examples, ip.FRAME_KEYS["rgb"])
  assert decoded.estimated_bytes(10) == 10 * T * FRAME * FRAME * 3
  for i in range(3):
    decoded[i]  # pylint: disable=pointless-statement
  fresh = ip.DecodedSource(examples, ip.FRAME_KEYS["rgb"])
  assert len(pickle.dumps(decoded)) == len(pickle.dumps(fresh))  # the examples, not their frames
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(decoded))[2]["frames"], decoded[2]["frames"])


@pytest.mark.parametrize("values", ["image", "restored"])
def test_decoded_dynamic_images_give_the_same_batches(test_source, values):
  examples = [dynamic_example(test_source[i], "flow", 0)[0] for i in range(4)]
  decoded = ip.DecodedSource(examples, ip.DYNAMIC_IMAGE_KEYS["flow"])
  batches = [next(iter(ip.make_dynamic_image_dataset(
      source, train=True, modality="flow", max_windows=2, size=FRAME, batch_size=4, seed=0, num_epochs=1,
      scales=(FRAME,), values=values, short_side=None))) for source in (decoded, examples)]
  for key in batches[0]:
    np.testing.assert_array_equal(batches[0][key], batches[1][key], err_msg=key)


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint8, 2), (np.float32, 2), (np.float64, 3)])
def test_symmetries_copy_what_views_show(dtype, channels):
  image = np.random.default_rng(0).integers(0, 256, (2, 3, 6, 6, channels)).astype(dtype)

  def viewed(x, applied, negate):  # the transforms as views, one after another
    for name in applied:
      x = {"hflip": x[..., ::-1, :], "vflip": x[..., ::-1, :, :], "transpose": x.swapaxes(-3, -2)}[name]
      if negate is not None:
        x = x[..., ::-1] if name == "transpose" else np.stack(
            [negate(x[..., 0]), x[..., 1]] if name == "hflip" else [x[..., 0], negate(x[..., 1])], -1)
    return x

  negates = [None] + ([flip_code, np.negative] if channels == 2 else [])
  for count, negate in itertools.product(range(4), negates):
    for applied in itertools.combinations(symmetries.SYMMETRIES, count):
      for source in (image, image[..., ::-1, :, :]):  # contiguous, and a view
        out = symmetries.transform(source, applied, negate)
        np.testing.assert_array_equal(out, viewed(source, applied, negate), err_msg=str(applied))
        assert out.dtype == dtype and (not applied or out.flags.c_contiguous)
