"""Turning dynamic images (and other float maps) into viewable uint8 images.

Display only: the dynamic image itself stays float32 on the raw pixel scale (see `arp_jax.pooling`). The
reference convention is a min-max over the whole array, all channels together, to 0..255, then rounding.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import checks


def to_image(x) -> jax.Array:
  """Min-max scales `x` over the whole array to 0..255 and rounds to uint8.

  One minimum and one maximum for all elements (all channels together), as the reference code displays
  dynamic images; scaling per channel would change the colours. Values are rounded half up
  (`floor(v + 0.5)`, as MATLAB's uint8 conversion does for non-negative values), not truncated.

  Args:
    x: `[...]` real NumPy or JAX array of any shape, e.g. `[H, W, C]`; channels are not special.

  Returns:
    `uint8 [...]` JAX array of the same shape. A constant `x` gives all zeros.

  Raises:
    TypeError: `x` is not a real-valued array.
    ValueError: `x` is empty, or (when its values are concrete) holds NaN or infinity, for which the
      min-max is undefined. Under `jax.jit` the values cannot be checked: NaN then propagates and the
      affected output is an unspecified uint8 value.
  """
  checks.check_real_dtype(x, "x")
  if np.size(x) == 0:
    raise ValueError(f"x is empty (shape {tuple(np.shape(x))}); expected at least one value to scale")
  # NumPy input is checked in its own dtype: float64 values beyond float32's range are finite.
  host = isinstance(x, (np.ndarray, np.generic))
  if checks.is_concrete(x) and not bool((np if host else jnp).isfinite(x).all()):
    raise ValueError("x holds NaN or infinity; min-max scaling to 0..255 needs finite values")
  if host and np.asarray(x).dtype == np.float64 and np.abs(x).max() > np.finfo(np.float32).max:
    with np.errstate(over="ignore"):  # the overflowing branch of a range wider than float64's maximum
      return jnp.asarray(_min_max_to_uint8(np.asarray(x), np))  # JAX would make float32 infinities of it
  return _min_max_to_uint8(jnp.asarray(x).astype(jnp.float32), jnp)


def _min_max_to_uint8(x, xp):
  """`to_image`'s scaling of finite `x` in its own float dtype, with `xp` NumPy or jax.numpy."""
  low, high = xp.min(x), xp.max(x)
  span = high - low
  # A range wider than the dtype's maximum overflows `high - low` and `x - low`; halving every term
  # first is exact (a power of two), so only such ranges take that path.
  wide = ~xp.isfinite(span)
  span = xp.where(wide, high / 2 - low / 2, span)
  offset = xp.where(wide, x / 2 - low / 2, x - low)
  # A constant image has no range: define it as black instead of dividing by zero.
  scale = xp.where(span > 0, 255.0 / xp.where(span > 0, span, 1.0), 0.0)
  # Multiplying by 255/span (not dividing by span then multiplying by 255) keeps x.5 cases exact when
  # 255/span is representable, e.g. span 2 gives exactly 127.5.
  scaled = offset * scale
  return xp.clip(xp.floor(scaled + 0.5), 0, 255).astype(xp.uint8)


def grid(images, columns: int | None = None) -> jax.Array:
  """Tiles a stack of images into one image, row by row; cells past the last image stay black.

  Args:
    images: `uint8 [S, H, W, C]`, e.g. one `to_image` per window.
    columns: images per row; default `ceil(sqrt(S))`, a near-square grid.

  Returns:
    `uint8 [rows * H, columns * W, C]` JAX array with `rows = ceil(S / columns)`.

  Raises:
    ValueError: `images` is not 4-dimensional or holds no images, or `columns` is not a positive int.
    TypeError: `images` is not uint8.
  """
  if np.ndim(images) != 4:
    raise ValueError(f"images has {np.ndim(images)} dimensions (shape {tuple(np.shape(images))}); "
                     "expected a stack [S, H, W, C]")
  dtype = getattr(images, "dtype", None)
  if dtype is None or np.dtype(dtype) != np.uint8:
    raise TypeError(f"images has dtype {dtype}; expected uint8 images (use to_image first)")
  S, H, W, C = images.shape
  if S == 0:
    raise ValueError("images holds no images (S = 0); expected at least one")
  if columns is None:
    columns = math.ceil(math.sqrt(S))
  if not checks.is_int(columns) or columns < 1:
    raise ValueError(f"columns must be a positive int, got {columns!r}")
  columns = int(columns)
  rows = math.ceil(S / columns)
  cells = jnp.zeros((rows * columns, H, W, C), jnp.uint8).at[:S].set(jnp.asarray(images))
  # [rows, columns, H, W, C] -> [rows, H, columns, W, C]: each output row of pixels runs across a grid row.
  return cells.reshape(rows, columns, H, W, C).transpose(0, 2, 1, 3, 4).reshape(rows * H, columns * W, C)
