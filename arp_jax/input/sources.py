"""Random-access sources of prepared datasets, read from their folders (array_record, no TensorFlow).

A dataset that `data_prep` prepared (`arp-jax build`, `arp-jax synthetic-data`, `arp-jax mini-data`)
lives in `data_dir/<name>/<config>/<version>/`; it is read from there with
`tfds.builder_from_directory`, which rebuilds its features from the stored `features.json`. So reading
needs neither TFDS's registry nor the code that built the dataset (`data_prep`), and a dataset that is
not there is an error naming the folder, never a build.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

PREPARE = ("prepare it with `arp-jax build` (`python -m data_prep.build`; `arp-jax synthetic-data` or "
           "`arp-jax mini-data` for the synthetic and miniature datasets), or pass the data folder that "
           "holds it (config.dataset.data_dir)")


class _JpegBytes(tfds.decode.SkipDecoding):
  """Leaves a sequence of JPEGs as bytes, for the NumPy (TensorFlow-free) reader.

  `tfds.decode.SkipDecoding` alone fails there on sequences (tensorflow-datasets 4.9.10): the NumPy
  reader asks a decoder of a `Sequence(Image)` for `decode_batch_example_np`, which it lacks.
  """

  def decode_batch_example_np(self, serialized_example):
    return serialized_example  # object array [T] of JPEG bytes


def _version(folder: Path) -> tuple[int, ...] | None:
  """(major, minor, patch) of a complete version folder, or None (not a version, or a build that did not
  finish: TFDS writes `dataset_info.json` last)."""
  parts = folder.name.split(".")
  if len(parts) != 3 or not all(part.isdigit() for part in parts):
    return None
  return tuple(map(int, parts)) if (folder / "dataset_info.json").is_file() else None


def dataset_folder(name: str, data_dir=None) -> Path:
  """The folder of the newest prepared version of `name` ("ucf101_frames/split1", or with ":1.0.0" a
  given version) under `data_dir` (default: TFDS's, ~/tensorflow_datasets).

  Raises:
    ValueError: `name` is not a non-empty string.
    FileNotFoundError: no prepared version of `name` under `data_dir`.
  """
  if not isinstance(name, str) or not name.strip("/:"):
    raise ValueError(f"name is {name!r}; expected a dataset name, e.g. 'ucf101_frames/split1'")
  name, _, wanted = name.partition(":")
  root = Path(os.path.expanduser(os.fspath(data_dir or tfds.core.constants.DATA_DIR))) / name
  versions = {}
  if root.is_dir():
    versions = {version: folder for folder in root.iterdir() if (version := _version(folder))}
  if wanted:
    versions = {version: folder for version, folder in versions.items() if folder.name == wanted}
  if not versions:
    what = f"version {wanted}" if wanted else "version"
    raise FileNotFoundError(f"dataset {name!r} is not prepared under {root} (no {what} folder with a "
                            f"dataset_info.json); {PREPARE}")
  return versions[max(versions)]


def prepared_builder(name: str, data_dir=None) -> tfds.core.DatasetBuilder:
  """The read-only TFDS builder of a prepared dataset (its info: splits, classes), from its folder.

  Raises:
    ValueError, FileNotFoundError: as `dataset_folder`.
  """
  return tfds.builder_from_directory(dataset_folder(name, data_dir))


def data_source(name: str, split: str, data_dir=None):
  """A random-access source of a prepared dataset's split whose JPEG sequences stay bytes.

  The pipelines then decode only the frames of the windows they sample (`arp_jax.input.decode`, with the
  decoder that wrote them; the pixels equal TFDS's own decoding), instead of the whole video. The source
  pickles, so worker processes can read it.

  Args:
    name: "ucf101_frames/split1", "hmdb51_dynamic_images/split1_w10s6", "synthetic_motion/default", ...
    split: "train" or "test" (the dataset's splits).
    data_dir: the data folder the dataset was prepared in (default: TFDS's).

  Raises:
    ValueError: `name` or `split` is not a string, or `split` is not a split of the dataset.
    FileNotFoundError: the dataset is not prepared under `data_dir`.
  """
  if not isinstance(split, str) or not split:
    raise ValueError(f"split is {split!r}; expected a split name, e.g. 'train' or 'test'")
  builder = prepared_builder(name, data_dir)
  if split not in builder.info.splits:
    raise ValueError(f"split is {split!r}; expected one of {sorted(builder.info.splits)} of {name}")
  decoders = {key: _JpegBytes() for key, feature in builder.info.features.items()
              if isinstance(feature, tfds.features.Sequence) and isinstance(feature.feature,
                                                                            tfds.features.Image)}
  return builder.as_data_source(split, decoders=decoders)
