"""Pretrained weights: conversion from PyTorch (ResNeXt) and Caffe (CaffeNet) layouts, and Orbax
checkpoints of the converted variables. Nothing downloads: users bring the files.

    variables = from_torch("resnext50_32x4d-7cdf4587.pth", "resnext50_32x4d", num_classes=101)
    variables = from_caffe_npz("bvlc_reference_caffenet.npz", num_classes=101, in_channels=2)
    save(variables, "weights/resnext50_rgb", convention="torchvision")
    variables = load("weights/resnext50_rgb")
    convert("resnext50_32x4d", "resnext50.pth", "weights/resnext50")   # what `arp-jax convert` runs
    read_convention("weights/resnext50")    # the input the weights expect: Convention("torchvision", ...)

Every converter checks the checkpoint against the model's own variable tree (from `jax.eval_shape` of its
init), so a missing, unexpected or wrongly shaped array is a ValueError that names the key.

The input convention travels with the weights (`arp_jax.normalization`): torchvision/timm weights expect
RGB (x / 255 - mean) / std ("torchvision"), BVLC CaffeNet 0..255 minus its mean ("caffe", in R, G, B
once converted: Caffe's conv1 reads B, G, R and `from_caffe_npz` reverses it). `save` writes the
convention in `CONVENTION_FILE` beside the arrays, `convert` the converter's, and `read_convention`
reads it back for the input pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import os
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import models
from arp_jax import normalization
from arp_jax.models import layers
from arp_jax.normalization import Convention

TORCH_ARCHS = ("resnext50_32x4d", "resnext101_32x4d")
FLOW_INITS = normalization.FLOW_INITS
# The input convention of a checkpoint, beside its arrays (`Convention.to_dict` as JSON).
CONVENTION_FILE = "input_convention.json"
# What each converter's weights expect, by arch.
_CONVENTIONS = {"caffenet": "caffe", **{arch: "torchvision" for arch in TORCH_ARCHS}}
_TORCH_SUFFIXES = (".pth", ".pt", ".bin")

# A fresh classifier (num_classes differing from the checkpoint's) is drawn from this key unless the
# caller passes `rng`, so that a conversion is reproducible by default.
DEFAULT_CLASSIFIER_SEED = 0

# Where a converted array goes: collection ("params" or "batch_stats"), path in the Flax tree, the shape
# the checkpoint must have, and the function from the checkpoint's layout to Flax's.
_Target = tuple[str, tuple[str, ...], tuple[int, ...], Callable[[np.ndarray], np.ndarray]]


def _conv_to_flax(w: np.ndarray) -> np.ndarray:
  # OIHW (grouped: O, I/groups, kh, kw) -> HWIO (kh, kw, I/groups, O): Flax and torch both give output
  # channel o to group o // (O / groups), so grouped kernels need no other reordering.
  return w.transpose(2, 3, 1, 0)


def _dense_to_flax(w: np.ndarray) -> np.ndarray:
  return w.T  # (out, in) -> (in, out)


def _same(w: np.ndarray) -> np.ndarray:
  return w


def _source_layout(kernel_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The checkpoint shape (OIHW or out x in) of a Flax kernel (HWIO or in x out)."""
  if len(kernel_shape) == 4:
    kh, kw, i, o = kernel_shape
    return (o, i, kh, kw)
  return tuple(reversed(kernel_shape))


def _abstract_variables(arch: str, num_classes: int, in_channels: int) -> dict:
  """The ShapeDtypeStruct tree of `arch`'s variables, without computing anything."""
  model = models.ARCHS[arch](num_classes=num_classes, in_channels=in_channels)
  size = 227 if arch == "caffenet" else 64  # CaffeNet's fc6 needs its 6x6 pool5 map
  return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, in_channels)))


def _flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      out.update(_flatten(value, prefix + (key,)))
    else:
      out[prefix + (key,)] = value
  return out


def _fresh_classifier(rng, in_features: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """A new classifier for another label set: 0.01 * N(0, 1) weights (in, out) and zero bias."""
  rng = jax.random.key(DEFAULT_CLASSIFIER_SEED) if rng is None else rng
  kernel = layers.classifier_init(rng, (in_features, num_classes), jnp.float32)
  return np.asarray(kernel), np.zeros(num_classes, np.float32)


def _classifier_size(num_classes: int | None, arrays: Mapping, key: str) -> tuple[int, bool]:
  """(classes of the converted model, whether its classifier is fresh rather than converted).

  None keeps the checkpoint's classifier; if the checkpoint has none, 1000 classes, and the conversion
  then reports `key` as missing.
  """
  checkpoint_classes = np.shape(arrays[key])[0] if np.ndim(arrays.get(key, 0)) == 2 else None
  if num_classes is None:
    return checkpoint_classes or 1000, False
  return num_classes, num_classes != checkpoint_classes


def _adapt_input_channels(w: np.ndarray, in_channels: int, flow_init: str, key: str) -> np.ndarray:
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


def _to_numpy(value, key: str) -> np.ndarray:
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


def _convert(arrays: Mapping[str, Any], targets: Mapping[str, _Target], what: str) -> dict:
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
    node[path[-1]] = jnp.asarray(np.ascontiguousarray(to_flax(_to_numpy(value, key))))
  return tree


def _check_common(num_classes, in_channels, flow_init) -> None:
  """The arguments every converter shares: TypeError for a wrong type, ValueError for a wrong value."""
  for name, value, meaning in (("num_classes", num_classes, "or None for the checkpoint's"),
                               ("in_channels", in_channels, "3 for RGB, 2 for optical flow")):
    if value is None and name == "num_classes":
      continue
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise TypeError(f"{name}={value!r}; expected a positive int ({meaning})")
    if value < 1:
      raise ValueError(f"{name}={value}; expected a positive int ({meaning})")
  if flow_init not in FLOW_INITS:
    raise ValueError(f"flow_init={flow_init!r}; expected one of {FLOW_INITS}")


def _existing_file(path) -> Path:
  path = Path(os.fspath(path))
  if not path.is_file():
    what = "a directory, not a weights file" if path.is_dir() else "no such weights file"
    raise FileNotFoundError(f"{what}: {path}")
  return path


def _read_torch_state_dict(path) -> dict[str, Any]:
  """The arrays of a `.safetensors` file (read with NumPy, no torch needed) or a `.pth`/`.pt`/`.bin`
  file (torch.load with weights_only=True; a {"state_dict": ...} or {"model": ...} wrapper is opened)."""
  path = _existing_file(path)
  suffix = path.suffix.lower()
  if suffix == ".safetensors":
    from safetensors.numpy import load_file
    return load_file(str(path))
  if suffix not in _TORCH_SUFFIXES:
    raise ValueError(f"{path}: unknown weights format {suffix!r}; expected .safetensors, "
                     f"{', '.join(_TORCH_SUFFIXES)} (PyTorch)")
  try:
    import torch
  except ImportError as e:
    raise ImportError(f"reading {path.name} needs PyTorch (pip install torch); or save the state dict as "
                      ".safetensors, which is read without it") from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  for wrapper in ("state_dict", "model"):
    if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
      state = state[wrapper]
  if not isinstance(state, Mapping):
    raise ValueError(f"{path} holds a {type(state).__name__}; expected a state dict (name -> tensor)")
  return dict(state)


def _torch_key(collection: str, path: tuple[str, ...]) -> str:
  """torchvision's name for a variable of `models.ResNeXt`: ("layer1_0", "downsample_bn", "scale") ->
  "layer1.0.downsample.1.weight", batch_stats mean -> running_mean."""
  modules = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
  parts = []
  for name in path[:-1]:
    parts.append(name.replace("_", ".") if name.startswith("layer") else modules.get(name, name))
  leaf = path[-1]
  if collection == "batch_stats":
    parts.append({"mean": "running_mean", "var": "running_var"}[leaf])
  else:
    parts.append({"kernel": "weight", "scale": "weight", "bias": "bias"}[leaf])
  return ".".join(parts)


def from_torch(path_or_state_dict, arch: str = "resnext50_32x4d", num_classes: int | None = None,
               in_channels: int = 3, flow_init: str = "first", rng: jax.Array | None = None) -> dict:
  """ResNeXt variables from a torchvision-layout state dict.

  Args:
    path_or_state_dict: a mapping of names to torch tensors or arrays (`model.state_dict()`), or a path
      to a `.pth`/`.pt`/`.bin` file (read with `torch.load(weights_only=True)`; needs torch) or to a
      `.safetensors` file (read with NumPy; no torch needed). Keys as torchvision's: `conv1.weight`,
      `bn1.{weight,bias,running_mean,running_var}`, `layer1.0.conv2.weight`, `layer1.0.downsample.0.weight`,
      `layer1.0.downsample.1.bias`, ..., `fc.{weight,bias}`; `num_batches_tracked` is ignored, and a
      `module.` prefix on every key (DataParallel) is dropped.
    arch: "resnext50_32x4d" or "resnext101_32x4d".
    num_classes: outputs of fc; None keeps the checkpoint's. Any other count gets a fresh classifier
      (0.01 * N(0, 1) weights, zero bias, drawn from `rng`), the rest is converted.
    in_channels: input channels of the model. When it differs from the checkpoint's conv1 (2 for optical
      flow from an RGB checkpoint), conv1 is built per `flow_init`.
    flow_init: "first" (the reference: the RGB kernel's first `in_channels` input channels) or "mean"
      (TSN's cross-modality initialisation: the mean over the RGB channels, repeated).
    rng: key for a fresh classifier; default `jax.random.key(DEFAULT_CLASSIFIER_SEED)`.

  Returns:
    {"params": ..., "batch_stats": ...} for `models.ARCHS[arch](num_classes=..., in_channels=...)`,
    float32 JAX arrays. Conv kernels OIHW -> HWIO, BatchNorm weight/bias -> scale/bias and running
    mean/var -> batch_stats mean/var, fc weight transposed.

  Raises:
    FileNotFoundError: no such file. ValueError: an unknown arch, or a checkpoint with a missing,
    unexpected or wrongly shaped array (the message names the key).
  """
  if arch not in TORCH_ARCHS:
    raise ValueError(f"arch={arch!r}; from_torch converts one of {TORCH_ARCHS} (use from_caffe_npz for "
                     "caffenet)")
  _check_common(num_classes, in_channels, flow_init)
  if isinstance(path_or_state_dict, Mapping):
    state = dict(path_or_state_dict)
  else:
    state = _read_torch_state_dict(path_or_state_dict)
  if state and all(key.startswith("module.") for key in state):
    state = {key[len("module."):]: value for key, value in state.items()}
  state = {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}

  num_classes, fresh = _classifier_size(num_classes, state, "fc.weight")
  if "conv1.weight" in state:
    state["conv1.weight"] = _adapt_input_channels(_to_numpy(state["conv1.weight"], "conv1.weight"),
                                                  in_channels, flow_init, "conv1.weight")

  abstract = _abstract_variables(arch, num_classes, in_channels)
  targets: dict[str, _Target] = {}
  for collection in ("params", "batch_stats"):
    for path, leaf in _flatten(abstract[collection]).items():
      if fresh and path[0] == "fc":
        continue
      kernel = path[-1] == "kernel"
      targets[_torch_key(collection, path)] = (
          collection, path, _source_layout(leaf.shape) if kernel else leaf.shape,
          (_conv_to_flax if len(leaf.shape) == 4 else _dense_to_flax) if kernel else _same)
  if fresh:
    # The old classifier is dropped (a checkpoint without one is accepted too).
    state.pop("fc.weight", None)
    state.pop("fc.bias", None)
  variables = _convert(state, targets, f"{arch} with in_channels={in_channels}")
  if fresh:
    in_features = abstract["params"]["fc"]["kernel"].shape[0]
    kernel, bias = _fresh_classifier(rng, in_features, num_classes)
    variables["params"]["fc"] = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
  return variables


CAFFENET_KEYS = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "conv3_w", "conv3_b", "conv4_w", "conv4_b",
                 "conv5_w", "conv5_b", "fc6_w", "fc6_b", "fc7_w", "fc7_b", "fc8_w", "fc8_b")


def from_caffe_npz(path, num_classes: int | None = None, in_channels: int = 3, flow_init: str = "first",
                   rng: jax.Array | None = None) -> dict:
  """CaffeNet variables from a NumPy `.npz` dump of the Caffe model (e.g. bvlc_reference_caffenet).

  The file holds one array per blob, in Caffe's layouts (1000 classes shown):

      conv1_w [96, 3, 11, 11]   conv1_b [96]       conv2_w [256, 48, 5, 5]   conv2_b [256]
      conv3_w [384, 256, 3, 3]  conv3_b [384]      conv4_w [384, 192, 3, 3]  conv4_b [384]
      conv5_w [256, 192, 3, 3]  conv5_b [256]      fc6_w [4096, 9216]        fc6_b [4096]
      fc7_w [4096, 4096]        fc7_b [4096]       fc8_w [1000, 4096]        fc8_b [1000]

  Convolutions are [out, in / groups, kh, kw]; fully connected layers [out, in], with fc6's input being
  pool5 flattened in C, H, W order (fc6_w may also be given as [4096, 256, 6, 6]). The converter reorders
  fc6 to the H, W, C flattening of `CaffeNet`, and turns conv1 to RGB: Caffe's conv1 reads B, G, R (its
  images come from OpenCV), so a 3-channel conv1_w has its input-channel axis reversed, and the
  converted CaffeNet takes R, G, B images in 0..255 minus BVLC's mean (the "caffe" convention of
  `arp_jax.normalization`, which `convert` records). This happens before a flow conv1 is built:
  flow_init "first" then keeps the R and G filters (u, v), as from any RGB checkpoint (in Caffe's own
  order it would be B and G); "mean" does not depend on the order. A conv1_w that does not have 3 input
  channels is taken as it is.

  Args:
    path: the `.npz` file (or a mapping with the same keys).
    num_classes, in_channels, flow_init, rng: as in `from_torch` (the classifier is fc8, the first
      convolution conv1).

  Returns:
    {"params": ...} for `CaffeNet(num_classes=..., in_channels=...)`, float32 JAX arrays.

  Raises:
    FileNotFoundError: no such file. ValueError: a missing, unexpected or wrongly shaped array (the
    message names the key).
  """
  _check_common(num_classes, in_channels, flow_init)
  if isinstance(path, Mapping):
    arrays = dict(path)
  else:
    with np.load(_existing_file(path), allow_pickle=False) as npz:
      arrays = {key: npz[key] for key in npz.files}

  num_classes, fresh = _classifier_size(num_classes, arrays, "fc8_w")
  if "conv1_w" in arrays:
    conv1 = _to_numpy(arrays["conv1_w"], "conv1_w")
    if conv1.ndim == 4 and conv1.shape[1] == 3:
      conv1 = conv1[:, ::-1]  # B, G, R -> R, G, B
    arrays["conv1_w"] = _adapt_input_channels(conv1, in_channels, flow_init, "conv1_w")
  if "fc6_w" in arrays and np.ndim(arrays["fc6_w"]) == 4:
    arrays["fc6_w"] = _to_numpy(arrays["fc6_w"], "fc6_w").reshape(np.shape(arrays["fc6_w"])[0], -1)

  params = _flatten(_abstract_variables("caffenet", num_classes, in_channels)["params"])
  pool5 = (6, 6, 256)  # H, W, C of the map fc6 reads

  def fc6_to_flax(w: np.ndarray) -> np.ndarray:
    # Caffe's input index is c * 36 + h * 6 + w; ours is (h * 6 + w) * 256 + c.
    return w.reshape(w.shape[0], pool5[2], pool5[0], pool5[1]).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])

  targets: dict[str, _Target] = {}
  for (layer, leaf), value in params.items():
    if fresh and layer == "fc8":
      continue
    key = f"{layer}_{'w' if leaf == 'kernel' else 'b'}"
    if leaf == "bias":
      targets[key] = ("params", (layer, leaf), value.shape, _same)
    elif layer == "fc6":
      targets[key] = ("params", (layer, leaf), _source_layout(value.shape), fc6_to_flax)
    else:
      targets[key] = ("params", (layer, leaf), _source_layout(value.shape),
                      _conv_to_flax if len(value.shape) == 4 else _dense_to_flax)
  if fresh:
    arrays.pop("fc8_w", None)
    arrays.pop("fc8_b", None)
  variables = _convert(arrays, targets, f"caffenet with in_channels={in_channels}")
  if fresh:
    kernel, bias = _fresh_classifier(rng, params[("fc8", "kernel")].shape[0], num_classes)
    variables["params"]["fc8"] = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
  return variables


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


def convert(arch: str, in_path, out_dir, num_classes: int | None = None, in_channels: int = 3,
            flow_init: str = "first") -> Path:
  """Converts pretrained weights and saves them with `save`: `arp-jax convert --arch ARCH IN OUT_DIR`.

  Args:
    arch: "caffenet" (IN is a `.npz`, see `from_caffe_npz`), "resnext50_32x4d" or "resnext101_32x4d"
      (IN is a `.pth`/`.pt`/`.safetensors` torchvision-layout state dict, see `from_torch`).
    in_path: the pretrained weights file.
    out_dir: the checkpoint directory to create (it must not exist).
    num_classes, in_channels, flow_init: as in `from_torch`; a fresh classifier uses the default seed.

  Returns:
    the absolute checkpoint directory. It records the input convention of the weights
    (`read_convention`): "torchvision" for ResNeXt, "caffe" for CaffeNet, for RGB or for flow with
    `flow_init` when in_channels is 2.
  """
  if arch not in models.ARCHS:
    raise ValueError(f"arch={arch!r}; expected one of {tuple(models.ARCHS)}")
  out_dir = Path(os.fspath(out_dir)).absolute()
  if out_dir.exists():
    raise FileExistsError(f"{out_dir} already exists; choose a new output directory")
  if arch == "caffenet":
    variables = from_caffe_npz(in_path, num_classes=num_classes, in_channels=in_channels,
                               flow_init=flow_init)
  else:
    variables = from_torch(in_path, arch, num_classes=num_classes, in_channels=in_channels,
                           flow_init=flow_init)
  modality = "flow" if in_channels == 2 else "rgb"
  return save(variables, out_dir,
              convention=normalization.convention(_CONVENTIONS[arch], modality, flow_init))
