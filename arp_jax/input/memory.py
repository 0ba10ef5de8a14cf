"""A source that keeps its videos decoded in memory: after the first epoch, no read and no JPEG decode.

For a training split whose decoded images fit in memory (the synthetic benchmark's 960 training videos:
189 MB of RGB frames, 118 MB of flow), `DecodedSource` wraps a random-access source: the first read of a
video decodes every image of the sequences a pipeline uses (`decode.FRAME_KEYS` or `DYNAMIC_IMAGE_KEYS` of
its modality) into one uint8 array per sequence and drops the other modality's; later reads return that
example. The per-video transforms take decoded images as they take those TFDS decoded
(`decode._decode_image`), and JPEG decoding is deterministic, so the batches are those of the source
itself, bit for bit. Speed: benchmarks/input_bench.py.

Grain's reader threads share one cache (two threads that decode the same video at once store equal
arrays); worker processes (`num_workers > 0`) each fill their own, since a pickled `DecodedSource` carries
none.
"""

from __future__ import annotations

import os

import numpy as np

from arp_jax.input.decode import DYNAMIC_IMAGE_KEYS, FRAME_KEYS, decode_sequences, sequences

# Every image sequence a dataset may hold: what a DecodedSource does not decode, it drops.
_SEQUENCE_KEYS = frozenset(key for keys in (*FRAME_KEYS.values(), *DYNAMIC_IMAGE_KEYS.values())
                           for key in keys)


def physical_memory_bytes() -> int:
  """This host's physical memory in bytes (POSIX)."""
  return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class DecodedSource:
  """`source` (random access: `len`, `[i]` -> example) with the sequences `keys` decoded once and kept.

  An example comes back with `keys` as uint8 [N, H, W, 3] (one RGB sequence) or [N, H, W] (one per grey
  flow channel), its other fields as they were, and no other image sequence.
  """

  def __init__(self, source, keys: tuple[str, ...]):
    self._source = source
    self._keys = tuple(keys)
    self._cache: dict[int, dict] = {}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    example = self._cache.get(index)
    if example is None:
      example = self._decode(index)
      self._cache[index] = example
    return example

  def _decode(self, index: int) -> dict:
    example = self._source[index]
    images = sequences(example, self._keys)  # checks that it is an example with these sequences
    decoded = decode_sequences(images, self._keys, np.arange(len(images[0])))  # [N, H, W, C]
    if len(self._keys) == 1:
      planes = {self._keys[0]: decoded}
    else:  # one grey sequence per channel, as stored
      planes = {key: np.ascontiguousarray(decoded[..., c]) for c, key in enumerate(self._keys)}
    kept = {key: value for key, value in example.items() if key not in _SEQUENCE_KEYS}
    return {**kept, **planes}

  def estimated_bytes(self, videos: int) -> int:
    """About what `videos` decoded videos take in memory: `videos` times the first one's size."""
    first = self[0]
    return videos * sum(first[key].nbytes for key in self._keys)

  def __getstate__(self) -> dict:
    return {"_source": self._source, "_keys": self._keys, "_cache": {}}
