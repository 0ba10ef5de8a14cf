"""ResNeXt weights from a torchvision-layout PyTorch state dict (`.pth`, `.pt`, `.bin`, `.safetensors`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from arp_jax.weights.layout import (Target, abstract_variables, adapt_input_channels,
                                    check_converter_args, classifier_size, conv_to_flax, convert_arrays,
                                    dense_to_flax, existing_file, flatten, fresh_classifier, same,
                                    source_layout, to_numpy)

TORCH_ARCHS = ("resnext50_32x4d", "resnext101_32x4d")
_TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def _read_torch_state_dict(path) -> dict[str, Any]:
  """The arrays of a `.safetensors` file (read with NumPy, no torch needed) or a `.pth`/`.pt`/`.bin`
  file (torch.load with weights_only=True; a {"state_dict": ...} or {"model": ...} wrapper is opened)."""
  path = existing_file(path)
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
  check_converter_args(num_classes, in_channels, flow_init)
  if isinstance(path_or_state_dict, Mapping):
    state = dict(path_or_state_dict)
  else:
    state = _read_torch_state_dict(path_or_state_dict)
  if state and all(key.startswith("module.") for key in state):
    state = {key[len("module."):]: value for key, value in state.items()}
  state = {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}

  num_classes, fresh = classifier_size(num_classes, state, "fc.weight")
  if "conv1.weight" in state:
    state["conv1.weight"] = adapt_input_channels(to_numpy(state["conv1.weight"], "conv1.weight"),
                                                  in_channels, flow_init, "conv1.weight")

  abstract = abstract_variables(arch, num_classes, in_channels)
  targets: dict[str, Target] = {}
  for collection in ("params", "batch_stats"):
    for path, leaf in flatten(abstract[collection]).items():
      if fresh and path[0] == "fc":
        continue
      kernel = path[-1] == "kernel"
      targets[_torch_key(collection, path)] = (
          collection, path, source_layout(leaf.shape) if kernel else leaf.shape,
          (conv_to_flax if len(leaf.shape) == 4 else dense_to_flax) if kernel else same)
  if fresh:
    # The old classifier is dropped (a checkpoint without one is accepted too).
    state.pop("fc.weight", None)
    state.pop("fc.bias", None)
  variables = convert_arrays(state, targets, f"{arch} with in_channels={in_channels}")
  if fresh:
    in_features = abstract["params"]["fc"]["kernel"].shape[0]
    kernel, bias = fresh_classifier(rng, in_features, num_classes)
    variables["params"]["fc"] = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
  return variables
