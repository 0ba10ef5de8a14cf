"""ResNeXt's convolutions on XLA:CPU: the same results as `lax.conv_general_dilated`, faster to differentiate.

XLA:CPU differentiates grouped convolutions very slowly; written as nine shifted slices and one batched
matrix product over the groups, the backward pass of the same layer is far faster, while XLA's own grouped
convolution stays the faster forward pass. 1x1 convolutions run faster forward and backward as a matrix
product. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp

from arp_jax.xla_cpu import SCOPE


def _grouped_conv(x, kernel, stride: int, groups: int):
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
def grouped_conv3x3(x, kernel, stride: int, groups: int):
  """3x3 grouped convolution, padding 1: x [B, H, W, C], kernel [3, 3, C / groups, O] -> [B, H', W', O].

  The forward pass is XLA's grouped convolution; the backward pass differentiates the shifted-slices
  formulation (`_grouped_conv_by_taps`), which XLA:CPU runs far faster.
  """
  return _grouped_conv(x, kernel, stride, groups)


def _grouped_conv3x3_forward(x, kernel, stride, groups):
  return _grouped_conv(x, kernel, stride, groups), (x, kernel)


def _grouped_conv3x3_backward(stride, groups, residuals, cotangent):
  _, vjp = jax.vjp(lambda x, kernel: _grouped_conv_by_taps(x, kernel, stride, groups), *residuals)
  return vjp(cotangent)


grouped_conv3x3.defvjp(_grouped_conv3x3_forward, _grouped_conv3x3_backward)


def pointwise_conv(x, kernel, stride: int):
  """1x1 convolution without padding as a matrix product: x [B, H, W, C], kernel [1, 1, C, O] ->
  [B, ceil(H / stride), ceil(W / stride), O]."""
  return jnp.einsum("bhwc,co->bhwo", x[:, ::stride, ::stride], kernel[0, 0])


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, **kwargs):
  """`lax.conv_general_dilated` (NHWC input, HWIO kernel) with ResNeXt's 3x3 grouped convolutions (padding
  1) sent to `grouped_conv3x3` and its 1x1 convolutions (no padding) to `pointwise_conv`; any other
  convolution is XLA's own."""
  with jax.named_scope(SCOPE):
    dilated = any(d != 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
    pads = tuple(map(tuple, padding)) if not isinstance(padding, str) else padding
    if window_strides[0] == window_strides[1] and not dilated:
      if feature_group_count > 1 and rhs.shape[:2] == (3, 3) and pads == ((1, 1), (1, 1)):
        return grouped_conv3x3(lhs, rhs, window_strides[0], feature_group_count)
      if feature_group_count == 1 and rhs.shape[:2] == (1, 1) and pads == ((0, 0), (0, 0)):
        return pointwise_conv(lhs, rhs, window_strides[0])
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, **kwargs)
