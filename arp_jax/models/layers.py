"""Pieces shared by the backbones: Caffe's pooling and normalisation, initialisers, and the checks that
let a backbone run between two named boundaries.

A backbone lists its boundaries in order (`BOUNDARIES`); boundary k is the activation just before piece
k, so running from `start` to `stop` applies the pieces `index(start) ... index(stop) - 1`, and chaining
`[a, b)` then `[b, c)` equals `[a, c)`.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from arp_jax import checks

# New classifiers (a fresh fc8 / fc for another dataset): 0.01 * N(0, 1) weights and zero bias, the
# reference initialisation of a replaced last layer.
classifier_init = nn.initializers.normal(stddev=0.01)


def boundary_range(boundaries: Sequence[str], start: str | None, stop: str | None,
                   model: str) -> tuple[int, int]:
  """(i, j): the pieces i..j-1 that run from boundary `start` to boundary `stop`.

  `start` defaults to the first boundary (the input), `stop` to the last (the logits). `start == stop`
  runs nothing (the input comes back unchanged); `start` after `stop` is a ValueError.
  """
  start = boundaries[0] if start is None else start
  stop = boundaries[-1] if stop is None else stop
  for name, value in (("start", start), ("stop", stop)):
    if value not in boundaries:
      raise ValueError(f"{model}: unknown {name} boundary {value!r}; expected one of {tuple(boundaries)}")
  i, j = boundaries.index(start), boundaries.index(stop)
  if i > j:
    raise ValueError(f"{model}: start={start!r} comes after stop={stop!r}; boundaries run in the order "
                     f"{tuple(boundaries)}")
  return i, j


def check_feature_map(x, name: str, model: str, channels: int | None = None) -> None:
  """TypeError unless `x` is a real-valued array; ValueError unless it is [B, H, W, C] (with C ==
  `channels` when given)."""
  checks.check_real_dtype(x, f"{model}: {name}")
  if x.ndim != 4:
    raise ValueError(f"{model}: {name} has shape {tuple(x.shape)}; expected [B, H, W, C] (channels last)")
  if channels is not None and x.shape[-1] != channels:
    raise ValueError(f"{model}: {name} has {x.shape[-1]} channels (shape {tuple(x.shape)}); the model "
                     f"was built with in_channels={channels}")


def caffe_max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
  """Caffe's max-pooling, which rounds the output size up: [B, H, W, C] -> [B, H', W', C] with
  H' = ceil((H - window) / stride) + 1 (no padding).

  The last window may run past the edge; it pools only the pixels inside (the padding is -inf). Caffe
  also drops a last window that starts outside the input, which cannot happen without padding.
  """
  pads = []
  for size in x.shape[1:3]:
    if size < window:
      raise ValueError(f"caffe_max_pool: a {size}-pixel side is smaller than the {window}-pixel window")
    out = math.ceil((size - window) / stride) + 1
    pads.append((0, (out - 1) * stride + window - size))
  return nn.max_pool(x, (window, window), strides=(stride, stride), padding=tuple(pads))


def local_response_norm(x: jax.Array, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> jax.Array:
  """Caffe's cross-channel local response normalisation (AlexNet's LRN), [..., C] -> [..., C]:

      y_c = x_c / (k + alpha / size * sum_{c' in window(c)} x_c'^2) ** beta

  over the `size` channels centred on c (zero beyond the ends). Caffe divides alpha by the window size;
  AlexNet's paper does not (its alpha is Caffe's alpha / 5). Computed in float32 whatever the input
  dtype, since squared activations lose most of their bits in bfloat16; returned in the input dtype.
  """
  if size % 2 != 1:
    raise ValueError(f"local_response_norm: size={size}; expected an odd window centred on each channel")
  x32 = x.astype(jnp.float32)
  pad = [(0, 0)] * (x.ndim - 1) + [(size // 2, size // 2)]
  window_sum = lax.reduce_window(x32 * x32, 0.0, lax.add, (1,) * (x.ndim - 1) + (size,),
                                 (1,) * x.ndim, pad)
  return (x32 / (k + (alpha / size) * window_sum) ** beta).astype(x.dtype)
