"""Test-only helpers of the input pipeline: resuming an iterator from its state, and dynamic-image examples
made as the dataset builders make them."""

import json

import grain
import numpy as np

from arp_jax import input as ip
from arp_jax.input import decode
from arp_jax.jpeg import encode_jpeg
from data_prep.dynamic import dynamic_images, to_uint8

# The prepared dataset of tests/input/conftest.py: its name, frames per video and frame side.
NAME = "synthetic_motion/pipeline_test"
T, FRAME = 16, 32


def iterator_state(iterator) -> str:
  """The position of a pipeline iterator as a JSON string (what Grain's Orbax handler writes).

  Raises:
    ValueError: `iterator` is not a Grain iterator (it has no get_state).
  """
  if not hasattr(iterator, "get_state"):
    raise ValueError(f"iterator is a {type(iterator).__name__}; expected iter(make_dataset(...)), a Grain "
                     "DatasetIterator")
  return json.dumps(iterator.get_state())


def restore_iterator(dataset: grain.IterDataset, state) -> grain.DatasetIterator:
  """A new iterator of `dataset` (the same pipeline as the saved iterator's) that continues where the
  iterator that gave `state` (`iterator_state(...)`, a JSON string or bytes, or `get_state()`'s dict) was.

  Raises:
    ValueError: `dataset` is not a Grain IterDataset or `state` is not a state.
  """
  if not isinstance(dataset, grain.IterDataset):
    raise ValueError(f"dataset is a {type(dataset).__name__}; expected the grain.IterDataset of "
                     "make_dataset(...)")
  if isinstance(state, (str, bytes)):
    try:
      state = json.loads(state)
    except json.JSONDecodeError as error:
      raise ValueError(f"state is not JSON ({error}); expected iterator_state(iterator)") from None
  if not isinstance(state, dict):
    raise ValueError(f"state is a {type(state).__name__}; expected iterator_state(iterator) or a get_state() "
                     "dict")
  iterator = iter(dataset)
  iterator.set_state(state)
  return iterator


def dynamic_example(example, modality, start):
  """A `*_dynamic_images/..._w10s6` example made from a frames example as `_DynamicImagesBuilder` makes it,
  and its 8-bit images, low and high."""
  frames = ip.decode_video(example, modality)
  images, low, high = to_uint8(dynamic_images(frames, 10, 6, start))
  if modality == "rgb":
    encoded = {"images": [encode_jpeg(image) for image in images]}
  else:
    encoded = {"images_x": [encode_jpeg(image[..., 0]) for image in images],
               "images_y": [encode_jpeg(image[..., 1]) for image in images]}
  return dict(name=example["name"], label=example["label"], low=low, high=high, **encoded), images, low, high


def stored_images(example, modality) -> np.ndarray:
  """The 8-bit images of a dynamic-images example as float32 [S, H, W, C]."""
  keys = ip.DYNAMIC_IMAGE_KEYS[modality]
  images = decode.sequences(example, keys)
  return decode.decode_sequences(images, keys, np.arange(len(images[0]))).astype(np.float32)
