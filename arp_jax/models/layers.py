"""Pieces shared by the backbones: Caffe's pooling and normalisation, initialisers, and the checks that
let a backbone run between two named boundaries.

A backbone lists its boundaries in order (`BOUNDARIES`); boundary k is the activation just before piece
k, so running from `start` to `stop` applies the pieces `index(start) ... index(stop) - 1`, and chaining
`[a, b)` then `[b, c)` equals `[a, c)`.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
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


def _grouped_conv_xla(x, kernel, stride: int, groups: int):
  return lax.conv_general_dilated(x, kernel, (stride, stride), ((1, 1), (1, 1)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def _grouped_conv_by_taps(x, kernel, stride: int, groups: int):
  """The same 3x3 grouped convolution as 9 shifted slices and one batched matmul over the groups."""
  B, H, W, C = x.shape
  out = kernel.shape[-1]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  Ho, Wo = (H - 1) // stride + 1, (W - 1) // stride + 1
  taps = [padded[:, dy:dy + stride * (Ho - 1) + 1:stride, dx:dx + stride * (Wo - 1) + 1:stride]
          for dy in range(3) for dx in range(3)]
  patches = jnp.stack(taps, 3).reshape(B, Ho, Wo, 9, groups, C // groups)
  weights = kernel.reshape(9, C // groups, groups, out // groups)
  return jnp.einsum("bhwkgc,kcgo->bhwgo", patches, weights).reshape(B, Ho, Wo, out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _grouped_conv_cpu(x, kernel, stride, groups):
  return _grouped_conv_xla(x, kernel, stride, groups)


def _grouped_conv_cpu_forward(x, kernel, stride, groups):
  return _grouped_conv_xla(x, kernel, stride, groups), (x, kernel)


def _grouped_conv_cpu_backward(stride, groups, residuals, cotangent):
  _, vjp = jax.vjp(lambda x, kernel: _grouped_conv_by_taps(x, kernel, stride, groups), *residuals)
  return vjp(cotangent)


_grouped_conv_cpu.defvjp(_grouped_conv_cpu_forward, _grouped_conv_cpu_backward)


def grouped_conv3x3(x, kernel, stride: int, groups: int):
  """3x3 grouped convolution, padding 1: x [B, H, W, C], kernel [3, 3, C / groups, O] -> [B, H', W', O].

  XLA:CPU differentiates grouped convolutions very slowly (one ResNeXt-50 layer at batch 8: 9 s for the
  backward pass, against 0.1 s for the same layer written as shifted slices and a batched matmul), so on
  the CPU the backward pass goes through that formulation; the forward pass, where XLA's own grouped
  convolution is the faster, and every other backend, keep `lax.conv_general_dilated`.
  """
  if jax.default_backend() == "cpu":
    return _grouped_conv_cpu(x, kernel, stride, groups)
  return _grouped_conv_xla(x, kernel, stride, groups)


def pointwise_conv(x, kernel, stride: int):
  """1x1 convolution without padding as a matrix product: x [B, H, W, C], kernel [1, 1, C, O] ->
  [B, ceil(H / stride), ceil(W / stride), O]. On XLA:CPU its forward and backward run 2-3x faster than
  the convolution's (ResNeXt-50 layers at batch 8: 46-120 ms against 119-273 ms)."""
  return jnp.einsum("bhwc,co->bhwo", x[:, ::stride, ::stride], kernel[0, 0])


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, **kwargs):
  """`lax.conv_general_dilated` for `nn.Conv(conv_general_dilated=...)` (NHWC input, HWIO kernel). It
  sends ResNeXt's 3x3 grouped convolutions (padding 1) to `grouped_conv3x3`, which picks its backward pass
  by backend, and, on the CPU, its 1x1 convolutions to `pointwise_conv`; the results are the same, only
  faster to differentiate there."""
  dilated = any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
  padding = tuple(map(tuple, padding)) if not isinstance(padding, str) else padding
  if window_strides[0] == window_strides[1] and not dilated:
    if feature_group_count > 1 and rhs.shape[:2] == (3, 3) and padding == ((1, 1), (1, 1)):
      return grouped_conv3x3(lhs, rhs, window_strides[0], feature_group_count)
    if (jax.default_backend() == "cpu" and feature_group_count == 1 and rhs.shape[:2] == (1, 1)
        and padding == ((0, 0), (0, 0))):
      return pointwise_conv(lhs, rhs, window_strides[0])
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                  dimension_numbers, feature_group_count, **kwargs)
