"""ResNeXt (Xie et al., "Aggregated Residual Transformations"), in torchvision's layout, so that its
ImageNet weights convert one to one (`arp_jax.weights.from_torch`).

    model = ResNeXt50_32x4d(num_classes=101, dropout_rate=0.5)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    logits = model.apply(variables, images)                                 # [B, 224, 224, 3] -> [B, 101]
    maps = model.apply(variables, images, stop="res4")                      # [B, 28, 28, 512]
    logits = model.apply(variables, pooled_maps, start="res4")              # the rest, same variables
    logits, updates = model.apply(variables, images, train=True, mutable=["batch_stats"],
                                  rngs={"dropout": key})

Parameter names follow torchvision's: conv1, bn1, layer1_0/{conv1, bn1, ..., downsample_conv,
downsample_bn}, ..., fc. Layout: NHWC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import functools
from typing import Any

import flax.linen as nn
from jax import lax
import jax.numpy as jnp

from arp_jax import platforms
from arp_jax.models import layers
from arp_jax.xla_cpu import conv as xla_cpu_conv

# torchvision's initialisation for training from scratch: He-normal on the fan-out of each convolution.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

_convolution_by_platform = platforms.by_platform(lax.conv_general_dilated,
                                                 cpu=xla_cpu_conv.conv_general_dilated)


def platform_conv(lhs, rhs, window_strides, padding, **settings):
  """`lax.conv_general_dilated` as `nn.Conv` calls it, in XLA:CPU's formulation on the CPU (grouped 3x3
  convolutions differentiated by shifted slices, 1x1 ones as matrix products: `arp_jax.xla_cpu.conv`) and
  XLA's own convolution on every other platform. ResNeXt's default `conv_general_dilated`."""
  return _convolution_by_platform(lhs, rhs, window_strides=window_strides, padding=padding, **settings)


def _conv(features: int, kernel: int, stride: int, groups: int, dtype, name: str,
          conv_general_dilated: Callable) -> nn.Conv:
  # Explicit symmetric padding (kernel // 2) as in torch: "SAME" would pad stride-2 layers on the bottom
  # and right only, shifting every map by one pixel against the pretrained weights.
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                 feature_group_count=groups, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                 kernel_init=_conv_init, conv_general_dilated=conv_general_dilated, name=name)


def _batch_norm(train: bool, dtype, name: str) -> nn.BatchNorm:
  # torch's defaults: epsilon 1e-5, and momentum 0.1 (the weight of the new batch), which is Flax's 0.9
  # (the weight of the running average). Statistics are kept and computed in float32 whatever `dtype`.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      param_dtype=jnp.float32, name=name)


class Bottleneck(nn.Module):
  """ResNeXt bottleneck block: 1x1 (width) -> grouped 3x3 (width, `strides`) -> 1x1 (4 * planes), each
  followed by BatchNorm, plus the shortcut (1x1 conv + BatchNorm when `downsample`), then ReLU.

  The stride sits on the grouped 3x3 (torchvision's "ResNet v1.5"), not on the first 1x1.
  """

  planes: int
  width: int
  strides: int = 1
  cardinality: int = 32
  downsample: bool = False
  dtype: Any = jnp.float32
  conv_general_dilated: Callable = platform_conv

  @nn.compact
  def __call__(self, x, train: bool, final_relu: bool = True):
    """[B, H, W, C] -> [B, H / strides, W / strides, 4 * planes]; `final_relu=False` returns the residual
    sum before its ReLU (the "merge" boundary of the last block)."""
    norm = functools.partial(_batch_norm, train, self.dtype)
    conv = functools.partial(_conv, dtype=self.dtype, conv_general_dilated=self.conv_general_dilated)
    y = nn.relu(norm("bn1")(conv(self.width, 1, 1, 1, name="conv1")(x)))
    y = nn.relu(norm("bn2")(conv(self.width, 3, self.strides, self.cardinality, name="conv2")(y)))
    y = norm("bn3")(conv(4 * self.planes, 1, 1, 1, name="conv3")(y))
    if self.downsample:
      x = norm("downsample_bn")(conv(4 * self.planes, 1, self.strides, 1, name="downsample_conv")(x))
    y = y + x
    return nn.relu(y) if final_relu else y


class ResNeXt(nn.Module):
  """ResNeXt with torchvision's structure, runnable between named boundaries.

  Stem: conv 7x7/2 (64), BatchNorm, ReLU, max-pool 3/2 pad 1. Four stages of `stage_sizes` bottleneck
  blocks with planes 64, 128, 256, 512 (outputs 4x: 256, 512, 1024, 2048) and grouped width
  `planes * base_width / 64 * cardinality`; stages 2-4 halve the resolution in their first block, whose
  shortcut is a 1x1 conv + BatchNorm (also in stage 1, to widen 64 -> 256). Then ReLU, global average
  pooling, dropout (`dropout_rate`) and the classifier "fc". 25,028,904 parameters for ResNeXt-50 32x4d
  and 44,177,704 for ResNeXt-101 32x4d with 1000 classes (BatchNorm statistics not counted).

  Boundaries (`BOUNDARIES`), each the activation just before the named part; sizes for a 224x224 input:
    "stem": the input images [B, 224, 224, in_channels];
    "res2": the stem's output [B, 56, 56, 64], input of the first stage (conv2_x in the ResNet paper);
    "res3", "res4", "res5": the input of that stage, [B, 56, 56, 256], [B, 28, 28, 512], [B, 14, 14, 1024];
    "merge": the last block's residual sum before its ReLU [B, 7, 7, 2048], where a video model merges
      the maps of its frames by temporal pooling;
    "logits": the output [B, num_classes], float32.

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 4, 6, 3) for ResNeXt-50.
    cardinality: groups of the 3x3 convolutions (32 in "32x4d").
    base_width: width of each group for planes = 64 (4 in "32x4d").
    base_planes: the stem's channels and the first stage's planes (64; each stage doubles them). Smaller
      values make narrow networks for small inputs (`ResNeXtTiny`); the 64-based names, shapes and
      parameter layout above are for 64.
    stem_kernel, stem_stride, stem_pool: the stem's convolution (7x7 stride 2) and its 3x3/2 max-pool;
      small inputs keep more resolution with a 3x3 stride-1 convolution and no pool (as CIFAR ResNets do).
    num_classes: outputs of fc.
    in_channels: channels of the input (3 for RGB; 2 for optical flow u, v).
    dropout_rate: dropout before fc (active only with train=True); the video model uses 0.5 for RGB and
      0.8 for flow.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters and BatchNorm statistics stay float32, logits
      come back float32.
    conv_general_dilated: the convolution of every layer, `lax.conv_general_dilated`'s signature (as
      `nn.Conv` takes it): by default `platform_conv`, XLA's convolution everywhere but XLA:CPU, where a
      formulation that differentiates faster replaces it (`arp_jax.xla_cpu.conv`).
  """

  stage_sizes: Sequence[int]
  cardinality: int = 32
  base_width: int = 4
  base_planes: int = 64
  stem_kernel: int = 7
  stem_stride: int = 2
  stem_pool: bool = True
  num_classes: int = 1000
  in_channels: int = 3
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  conv_general_dilated: Callable = platform_conv

  BOUNDARIES = ("stem", "res2", "res3", "res4", "res5", "merge", "logits")
  # Temporal pooling inserted in this backbone, as the reference does it (`models.video`): ARP's output
  # x 0.1 at every depth; parametric pooling initialised 0.1 * N(0, 1), followed by BatchNorm.
  POOLING = {"arp_scaling": ("x0.1", "x0.1"), "pp_init": "normal", "pp_batch_norm": True}

  @nn.compact
  def __call__(self, x, train: bool = False, start: str | None = None, stop: str | None = None):
    """Runs from boundary `start` (default "stem", the input) to `stop` (default "logits").

    Args:
      x: the activation at `start`, [B, H, W, C] (channels last).
      train: BatchNorm on batch statistics (pass `mutable=["batch_stats"]` to `apply` to get the updated
        running averages) and dropout on (needs a "dropout" rng when dropout_rate > 0).
      start, stop: names from `BOUNDARIES`, `start` not after `stop`.

    Returns:
      the activation at `stop`: [B, h, w, c] in `dtype`, or float32 logits [B, num_classes].
    """
    if len(self.stage_sizes) != 4 or any(n < 1 for n in self.stage_sizes):
      raise ValueError(f"ResNeXt: stage_sizes={tuple(self.stage_sizes)}; expected 4 stages of at least "
                       "one block each, e.g. (3, 4, 6, 3)")
    i, j = layers.boundary_range(self.BOUNDARIES, start, stop, "ResNeXt")
    if i < j:
      layers.check_feature_map(x, f"the input at {self.BOUNDARIES[i]!r}", "ResNeXt",
                               self.in_channels if i == 0 else None)
    merge = self.BOUNDARIES.index("merge")

    if i <= 0 < j:  # stem
      conv = _conv(self.base_planes, self.stem_kernel, self.stem_stride, 1, self.dtype, "conv1",
                   self.conv_general_dilated)
      x = nn.relu(_batch_norm(train, self.dtype, "bn1")(conv(x)))
      if self.stem_pool:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for stage, num_blocks in enumerate(self.stage_sizes):
      if not i <= stage + 1 < j:
        continue
      planes = self.base_planes * 2**stage
      width = int(planes * self.base_width / 64) * self.cardinality
      for block in range(num_blocks):
        # "merge" is the last block's residual sum; its ReLU starts the last piece.
        last = stage == len(self.stage_sizes) - 1 and block == num_blocks - 1
        x = Bottleneck(planes, width, strides=2 if stage > 0 and block == 0 else 1,
                       cardinality=self.cardinality, downsample=block == 0, dtype=self.dtype,
                       conv_general_dilated=self.conv_general_dilated,
                       name=f"layer{stage + 1}_{block}")(x, train, final_relu=not last)
    if i <= merge < j:  # from "merge" to "logits"
      x = nn.relu(x)
      x = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32,
                   kernel_init=layers.classifier_init, bias_init=nn.initializers.zeros, name="fc")(x)
      x = x.astype(jnp.float32)
    return x


ResNeXt50_32x4d = functools.partial(ResNeXt, stage_sizes=(3, 4, 6, 3))
ResNeXt101_32x4d = functools.partial(ResNeXt, stage_sizes=(3, 4, 23, 3))
# A narrow ResNeXt (one block per stage, 4 groups of 16, stem of 16 channels; 0.5 M parameters) for small
# inputs trained from scratch on CPU: the synthetic benchmark's backbone.
ResNeXtTiny = functools.partial(ResNeXt, stage_sizes=(1, 1, 1, 1), cardinality=4, base_width=16,
                                base_planes=16)
