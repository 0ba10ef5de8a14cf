"""Converted (or trained-from-scratch) variables as Orbax checkpoints, with the input convention they
expect recorded beside the arrays (`CONVENTION_FILE`). Orbax loads when a checkpoint is written or read."""

from __future__ import annotations

from collections.abc import Mapping
import json
import os
from pathlib import Path

import jax
import numpy as np

from arp_jax import normalization
from arp_jax.normalization import Convention

# The input convention of a checkpoint, beside its arrays (`Convention.to_dict` as JSON).
CONVENTION_FILE = "input_convention.json"


def _input_modality(tree: Mapping) -> str:
  """"flow" when the tree's conv1 kernel (arrays or Orbax metadata) reads 2 channels, else "rgb"."""
  conv1 = tree.get("params", {}).get("conv1", {})
  kernel = conv1.get("kernel") if isinstance(conv1, Mapping) else None
  shape = tuple(getattr(kernel, "shape", ()))
  return "flow" if len(shape) == 4 and shape[2] == 2 else "rgb"


def save(variables: Mapping, directory, overwrite: bool = False,
         convention: str | Convention = "reference") -> Path:
  """Writes `variables` ({"params": ..., "batch_stats": ...}) as an Orbax checkpoint in `directory`, and
  the input convention the weights expect in `directory / CONVENTION_FILE`.

  The arrays are saved from host memory (NumPy), so the checkpoint carries no device placement and loads
  on any machine. `convention`: a name of `normalization.CONVENTIONS` (for RGB, or flow with flow_init
  "first" when conv1 reads 2 channels) or a `Convention`; "reference" (training from scratch) by default,
  `convert` passes its converter's. Returns the absolute directory. FileExistsError if it exists, unless
  `overwrite`; ValueError for a convention of the other modality than conv1's.
  """
  import orbax.checkpoint as ocp

  directory = Path(os.fspath(directory)).absolute()
  if directory.exists() and not overwrite:
    raise FileExistsError(f"{directory} already exists; choose a new directory or pass overwrite=True")
  if not isinstance(variables, Mapping):
    raise TypeError(f"variables is a {type(variables).__name__}; expected a dict like "
                    "{'params': ..., 'batch_stats': ...}")
  convention = normalization.resolve(convention, _input_modality(variables))
  host = jax.tree.map(np.asarray, dict(variables))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory, host, force=overwrite)
  (directory / CONVENTION_FILE).write_text(json.dumps(convention.to_dict(), indent=2) + "\n")
  return directory


def _metadata(checkpointer, directory: Path):
  """The tree of array metadata of a checkpoint of `save`; FileNotFoundError when there is none."""
  if not directory.is_dir():
    raise FileNotFoundError(f"no such checkpoint directory: {directory}")
  try:
    metadata = getattr(checkpointer.metadata(directory).item_metadata, "tree", None)
  except (FileNotFoundError, ValueError):
    metadata = None
  if metadata is None:
    raise FileNotFoundError(f"{directory} is not an Orbax checkpoint written by arp_jax.weights.save")
  return metadata


def load(directory) -> dict:
  """The variables saved by `save(variables, directory)`, as JAX arrays on the default device."""
  import orbax.checkpoint as ocp

  directory = Path(os.fspath(directory)).absolute()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  with ocp.StandardCheckpointer() as checkpointer:
    metadata = _metadata(checkpointer, directory)
    # Restoring onto an explicit device (rather than the one recorded at save time) lets a checkpoint
    # written on a GPU machine load on a CPU one.
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata)
    return checkpointer.restore(directory, abstract)


def read_convention(directory) -> Convention:
  """The input convention the weights of a `save` checkpoint expect (`arp_jax.normalization`).

  The one recorded in `directory / CONVENTION_FILE`; a checkpoint without that record (written before
  conventions were recorded, or by other code) is read as "reference", 0..255 minus the ImageNet mean,
  which training from scratch and the reference's own converted weights use: for RGB, or for flow
  (flow_init "first") when its conv1 reads 2 channels.

  Raises:
    FileNotFoundError: not a checkpoint directory. ValueError: the record is not a convention.
  """
  import orbax.checkpoint as ocp

  directory = Path(os.fspath(directory)).absolute()
  record = directory / CONVENTION_FILE
  if record.is_file():
    try:
      return Convention.from_dict(json.loads(record.read_text()))
    except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
      raise ValueError(f"{record} does not hold an input convention ({e}); write it with "
                       "arp_jax.weights.save(..., convention=...)") from None
  with ocp.StandardCheckpointer() as checkpointer:
    metadata = _metadata(checkpointer, directory)
  return normalization.convention("reference", _input_modality(metadata))
