"""Image helpers of the TV-L1 op (`tvl1.py`): grey conversion, the pyramid, warping, gradients, median filter.

All of them work on one image `[H, W]` (the op maps them over the batch with `jax.vmap`) and are pure
stencil/gather programs that XLA fuses. Boundaries are Neumann (replicate) throughout, as in Sanchez,
Meinhardt-Llopis and Facciolo (IPOL 2013): outside the image the image continues with its edge value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# ITU-R BT.601 luma weights for R, G, B: the weights of OpenCV's COLOR_RGB2GRAY, so that our grey frames
# are those the OpenCV reference sees.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

INTERPOLATIONS = ("bicubic", "bilinear")


def to_grey(frames: jax.Array, rgb: bool) -> jax.Array:
  """`[..., H, W, 3]` RGB (rgb=True) or `[..., H, W]` grey, any real dtype on the 0..255 scale -> float32
  `[..., H, W]` grey on the same scale (not rounded to integers)."""
  frames = frames.astype(jnp.float32)
  if not rgb:
    return frames
  r, g, b = LUMA_WEIGHTS
  return r * frames[..., 0] + g * frames[..., 1] + b * frames[..., 2]


def pyramid_shapes(shape: tuple[int, int], scales: int, scale_step: float) -> list[tuple[int, int]]:
  """The `(H, W)` of each scale, finest first: each scale is `scale_step` times the one above, rounded."""
  shapes = [tuple(shape)]
  for _ in range(scales - 1):
    h, w = shapes[-1]
    shapes.append((int(h * scale_step + 0.5), int(w * scale_step + 0.5)))
  return shapes


def downsample(image: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """`image` `[H, W]` resized down to `shape` with an antialiasing (widened triangle) filter.

  IPOL 2013 smooths with a Gaussian before sampling so that each coarser scale carries no aliasing; the
  antialiased linear resize of `jax.image.resize` does the same job with a kernel scaled to the step.
  """
  return jax.image.resize(image, shape, method="linear", antialias=True)


def upsample_flow(flow: jax.Array, shape: tuple[int, int], scale_step: float) -> jax.Array:
  """Flow `[h, w, 2]` of a coarse scale as the initial flow `[H, W, 2]` of the next finer one: resized
  bilinearly and its displacements multiplied by 1 / scale_step (pixels of the finer grid)."""
  return jax.image.resize(flow, (*shape, 2), method="linear") / scale_step


def centered_gradient(image: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(d/dx, d/dy) of `image` `[H, W]` by centred differences `(I[i+1] - I[i-1]) / 2`, replicate edges."""
  padded = jnp.pad(image, 1, mode="edge")
  gx = 0.5 * (padded[1:-1, 2:] - padded[1:-1, :-2])
  gy = 0.5 * (padded[2:, 1:-1] - padded[:-2, 1:-1])
  return gx, gy


def _cubic_weights(t: jax.Array) -> tuple[jax.Array, ...]:
  """Keys' cubic convolution weights (a = -0.5, Catmull-Rom, as in IPOL 2013) of the taps at offsets
  -1, 0, 1, 2 for a sample `t` in [0, 1) past tap 0."""
  a = -0.5
  def near(d):  # |d| <= 1
    return ((a + 2) * d - (a + 3)) * d * d + 1
  def far(d):  # 1 < |d| < 2
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
  return far(1 + t), near(t), near(1 - t), far(2 - t)


def warp(images: jax.Array, x: jax.Array, y: jax.Array, interpolation: str) -> jax.Array:
  """`images` `[H, W, C]` sampled at the real positions (`x`, `y`) `[H, W]` -> `[H, W, C]`.

  Bicubic (16 taps, Keys a = -0.5) or bilinear (4 taps); taps outside the image take the nearest edge
  pixel. The C channels (the image and its two derivatives) share one set of gathers.
  """
  height, width, channels = images.shape
  flat = images.reshape(height * width, channels)
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  tx = x - x0
  ty = y - y0
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  if interpolation == "bicubic":
    offsets, wx, wy = (-1, 0, 1, 2), _cubic_weights(tx), _cubic_weights(ty)
  else:
    offsets, wx, wy = (0, 1), (1 - tx, tx), (1 - ty, ty)
  columns = [jnp.clip(x0 + o, 0, width - 1) for o in offsets]
  out = 0.0
  for oy, weight_y in zip(offsets, wy):
    row = jnp.clip(y0 + oy, 0, height - 1) * width
    for column, weight_x in zip(columns, wx):
      taps = flat.at[(row + column).reshape(-1)].get(mode="promise_in_bounds")
      out = out + (weight_y * weight_x)[..., None] * taps.reshape(height, width, channels)
  return out


def _batcher_comparators(n: int):
  """Batcher's odd-even merge sort network for `n` (a power of 2) wires, as (i, j) compare-exchanges."""
  def merge(lo, hi, r):
    step = 2 * r
    if step < hi - lo:
      yield from merge(lo, hi, step)
      yield from merge(lo + r, hi, step)
      yield from ((i, i + r) for i in range(lo + r, hi - r, step))
    else:
      yield (lo, lo + r)

  def sort(lo, hi):
    if hi - lo >= 1:
      mid = lo + (hi - lo) // 2
      yield from sort(lo, mid)
      yield from sort(mid + 1, hi)
      yield from merge(lo, hi, 1)

  return list(sort(0, n - 1))


_LOW, _HIGH = "low", "high"  # constant wires that pad the network: below and above every value


def _median_of(values: list[jax.Array]) -> jax.Array:
  """Elementwise median of an odd number of arrays by a sorting network of min/max.

  A sorting network is a fixed program of elementwise min and max, which XLA fuses into one pass over the
  image (a sort along a stacked axis is several times slower on the CPU). The inputs are padded to a power
  of 2 with constants below and above all values so that the median lands on a known wire; comparators
  that touch a constant reduce to relabelling, and XLA drops those that do not reach the median wire.
  """
  n = len(values)
  size = 1 << (n - 1).bit_length()
  low = (size - n + 1) // 2
  wires = list(values) + [_LOW] * low + [_HIGH] * (size - n - low)
  for i, j in _batcher_comparators(size):
    a, b = wires[i], wires[j]
    if a is _LOW or b is _HIGH:
      continue  # already in order
    if a is _HIGH or b is _LOW:
      wires[i], wires[j] = b, a
      continue
    wires[i], wires[j] = jnp.minimum(a, b), jnp.maximum(a, b)
  return wires[low + n // 2]


def median_filter(image: jax.Array, size: int) -> jax.Array:
  """The `size` x `size` median of `image` `[H, W]` (replicate edges); `size` odd."""
  radius = size // 2
  padded = jnp.pad(image, radius, mode="edge")
  height, width = image.shape
  values = [padded[dy:dy + height, dx:dx + width] for dy in range(size) for dx in range(size)]
  return _median_of(values)
