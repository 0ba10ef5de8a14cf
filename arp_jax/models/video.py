"""Dynamic image networks: a backbone with temporal pooling inserted at any depth (figs. 4 and 5).

    model = DynamicImageNetwork(backbone="resnext50_32x4d", num_classes=101, pool_at="stem",
                                pooling="arp", merge="max")
    logits = model.apply(variables, windows, num_windows=counts)  # [B, S, tau, 224, 224, 3] -> [B, 101]
    logits = model.apply(variables, clips)     # a clip [B, T, 224, 224, 3], windows of `window`, `stride`

For each video: (1) the backbone runs on every frame up to `pool_at` (frames folded into the batch);
(2) temporal pooling turns the frames' maps into one map per window of tau frames; (3) the rest of the
backbone runs on each window's pooled map up to its "merge" boundary (before the last ReLU and global
pooling); (4) the windows are merged by temporal pooling (`merge`); (5) ReLU, pooling, dropout and the
classifier. `pool_at` at the input with pooling "arp" is the dynamic image network; deeper it pools
dynamic maps; windows of one frame run the network on every frame and merge their maps by `merge` (the
paper's tau = 1: "a single frame window corresponds to using RGB frames as input", §5.5): the
static-image and optical-flow streams.

Two layouts of the input: the input pipelines' windows `[B, S, tau, H, W, C]` (already sampled, tau from
the shape, `num_windows` [B] real ones), or a clip `[B, T, H, W, C]` that the model cuts into windows
itself (`window`, `stride`, `start`, `tail`, with `lengths` [B] real frames).
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
# Compute dtypes by the names configs use (`DynamicImageNetwork.dtype` takes a name or a dtype).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Label of the temporal pooling parameters in `param_labels`, for an optax.multi_transform that gives
# them the reference learning-rate multiplier (0.1).
POOLING_LABEL = "temporal_pooling"


def backbone_class(backbone: str | Callable[..., nn.Module]) -> type:
  """The module class of a backbone name of `ARCHS` or a constructor (a class or a functools.partial of
  one), whose class attributes declare its `BOUNDARIES` and `POOLING`.

  Raises:
    ValueError: an unknown name, or a constructor that is not a backbone class.
  """
  make = ARCHS.get(backbone) if isinstance(backbone, str) else backbone
  while make is not None and not isinstance(make, type):
    make = getattr(make, "func", None)  # functools.partial(ResNeXt, ...) -> ResNeXt
  if make is None or not hasattr(make, "BOUNDARIES") or not hasattr(make, "POOLING"):
    raise ValueError(f"unknown backbone {backbone!r}; expected one of {tuple(ARCHS)} or a backbone "
                     "constructor (a class with BOUNDARIES and POOLING)")
  return make


def depth_of(backbone, pool_at: str) -> int:
  """The index of `pool_at` among the backbone's insertion depths, its boundaries before "merge" (0: the
  input).

  Raises:
    ValueError: an unknown backbone, or `pool_at` is not one of its insertion depths.
  """
  boundaries = backbone_class(backbone).BOUNDARIES
  depths = boundaries[:boundaries.index("merge")]
  if pool_at not in depths:
    raise ValueError(f"pool_at={pool_at!r} is not an insertion depth of this backbone; expected one of "
                     f"{depths}")
  return depths.index(pool_at)


def reference_scaling(backbone, depth_index: int, pooling: str, window: int | None = 10) -> str:
  """The reference's scaling of an ARP output at insertion depth `depth_index` (0 = the input).

  ARP's weights sum to zero and grow with the window, so its output is on another scale than the maps it
  replaces; each backbone declares the reference's answer (`POOLING["arp_scaling"]`: at the input, and
  deeper): CaffeNet's dynamic image is L2-normalised to 6000 and clipped to +-128 (the range of
  mean-subtracted pixels), its dynamic maps scaled by 0.1 then rectified (they replace ReLU outputs);
  ResNeXt scales by 0.1 at every depth. Mean and max keep the scale of their input; parametric pooling
  learns its own. A window of one frame is the frame itself (ARP's weight is 1), so plain-frame streams
  are not rescaled.

  Args:
    backbone: a name of `ARCHS` or a backbone constructor (`backbone_class`).
  """
  if pooling not in ("arp", "arp_linear") or window == 1:
    return "none"
  at_input, deeper = backbone_class(backbone).POOLING["arp_scaling"]
  return at_input if depth_index == 0 else deeper


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

  The fields are validated once, when the module is constructed (a ValueError naming the field).

  Attributes:
    backbone: "caffenet", "resnext50_32x4d", "resnext101_32x4d", "resnext_tiny", or a constructor of a
      backbone module that takes (num_classes, in_channels, dropout_rate, dtype) and declares
      `BOUNDARIES` and `POOLING` (e.g. a small `functools.partial(ResNeXt, stage_sizes=...)` for tests).
    num_classes: classes of the classifier.
    in_channels: 3 for RGB, 2 for optical flow (u, v).
    window: for clip input only: frames per window tau; None pools the whole clip into one map; 1 keeps
      every frame (the static-image and optical-flow streams). Windows input brings its own tau.
    stride, start, tail: for clip input only: the windows (see `arp_jax.pool`); the reference trains with
      start=2.
    pool_at: the insertion depth, a boundary of the backbone before its "merge": CaffeNet "conv1" (the
      input: dynamic images) .. "conv5" (the input of that convolution), or "relu1", "relu2" (right
      after conv1's or conv2's ReLU, before its pool and LRN); ResNeXt "stem" (the input), "res2" ..
      "res5".
    pooling: one of `POOLINGS`; with the reference scaling at each depth (`reference_scaling`).
    merge: how the windows' maps are merged at the backbone's "merge" boundary: "max" (the reference),
      "mean" or "arp".
    dropout_rate: before the classifier (0.5 RGB, 0.8 flow in the reference); for CaffeNet, the rate of
      its fc6/fc7 dropouts.
    dtype: compute dtype of the backbone, a dtype or a name of `DTYPES` ("bfloat16"); parameters,
      BatchNorm statistics, temporal pooling (it accumulates in float32 whatever its input) and the
      logits stay float32. Frames are pooled at the input before the cast, so bfloat16 costs the
      dynamic image network and the frame streams nothing but rounding. Deeper, the frames' maps are
      rounded to bfloat16 before ARP's weighted differences (its weights sum to zero, and consecutive
      frames' maps nearly cancel), so dynamic maps keep several times the rounding error of each map.
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

  def __post_init__(self):
    if self.pooling not in POOLINGS:
      raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
    if self.merge not in MERGES:
      raise ValueError(f"unknown merge {self.merge!r}; expected one of {MERGES}")
    if isinstance(self.dtype, str) and self.dtype not in DTYPES:
      raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {tuple(DTYPES)} or a dtype")
    depth_of(self.backbone, self.pool_at)  # an unknown backbone, or pool_at not one of its depths
    super().__post_init__()

  @nn.compact
  def __call__(self, frames, train: bool = False, lengths=None, num_windows=None):
    """Logits of each video, float32 [B, num_classes].

    Args:
      frames: the windows [B, S, tau, H, W, in_channels] (`num_windows` int [B]: real windows; the rest
        are padding), or clips [B, T, H, W, in_channels] (`lengths` int [B] for padded clips), pooled in
        windows of `window` frames every `stride`.
    """
    declared = backbone_class(self.backbone).POOLING
    make = ARCHS[self.backbone] if isinstance(self.backbone, str) else self.backbone
    dtype = DTYPES.get(self.dtype, self.dtype) if isinstance(self.dtype, str) else self.dtype
    backbone = make(num_classes=self.num_classes, in_channels=self.in_channels,
                    dropout_rate=self.dropout_rate, dtype=dtype, name="backbone")
    if frames.ndim == 6:  # the pipelines' windows, each pooled whole (tau from the shape)
      B, S, tau = frames.shape[:3]
      clips = frames.reshape((B * S, tau) + frames.shape[3:])
      windows, lengths = dict(window=tau, stride=tau, start=0, tail=self.tail), None
      if num_windows is not None:  # the real frames of each window: tau, or none past the count
        ends = jnp.asarray(num_windows)[:, None] * tau - jnp.arange(S)[None, :] * tau
        # At least 1 (0 is no clip): padding windows are set to zeros after the pooling, as a clip's are.
        lengths = jnp.clip(ends, 1, tau).reshape(B * S)
    elif frames.ndim == 5:  # clips, cut into windows here
      B, S = frames.shape[0], None
      clips, windows = frames, dict(window=self.window, stride=self.stride, start=self.start, tail=self.tail)
    else:
      raise ValueError(f"frames has shape {tuple(frames.shape)}; expected [B, T, H, W, C] (clips) or "
                       "[B, S, tau, H, W, C] (windows)")
    N, T = clips.shape[:2]
    maps = backbone(clips.reshape((N * T,) + clips.shape[2:]), train, stop=self.pool_at)
    maps = maps.reshape((N, T) + maps.shape[1:])
    depth = depth_of(self.backbone, self.pool_at)
    pooled, counts = TemporalPooling(
        pooling=self.pooling, **windows,
        scaling=reference_scaling(self.backbone, depth, self.pooling, windows["window"]),
        pp_init=declared["pp_init"], pp_batch_norm=declared["pp_batch_norm"],
        name=POOLING_LABEL)(maps, lengths, train)
    if S is not None:  # one map per window: back to [B, S, ...]
      pooled, counts = pooled.reshape((B, S) + pooled.shape[2:]), num_windows
      if counts is not None:
        real = jnp.arange(S)[None, :] < jnp.asarray(counts)[:, None]
        pooled = jnp.where(real[:, :, None, None, None], pooled, 0.0)
    S = pooled.shape[1]
    x = backbone(pooled.reshape((B * S,) + pooled.shape[2:]).astype(dtype), train,
                 start=self.pool_at, stop="merge")
    x = x.reshape((B, S) + x.shape[1:])
    # Windows past a video's own count are not real: the merge ignores them like padding.
    merged = pool(x, self.merge, axis=1, lengths=counts)
    return backbone(merged.astype(dtype), train, start="merge")


def param_labels(params) -> Any:
  """A pytree like `params` labelling each leaf POOLING_LABEL (temporal pooling) or "backbone".

  For optax.multi_transform: e.g. a learning rate 10 times smaller on the pooling parameters, as the
  reference trains them.
  """
  return traverse_util.path_aware_map(
      lambda path, _: POOLING_LABEL if POOLING_LABEL in path else "backbone", params)
