"""The paper's 8-bit quantisation of optical flow: displacements clipped to +-bound pixels, mapped to 0..255.

  q = round((v + bound) * 255 / (2 * bound)),   v = q * 2 * bound / 255 - bound

so zero motion maps to 127.5, rounded up to 128 here.
"""

from __future__ import annotations

import numpy as np

from arp_jax.checks import check_positive_number

# The paper's clipping bound in pixels (REFERENCE.md, "Data").
DEFAULT_BOUND = 20.0


def quantize(flow, bound: float = DEFAULT_BOUND) -> np.ndarray:
  """Clips displacements to +-`bound` pixels and maps them linearly to 0..255.

  `q = floor((clip(v, -bound, bound) + bound) * 255 / (2 * bound) + 0.5)`: rounding half UP (not numpy's
  round-half-to-even), so zero motion (127.5) becomes 128 and the map is monotonic without a parity
  pattern. `dequantize(quantize(v))` is within `bound / 255` of `v` for |v| <= bound.

  Args:
    flow: float array of any shape, e.g. `[T-1, H, W, 2]` displacements (u, v) in pixels.
    bound: clipping bound in pixels, > 0.

  Returns:
    `uint8`, same shape as `flow`.

  Raises:
    ValueError: `flow` is not a real floating-point array, or `bound` is not a finite positive number
      (TypeError: not a number).
  """
  flow = np.asarray(flow)
  if not np.issubdtype(flow.dtype, np.floating):
    raise ValueError(f"flow has dtype {flow.dtype}; expected floating-point displacements in pixels")
  bound = check_positive_number(bound, "bound")
  scaled = (np.clip(flow.astype(np.float64), -bound, bound) + bound) * (255.0 / (2.0 * bound))
  # NaN has no meaningful code; clip keeps it NaN and the cast would be undefined, so map it to zero motion.
  scaled = np.where(np.isnan(scaled), 127.5, scaled)
  return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def dequantize(q, bound: float = DEFAULT_BOUND) -> np.ndarray:
  """The inverse map of `quantize`: `q * 2 * bound / 255 - bound`, `float32` of the same shape as `q`.

  Raises:
    ValueError: `q` is not `uint8`, or `bound` is not positive.
  """
  q = np.asarray(q)
  if q.dtype != np.uint8:
    raise ValueError(f"q has dtype {q.dtype}; expected uint8 codes from quantize or read_flow_jpegs")
  bound = check_positive_number(bound, "bound")
  return (q.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)).astype(np.float32)
