"""The pipelines: Grain batching in the window layout, seeds, epochs, shards, resuming, eval padding.

The pipelines run on a tiny synthetic_motion build (tests/input/conftest.py) with 0 workers and small
outputs, and compile nothing.
"""

import json

import numpy as np
import pytest

import arp_jax
from arp_jax import input as ip
from arp_jax import normalization
from pipeline_helpers import FRAME, T, dynamic_example, iterator_state, restore_iterator, stored_images


def _train(source, **overrides):
  options = dict(train=True, modality="rgb", window=10, stride=6, max_windows=3, size=16, batch_size=4,
                 seed=0, num_epochs=None, short_side=None)
  options.update(overrides)
  return ip.make_dataset(source, **options)


def _eval(source, **overrides):
  options = dict(train=False, modality="rgb", window=10, stride=6, max_windows=4, size=16, batch_size=5,
                 seed=0, num_epochs=None, short_side=None)
  options.update(overrides)
  return ip.make_dataset(source, **options)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_the_pipelines_crop_in_the_frame_resized_to_short_side(test_source):
  """make_dataset and make_dynamic_image_dataset pass short_side to the crops: the test crop of 16 of the
  32 x 32 frames resized to short side 64 is their centred 8 x 8."""
  example = test_source[0]
  frames = ip.decode_video(example, "rgb")[:10]  # the first test window
  expected = ip.augment(frames, (12, 12, 8, 8, False), 16, "rgb")
  batch = next(iter(_eval([example], batch_size=1, short_side=64)))  # every window kept, in order
  np.testing.assert_array_equal(batch["frames"][0, 0], expected)
  stored = next(iter(_eval([example], batch_size=1)))  # short_side=None: the centred 16 x 16
  expected = ip.augment(frames, (8, 8, 16, 16, False), 16, "rgb")
  np.testing.assert_array_equal(stored["frames"][0, 0], expected)
  dynamic, _, _, _ = dynamic_example(example, "rgb", 0)
  images = stored_images(dynamic, "rgb")[:1].astype(np.uint8)
  batch = next(iter(ip.make_dynamic_image_dataset([dynamic], train=False, modality="rgb", max_windows=4,
                                                  size=16, batch_size=1, seed=0, num_epochs=1,
                                                  short_side=64)))
  np.testing.assert_array_equal(batch["frames"][0, 0], ip.augment(images, (12, 12, 8, 8, False), 16, "rgb"))


def test_pipelines_apply_the_convention_affine_map(test_source):
  """The convention changes only the map from 0..255 values, (x - offset) * gain: the same crops."""
  for modality in ("rgb", "flow"):
    batches = {name: next(iter(_eval(test_source, modality=modality, **convention)))["frames"]
               for name, convention in (("default", {}), ("reference", {"convention": "reference"}),
                                        ("torchvision", {"convention": "torchvision"}))}
    np.testing.assert_array_equal(batches["default"], batches["reference"])
    tv = normalization.convention("torchvision", modality)
    reference = normalization.convention("reference", modality)
    np.testing.assert_allclose(batches["torchvision"],
                               (batches["reference"] + reference.offset - tv.offset) * tv.gain, atol=2e-6)

    example = dynamic_example(test_source[0], modality, 0)[0]
    for values, zero_sum in (("image", False), ("restored", True)):
      images = {name: next(iter(ip.make_dynamic_image_dataset(
          [example] * 2, train=False, modality=modality, max_windows=2, size=FRAME, batch_size=2, seed=0,
          num_epochs=1, values=values, convention=name)))["frames"] for name in ("reference", "torchvision")}
      shift = 0 if zero_sum else reference.offset - tv.offset  # the offset cancels in zero-sum ARP weights
      np.testing.assert_allclose(images["torchvision"], (images["reference"] + shift) * tv.gain,
                                 rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("modality, channels, frames", [("rgb", 3, T), ("flow", 2, T - 1)])
def test_training_batches(train_source, modality, channels, frames):
  batch = next(iter(_train(train_source, modality=modality)))
  assert batch["frames"].shape == (4, 3, 10, 16, 16, channels) and batch["frames"].dtype == np.float32
  assert batch["windows"].dtype == batch["label"].dtype == np.int32 and set(batch) == {"frames", "windows",
                                                                                     "label"}
  # From frame 3, tau 10, stride 6: 2 windows of T (or T - 1) frames, the third slot repeats the second.
  assert arp_jax.num_windows(frames, 10, 6, 2) == 2
  np.testing.assert_array_equal(batch["windows"], 2)
  np.testing.assert_array_equal(batch["frames"][:, 2], batch["frames"][:, 1])
  assert set(batch["label"]) <= set(range(12))
  assert np.abs(batch["frames"]).max() <= 255 and np.abs(batch["frames"].mean()) < 64  # mean removed


def test_same_seed_same_batches_and_other_seeds_differ(train_source):
  first = _take(iter(_train(train_source)), 4)  # past the first epoch of 3 batches
  _assert_same_batches(first, _take(iter(_train(train_source)), 4))
  other = _take(iter(_train(train_source, seed=1)), 4)
  assert not np.array_equal(first[0]["label"], other[0]["label"])
  assert not np.array_equal(first[0]["frames"], other[0]["frames"])
  # A new epoch is a new order and new crops.
  second_epoch = _take(iter(_train(train_source, batch_size=12)), 2)
  assert sorted(second_epoch[0]["label"]) == sorted(second_epoch[1]["label"]) == list(range(12))
  assert not np.array_equal(second_epoch[0]["label"], second_epoch[1]["label"])


def test_finite_epochs_and_the_remainder(train_source):
  kept = list(_train(train_source, batch_size=5, num_epochs=1))
  assert [len(b["label"]) for b in kept] == [5, 5]
  everything = list(_train(train_source, batch_size=5, num_epochs=1, drop_remainder=False))
  assert [len(b["label"]) for b in everything] == [5, 5, 2]
  assert sorted(np.concatenate([b["label"] for b in everything])) == list(range(12))


def test_a_resumed_iterator_continues_with_the_same_batches(train_source):
  dataset = _train(train_source)
  iterator = iter(dataset)
  _take(iterator, 2)
  state = iterator_state(iterator)
  assert json.loads(state) == iterator.get_state()
  expected = _take(iterator, 3)  # crosses into the second epoch
  _assert_same_batches(_take(restore_iterator(_train(train_source), state), 3), expected)
  _assert_same_batches(_take(restore_iterator(dataset, json.loads(state)), 3), expected)


def test_eval_covers_every_video_once_and_pads_the_last_batch(test_source):
  batches = list(_eval(test_source))
  assert [b["frames"].shape for b in batches] == [(5, 4, 10, 16, 16, 3)] * 3
  valid = np.concatenate([b["valid"] for b in batches])
  np.testing.assert_array_equal(valid, [True] * 12 + [False] * 3)
  index = np.concatenate([b["index"] for b in batches])
  np.testing.assert_array_equal(index[valid], np.arange(12))
  labels = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(labels[valid], [test_source[i]["label"] for i in range(12)])
  names = ip.decode_names(np.concatenate([b["name"] for b in batches])[valid])
  assert names == [bytes(test_source[i]["name"]).decode() for i in range(12)] and all(names)
  # Test windows from frame 1 of 16: 2 windows of 10 (the second padded), of the 4 slots.
  np.testing.assert_array_equal(np.concatenate([b["windows"] for b in batches]), 2)
  # Centre crops, no randomness left: a second pass is identical.
  _assert_same_batches(batches, list(_eval(test_source)))


def test_eval_shards_give_every_host_the_same_number_of_batches(test_source):
  hosts = [list(_eval(test_source, batch_size=3, shard_index=i, shard_count=5)) for i in range(5)]
  assert {len(batches) for batches in hosts} == {1}  # ceil(12 / 5) = 3 videos each, padding included
  seen = np.concatenate([b["index"][b["valid"]] for batches in hosts for b in batches])
  np.testing.assert_array_equal(np.sort(seen), np.arange(12))


def test_sharded_training_reads_disjoint_shares(train_source):
  labels = [np.concatenate([b["label"] for b in _train(train_source, batch_size=2, num_epochs=1,
                                                       shard_index=i, shard_count=3)]) for i in range(3)]
  assert [len(x) for x in labels] == [4, 4, 4]
  assert sorted(np.concatenate(labels)) == list(range(12))


@pytest.mark.parametrize("overrides, match", [
    (dict(modality="depth"), "modality is 'depth'"),
    (dict(shard_index=3, shard_count=3), "shard_index is 3; expected 0..2"),
    (dict(batch_size=0), "batch_size is 0"),
    (dict(num_epochs=0), "num_epochs is 0"),
    (dict(seed=-1), "seed is -1"),
    (dict(window=0), "window is 0"),
    (dict(num_workers=-1), "num_workers is -1"),
    (dict(read_options=4), "expected grain.ReadOptions"),
])
def test_make_dataset_errors(train_source, overrides, match):
  with pytest.raises(ValueError, match=match):
    _train(train_source, **overrides)


def test_more_make_dataset_errors(train_source):
  with pytest.raises(ValueError, match="num_epochs is 2 in eval mode"):
    _eval(train_source, num_epochs=2)
  with pytest.raises(ValueError, match="expected a non-empty random-access source"):
    _train([])
  with pytest.raises(ValueError, match="host 2 of 3 has no video"):
    _train([train_source[0], train_source[1]], shard_index=2, shard_count=3)
  with pytest.raises(ValueError, match="expected iter\\(make_dataset"):
    iterator_state([1, 2])
  with pytest.raises(ValueError, match="state is not JSON"):
    restore_iterator(_train(train_source), "{")
  with pytest.raises(ValueError, match="expected the grain.IterDataset"):
    restore_iterator([1, 2], "{}")


@pytest.mark.parametrize("values", ["restored", "image"])
def test_dynamic_flow_flip_negates_u(test_source, values):
  example, _, _, _ = dynamic_example(test_source[1], "flow", 2)
  if values == "restored":
    restored = ip.decode_dynamic_images(example, "flow")
  else:  # the 8-bit images minus 128: negating u is the code 255 - q, i.e. 127 - (q - 128)
    restored = stored_images(example, "flow") - 128
  # Crops of the whole image: only the flip is random.
  ds = ip.make_dynamic_image_dataset([example] * 8, train=True, modality="flow", max_windows=2, size=FRAME,
                                     batch_size=8, seed=0, num_epochs=1, scales=(FRAME,), values=values,
                                     short_side=None)
  batch = next(iter(ds))
  assert batch["frames"].shape == (8, 2, 1, FRAME, FRAME, 2) and set(batch) == {"frames", "windows", "label"}
  np.testing.assert_array_equal(batch["windows"], 2)
  u = -restored[..., ::-1, 0] - (1 if values == "image" else 0)
  flipped = np.stack([u, restored[..., ::-1, 1]], -1)
  kinds = set()
  for images in batch["frames"][:, :, 0]:
    for image, original, mirrored in zip(images, restored, flipped):
      if np.allclose(image, original, atol=1e-3):
        kinds.add("kept")
      else:
        np.testing.assert_allclose(image, mirrored, atol=1e-3)
        kinds.add("flipped")
  assert kinds == {"kept", "flipped"}
