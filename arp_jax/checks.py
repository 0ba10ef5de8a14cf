"""The checks every public entry point makes of its arguments, in one place.

Public functions (the pooling operators, the models' entry points, the input pipeline's builders, the
config) validate here, once, so that one bad input gets the same message whichever entry point it reached;
private helpers and per-example code trust their callers. Array checks look only at shapes and dtypes
(static under `jax.jit`), never at values, except `check_finite` and `check_lengths`, which look at values
when they are concrete.
"""

from __future__ import annotations

import math
import numbers

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


def is_int(value) -> bool:
  """True for a Python or NumPy integer; False for a bool (an int subclass that is never a count)."""
  return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, low: int | None = 1) -> int:
  """`value` as an int: TypeError unless it is an integer (not a bool), ValueError if it is below `low`
  (None: no bound)."""
  if not is_int(value):
    raise TypeError(f"{name} is {value!r}; expected an int")
  if low is not None and value < low:
    kind = {0: "a non-negative int", 1: "a positive int"}.get(low, f"an int >= {low}")
    raise ValueError(f"{name} is {value!r}; expected {kind}")
  return int(value)


def check_bool(value, name: str) -> bool:
  """`value` as a bool: TypeError unless it is a Python or NumPy bool."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} is {value!r}; expected True or False")
  return bool(value)


def check_positive_number(value, name: str) -> float:
  """`value` as a Python float: TypeError unless it is a concrete real number (not a bool, not traced),
  ValueError unless it is finite and > 0. Hyperparameters must be concrete to be checked."""
  if isinstance(value, jax.core.Tracer):
    raise TypeError(f"{name} must be a concrete positive number, got a traced value (inside jit/vmap/grad); "
                    "pass it as a Python float")
  if isinstance(value, (np.ndarray, jax.Array, np.generic)) and np.ndim(value) == 0:
    is_real = np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
  else:
    is_real = isinstance(value, numbers.Real)
  if not is_real or isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  number = float(value)
  if not (math.isfinite(number) and number > 0):
    raise ValueError(f"{name} must be a finite positive number, got {value!r}")
  return number


def check_lengths(lengths, batch_shape: tuple[int, ...], T: int, what: str = "sequence") -> jax.Array:
  """`lengths` (an integer array or sequence of shape `batch_shape`, one frame count per `what`) as an
  int32 array. Concrete lengths must lie in 1..T; traced ones (inside jit) cannot be checked and are
  clipped to 0..T (a sequence of length 0 pools to zeros)."""
  if getattr(lengths, "dtype", None) is None:
    lengths = np.asarray(lengths)  # a list or tuple
  check_real_dtype(lengths, "lengths")
  if not jnp.issubdtype(lengths.dtype, jnp.integer):
    raise TypeError(f"lengths has dtype {lengths.dtype}; expected integers (one frame count per {what})")
  if tuple(lengths.shape) != tuple(batch_shape):
    raise ValueError(f"lengths has shape {tuple(lengths.shape)}; expected {tuple(batch_shape)}, one length "
                     f"per {what} (the axes before the time axis)")
  if is_concrete(lengths):
    values = np.asarray(lengths).reshape(-1)
    bad = np.flatnonzero((values < 1) | (values > T))
    if bad.size:
      raise ValueError(f"lengths must lie in 1..{T} (the padded number of frames T): lengths[{bad[0]}] = "
                       f"{values[bad[0]]}")
    return jnp.asarray(lengths, jnp.int32)
  return jnp.clip(jnp.asarray(lengths, jnp.int32), 0, T)
