"""Dynamic image networks: a backbone with temporal pooling inserted at any depth (figs. 4 and 5).

    model = DynamicImageNetwork(backbone="resnext50_32x4d", num_classes=101, window=10, stride=6,
                                pool_at="stem", pooling="arp", merge="max")
    logits = model.apply(variables, clips)      # clips [B, T, 224, 224, 3] -> [B, 101]

For each clip: (1) the backbone runs on every frame up to `pool_at` (frames folded into the batch);
(2) temporal pooling turns the frames' maps into one map per window (tau = `window`, stride s); (3) the
rest of the backbone runs on each window's pooled map up to its "merge" boundary (before the last ReLU and
global pooling); (4) the windows are merged by temporal pooling (`merge`); (5) ReLU, pooling, dropout and
the classifier. `pool_at` at the input with pooling "arp" is the dynamic image network; deeper it pools
dynamic maps; `window=1` runs the network on every frame and merges their maps by `merge` (the paper's
tau = 1: "a single frame window corresponds to using RGB frames as input", §5.5): the static-image and
optical-flow streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp

from arp_jax.models.archs import ARCHS
from arp_jax.pooling import parametric
from arp_jax.pooling.temporal import pool
from arp_jax.pooling import windows as windows_lib

POOLINGS = ("arp", "arp_linear", "pp1", "pp2", "mean", "max")
MERGES = ("max", "mean", "arp")
SCALINGS = ("none", "l2_6000_clip_128", "x0.1", "x0.1_relu")
# Label of the temporal pooling parameters in `param_labels`, for an optax.multi_transform that gives
# them the reference learning-rate multiplier (0.1).
POOLING_LABEL = "temporal_pooling"


def reference_scaling(family: str, depth_index: int, pooling: str, window: int | None = 10) -> str:
  """The reference's scaling of an ARP output at insertion depth `depth_index` (0 = the input).

  ARP's weights sum to zero and grow with the window, so its output is on another scale than the maps it
  replaces: CaffeNet's dynamic image is L2-normalised to 6000 and clipped to +-128 (the range of
  mean-subtracted pixels), its dynamic maps scaled by 0.1 then rectified (they replace ReLU outputs);
  ResNeXt scales by 0.1 at every depth. Mean and max keep the scale of their input; parametric pooling
  learns its own (ReLU for CaffeNet, BatchNorm for ResNeXt). A window of one frame is the frame itself
  (ARP's weight is 1), so plain-frame streams are not rescaled.
  """
  if pooling not in ("arp", "arp_linear") or window == 1:
    return "none"
  if family == "caffenet":
    return "l2_6000_clip_128" if depth_index == 0 else "x0.1_relu"
  return "x0.1"


def scale_pooled(x, scaling: str):
  """Applies a `SCALINGS` entry to pooled maps x: [..., h, w, c] (each map scaled on its own)."""
  if scaling == "none":
    return x
  if scaling == "l2_6000_clip_128":
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=(-3, -2, -1), keepdims=True))
    return jnp.clip(x * (6000.0 / jnp.maximum(norm, 1e-12)), -128.0, 128.0)
  if scaling == "x0.1":
    return 0.1 * x
  if scaling == "x0.1_relu":
    return jax.nn.relu(0.1 * x)
  raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")


class TemporalPooling(nn.Module):
  """Pools maps [B, T, h, w, c] into one map per window, [B, S, h, w, c] (float32).

  Attributes:
    pooling: one of `POOLINGS`.
    window, stride, start, tail: the windows, as in `arp_jax.pool` (window None: the whole clip).
    scaling: one of `SCALINGS`, applied to the pooled maps.
    pp_init: "constant" or "normal" initialisation of PP1/PP2 (0.1 * ...).
    pp_batch_norm: BatchNorm after PP (the ResNeXt reference) instead of its final ReLU (CaffeNet's).
  """

  pooling: str = "arp"
  window: int | None = 10
  stride: int | None = 6
  start: int = 0
  tail: str = "pad"
  scaling: str = "none"
  pp_init: str = "constant"
  pp_batch_norm: bool = False

  @nn.compact
  def __call__(self, maps, lengths=None, train: bool = False):
    """maps: [B, T, h, w, c]; lengths: optional int [B]. Returns ([B, S, h, w, c], real windows [B] or
    None), where `real[b]` counts the windows of video b (the rest are zeros)."""
    window = maps.shape[1] if self.window is None else self.window
    stride = window if self.window is None else self.stride
    options = dict(window=window, stride=stride, start=self.start, tail=self.tail)
    if self.pooling in parametric.KINDS:
      layers = self.param("layers", lambda key: parametric.init_parametric_pooling(
          key, self.pooling, window, init=self.pp_init))
      clips, real = windows_lib.gather_windows(maps, lengths=lengths, **options)
      pooled = parametric.parametric_pooling(clips, layers, axis=2, final_relu=not self.pp_batch_norm)
      if self.pp_batch_norm:
        pooled = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                              name="batch_norm")(pooled)
      if real is not None:
        pooled = jnp.where(real[:, :, None, None, None], pooled, 0.0)
    else:
      pooled = pool(maps, self.pooling, axis=1, lengths=lengths, **options)
    counts = None if lengths is None else windows_lib.count_windows(jnp.asarray(lengths), **options)
    return scale_pooled(pooled, self.scaling), counts


class DynamicImageNetwork(nn.Module):
  """A stream of the paper: backbone + temporal pooling at `pool_at` + window merging.

  Attributes:
    backbone: "caffenet", "resnext50_32x4d", "resnext101_32x4d", or a constructor of a backbone module
      that takes (num_classes, in_channels, dropout_rate, dtype) and has `BOUNDARIES` (e.g. a small
      `functools.partial(ResNeXt, stage_sizes=...)` for tests).
    num_classes: classes of the classifier.
    in_channels: 3 for RGB, 2 for optical flow (u, v).
    window: frames per window tau; None pools the whole clip into one map; 1 keeps every frame (the
      static-image and optical-flow streams).
    stride, start, tail: the windows (see `arp_jax.pool`); the reference trains with start=2.
    pool_at: the insertion depth, a boundary of the backbone before its "merge": CaffeNet "conv1" (the
      input: dynamic images) .. "conv5" (the input of that convolution), or "relu1", "relu2" (right
      after conv1's or conv2's ReLU, before its pool and LRN); ResNeXt "stem" (the input), "res2" ..
      "res5".
    pooling: one of `POOLINGS`; with the reference scaling at each depth (`reference_scaling`).
    merge: how the windows' maps are merged at the backbone's "merge" boundary: "max" (the reference),
      "mean" or "arp".
    dropout_rate: before the classifier (0.5 RGB, 0.8 flow in the reference); for CaffeNet, the rate of
      its fc6/fc7 dropouts.
    dtype: compute dtype of the backbone (e.g. jnp.bfloat16); parameters, BatchNorm statistics and pooling
      stay float32.
  """

  backbone: str | Callable[..., nn.Module] = "resnext50_32x4d"
  num_classes: int = 101
  in_channels: int = 3
  window: int | None = 10
  stride: int | None = 6
  start: int = 0
  tail: str = "pad"
  pool_at: str = "stem"
  pooling: str = "arp"
  merge: str = "max"
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, clips, train: bool = False, lengths=None):
    """clips: [B, T, H, W, in_channels] (T frames each; `lengths` int [B] for padded clips) ->
    float32 logits [B, num_classes]."""
    if clips.ndim != 5:
      raise ValueError(f"clips has shape {tuple(clips.shape)}; expected [B, T, H, W, C]")
    if self.pooling not in POOLINGS:
      raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
    if self.merge not in MERGES:
      raise ValueError(f"unknown merge {self.merge!r}; expected one of {MERGES}")
    make = ARCHS.get(self.backbone) if isinstance(self.backbone, str) else self.backbone
    if make is None:
      raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {tuple(ARCHS)} or a "
                       "backbone constructor")
    backbone = make(num_classes=self.num_classes, in_channels=self.in_channels,
                    dropout_rate=self.dropout_rate, dtype=self.dtype, name="backbone")
    boundaries = type(backbone).BOUNDARIES
    depths = boundaries[:boundaries.index("merge")]
    if self.pool_at not in depths:
      raise ValueError(f"pool_at={self.pool_at!r} is not an insertion depth of this backbone; expected "
                       f"one of {depths}")
    family = "caffenet" if boundaries[0] == "conv1" else "resnext"
    depth = depths.index(self.pool_at)

    B, T = clips.shape[:2]
    maps = backbone(clips.reshape((B * T,) + clips.shape[2:]), train, stop=self.pool_at)
    maps = maps.reshape((B, T) + maps.shape[1:])
    pooled, counts = TemporalPooling(
        pooling=self.pooling, window=self.window, stride=self.stride, start=self.start, tail=self.tail,
        scaling=reference_scaling(family, depth, self.pooling, self.window), pp_init=(
            "constant" if family == "caffenet" else "normal"),
        pp_batch_norm=family != "caffenet", name=POOLING_LABEL)(maps, lengths, train)
    S = pooled.shape[1]
    x = backbone(pooled.reshape((B * S,) + pooled.shape[2:]).astype(self.dtype), train,
                 start=self.pool_at, stop="merge")
    x = x.reshape((B, S) + x.shape[1:])
    # Windows past a video's own count are not real: the merge ignores them like padding.
    merged = pool(x, self.merge, axis=1, lengths=counts)
    return backbone(merged.astype(self.dtype), train, start="merge")


def param_labels(params) -> Any:
  """A pytree like `params` labelling each leaf POOLING_LABEL (temporal pooling) or "backbone".

  For optax.multi_transform: e.g. a learning rate 10 times smaller on the pooling parameters, as the
  reference trains them.
  """
  return traverse_util.path_aware_map(
      lambda path, _: POOLING_LABEL if POOLING_LABEL in path else "backbone", params)
