"""What every converter shares: the checkpoint's layouts to Flax's, and the check of a checkpoint against
the model's own variable tree (from `jax.eval_shape` of its init), which names the key at fault."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import os
from pathlib import Path
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import models
from arp_jax.checks import is_int
from arp_jax.models import layers
from arp_jax.normalization import FLOW_INITS

# A fresh classifier (num_classes differing from the checkpoint's) is drawn from this key unless the
# caller passes `rng`, so that a conversion is reproducible by default.
DEFAULT_CLASSIFIER_SEED = 0

# Where a converted array goes: collection ("params" or "batch_stats"), path in the Flax tree, the shape
# the checkpoint must have, and the function from the checkpoint's layout to Flax's.
Target = tuple[str, tuple[str, ...], tuple[int, ...], Callable[[np.ndarray], np.ndarray]]


def conv_to_flax(w: np.ndarray) -> np.ndarray:
  # OIHW (grouped: O, I/groups, kh, kw) -> HWIO (kh, kw, I/groups, O): Flax and torch both give output
  # channel o to group o // (O / groups), so grouped kernels need no other reordering.
  return w.transpose(2, 3, 1, 0)


def dense_to_flax(w: np.ndarray) -> np.ndarray:
  return w.T  # (out, in) -> (in, out)


def same(w: np.ndarray) -> np.ndarray:
  return w


def source_layout(kernel_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The checkpoint shape (OIHW or out x in) of a Flax kernel (HWIO or in x out)."""
  if len(kernel_shape) == 4:
    kh, kw, i, o = kernel_shape
    return (o, i, kh, kw)
  return tuple(reversed(kernel_shape))


def abstract_variables(arch: str, num_classes: int, in_channels: int) -> dict:
  """The ShapeDtypeStruct tree of `arch`'s variables, without computing anything."""
  model = models.ARCHS[arch](num_classes=num_classes, in_channels=in_channels)
  size = 227 if arch == "caffenet" else 64  # CaffeNet's fc6 needs its 6x6 pool5 map
  return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, in_channels)))


def flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      out.update(flatten(value, prefix + (key,)))
    else:
      out[prefix + (key,)] = value
  return out


def fresh_classifier(rng, in_features: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """A new classifier for another label set: 0.01 * N(0, 1) weights (in, out) and zero bias."""
  rng = jax.random.key(DEFAULT_CLASSIFIER_SEED) if rng is None else rng
  kernel = layers.classifier_init(rng, (in_features, num_classes), jnp.float32)
  return np.asarray(kernel), np.zeros(num_classes, np.float32)


def classifier_size(num_classes: int | None, arrays: Mapping, key: str) -> tuple[int, bool]:
  """(classes of the converted model, whether its classifier is fresh rather than converted).

  None keeps the checkpoint's classifier; if the checkpoint has none, 1000 classes, and the conversion
  then reports `key` as missing.
  """
  checkpoint_classes = np.shape(arrays[key])[0] if np.ndim(arrays.get(key, 0)) == 2 else None
  if num_classes is None:
    return checkpoint_classes or 1000, False
  return num_classes, num_classes != checkpoint_classes


def adapt_input_channels(w: np.ndarray, in_channels: int, flow_init: str, key: str) -> np.ndarray:
  """conv1's kernel [O, C, kh, kw] for `in_channels` input channels, from a checkpoint with C channels.

  "first" (the reference for optical flow): the first `in_channels` input channels of the RGB kernel
  (R and G: u gets R's filter, v G's; Caffe's B, G, R kernel is reversed to R, G, B before).
  "mean" (TSN's cross-modality initialisation): their mean over C, repeated `in_channels` times.
  The input the result expects: `normalization.convention(..., "flow", flow_init)`.
  """
  if w.ndim != 4 or w.shape[1] == in_channels:
    return w  # a wrong rank is reported by the shape check, with the expected shape
  if flow_init == "first":
    if in_channels > w.shape[1]:
      raise ValueError(f"{key} has {w.shape[1]} input channels; flow_init='first' cannot make "
                       f"{in_channels} from them (use flow_init='mean')")
    return w[:, :in_channels]
  return np.repeat(w.mean(axis=1, keepdims=True), in_channels, axis=1)


def to_numpy(value, key: str) -> np.ndarray:
  """A float32 NumPy array from a torch tensor or an array-like (no copy when it already is one)."""
  if hasattr(value, "detach"):  # torch.Tensor, without importing torch
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.float()  # NumPy has no bfloat16
    value = value.numpy()
  try:
    value = np.asarray(value)
  except Exception as e:
    raise TypeError(f"{key} is a {type(value).__name__}; expected an array or tensor") from e
  if value.dtype.kind not in "fiu":
    raise TypeError(f"{key} has dtype {value.dtype}; expected real numbers")
  return value.astype(np.float32, copy=False)


def _natural(key: str) -> list:
  """Sort key putting layer3.6 before layer3.10, so that messages name the first block at fault."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _keys(keys: list[str]) -> str:
  """"key 'a'", or "key 'a' (and 7 more: 'b', 'c', 'd', ...)" for a message."""
  if len(keys) == 1:
    return f"key {keys[0]!r}"
  listed = ", ".join(map(repr, keys[1:4])) + (", ..." if len(keys) > 4 else "")
  return f"key {keys[0]!r} (and {len(keys) - 1} more: {listed})"


def convert_arrays(arrays: Mapping[str, Any], targets: Mapping[str, Target], what: str) -> dict:
  """Checks `arrays` against `targets` (key for key, shape for shape) and builds the Flax tree."""
  unexpected = sorted(set(arrays) - set(targets), key=_natural)
  if unexpected:
    raise ValueError(f"unexpected {_keys(unexpected)} in the checkpoint for {what}; is it the right "
                     "architecture?")
  missing = sorted((key for key in targets if key not in arrays), key=_natural)
  if missing:
    raise ValueError(f"missing {_keys(missing)} in the checkpoint for {what}")
  tree: dict = {}
  for key, (collection, path, expected, to_flax) in targets.items():
    value = arrays[key]
    got = tuple(np.shape(value))
    if got != tuple(expected):
      raise ValueError(f"{key} has shape {got}; expected {tuple(expected)} for {what}")
    node = tree.setdefault(collection, {})
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = jnp.asarray(np.ascontiguousarray(to_flax(to_numpy(value, key))))
  return tree


def check_converter_args(num_classes, in_channels, flow_init) -> None:
  """The arguments every converter shares: TypeError for a wrong type, ValueError for a wrong value."""
  for name, value, meaning in (("num_classes", num_classes, "or None for the checkpoint's"),
                               ("in_channels", in_channels, "3 for RGB, 2 for optical flow")):
    if value is None and name == "num_classes":
      continue
    if not is_int(value):
      raise TypeError(f"{name}={value!r}; expected a positive int ({meaning})")
    if value < 1:
      raise ValueError(f"{name}={value}; expected a positive int ({meaning})")
  if flow_init not in FLOW_INITS:
    raise ValueError(f"flow_init={flow_init!r}; expected one of {FLOW_INITS}")


def existing_file(path) -> Path:
  path = Path(os.fspath(path))
  if not path.is_file():
    what = "a directory, not a weights file" if path.is_dir() else "no such weights file"
    raise FileNotFoundError(f"{what}: {path}")
  return path
