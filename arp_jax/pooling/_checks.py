"""Input checks shared by the pooling operators.

Every public operator validates its arguments here, so that one bad input gets the same message whichever
operator it reached. Checks look only at shapes and dtypes (static under `jax.jit`), never at values,
except `check_finite`, which needs concrete values and says so.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_real_dtype(x, name: str) -> None:
  """Raises TypeError unless `x` holds real numbers (integers or floats; not bool, complex, text)."""
  dtype = getattr(x, "dtype", None)
  if dtype is None:
    raise TypeError(f"{name} must be a NumPy or JAX array, got {type(x).__name__}")
  dtype = np.dtype(dtype)
  if dtype == np.bool_ or not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
    raise TypeError(
        f"{name} has dtype {dtype}; expected real numbers (uint8, float16, bfloat16, float32, ...)")


def as_float32(x, name: str) -> jax.Array:
  """`x` as a float32 JAX array, after `check_real_dtype`. Arrays only: lists are ambiguous about dtype."""
  check_real_dtype(x, name)
  return jnp.asarray(x).astype(jnp.float32)


def normalize_axis(axis: int, ndim: int, name: str) -> int:
  """`axis` in 0..ndim-1, or ValueError naming the array and its rank."""
  if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
    raise TypeError(f"axis must be an int, got {axis!r}")
  if not -ndim <= axis < ndim:
    raise ValueError(f"axis {axis} is out of range for {name} with {ndim} dimensions")
  return int(axis) % ndim


def check_time_axis(x, axis: int, name: str) -> tuple[int, int]:
  """Returns (axis, T) for the time axis of `x`; ValueError for a scalar or an empty video."""
  ndim = np.ndim(x)
  if ndim == 0:
    raise ValueError(f"{name} is a scalar; expected an array with a time axis, e.g. [T, H, W, C]")
  axis = normalize_axis(axis, ndim, name)
  T = x.shape[axis]
  if T == 0:
    raise ValueError(f"{name} has no frames: its time axis {axis} has length 0 (shape {tuple(x.shape)})")
  return axis, int(T)


def is_concrete(x) -> bool:
  """True when the values of `x` are known now (not a tracer inside jit, vmap or grad)."""
  return not isinstance(x, jax.core.Tracer)


def check_finite(x, name: str, axis: int) -> None:
  """ValueError naming the first index along `axis` that holds NaN or infinity.

  Needs concrete values: inside `jax.jit` the check cannot run and a ValueError says so.
  """
  if not is_concrete(x):
    raise ValueError(
        f"nan_policy='raise' needs concrete {name}, but it is traced (inside jit/vmap/grad); "
        "check the frames before the jitted function, or use nan_policy='propagate'")
  values = np.asarray(jnp.asarray(x).astype(jnp.float32))
  bad = ~np.isfinite(values)
  if bad.any():
    other = tuple(i for i in range(values.ndim) if i != axis)
    index = int(np.flatnonzero(bad.any(axis=other))[0])
    raise ValueError(f"{name} holds NaN or infinity at index {index} of axis {axis} (the time axis)")
