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

  pytorch.py  `from_torch`: ResNeXt from a torchvision-layout state dict
  caffe.py    `from_caffe_npz`: CaffeNet from a NumPy dump of the Caffe model
  layout.py   what both share: layouts to Flax's, the check against the model's variable tree
  storage.py  `save`, `load`, `read_convention`: Orbax checkpoints with their input convention
"""

from __future__ import annotations

import os
from pathlib import Path

from arp_jax import models, normalization
from arp_jax.normalization import FLOW_INITS
from arp_jax.weights.caffe import CAFFENET_KEYS, from_caffe_npz
from arp_jax.weights.layout import DEFAULT_CLASSIFIER_SEED
from arp_jax.weights.pytorch import TORCH_ARCHS, from_torch
from arp_jax.weights.storage import CONVENTION_FILE, load, read_convention, save

__all__ = ["CAFFENET_KEYS", "CONVENTION_FILE", "DEFAULT_CLASSIFIER_SEED", "FLOW_INITS", "TORCH_ARCHS",
           "convert", "from_caffe_npz", "from_torch", "load", "read_convention", "save"]

# What each converter's weights expect, by arch.
_CONVENTIONS = {"caffenet": "caffe", **{arch: "torchvision" for arch in TORCH_ARCHS}}


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
