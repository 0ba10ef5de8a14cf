"""Approximate rank pooling (ARP) coefficients, eqs. (3) and (5) of the paper.

ARP is the first gradient step, from d = 0, of the RankSVM objective of eq. (1): it reduces to a fixed
weighted sum of the frames, `d = sum_t alpha_t psi(I_t)`, whose weights depend only on the video length T.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from arp_jax import checks

VARIANTS = ("harmonic", "linear")


def _check_variant(variant: str) -> None:
  if variant not in VARIANTS:
    raise ValueError(f"unknown ARP variant {variant!r}; expected one of {VARIANTS}")


def arp_weights(T: int, variant: str = "harmonic") -> np.ndarray:
  """ARP coefficients alpha_1..alpha_T for a video of T frames.

  Args:
    T: number of frames, >= 1.
    variant: "harmonic" (eq. 3: ranking the time-varying means V_t, which ARP folds into the weights),
      `alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})`; or "linear" (eq. 5: ranking the frames
      themselves), `alpha_t = 2t - T - 1`.

  Returns:
    float32 [T]. For T = 1 both variants give [1.0], the reference implementation's convention (the
    formulas give 0, which would turn a one-frame video into a black image).
  """
  _check_variant(variant)
  if not checks.is_int(T):
    raise TypeError(f"T must be an int (the number of frames), got {T!r}")
  if T < 1:
    raise ValueError(f"T={T}: a video needs at least one frame to be pooled")
  if T == 1:
    return np.ones(1, np.float32)
  t = np.arange(1, T + 1, dtype=np.float64)
  if variant == "linear":
    return (2 * t - T - 1).astype(np.float32)
  # Float64 here, cast once: the two terms nearly cancel for frames in the middle of long videos.
  harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])  # H_0..H_T
  return (2 * (T - t + 1) - (T + 1) * (harmonic[T] - harmonic[:-1])).astype(np.float32)


def arp_weight_at(t, length, variant: str, harmonic):
  """ARP coefficient of 0-based frame `t` in videos of `length` frames; 0 where t >= length.

  The traced counterpart of `arp_weights`, for lengths known only inside `jax.jit` (padded batches,
  packed segments). Float32 throughout: the error against `arp_weights` is below 1e-6 of the largest
  weight for T up to thousands of frames.

  Args:
    t: int scalar (Python or traced), 0-based frame index.
    length: int array [...], the video lengths.
    variant: "harmonic" or "linear".
    harmonic: float32 [T_max + 1], the harmonic numbers H_0..H_{T_max} (from `harmonic_numbers`).

  Returns:
    float32 [...], alpha_{t+1} for each length.
  """
  length = jnp.asarray(length)
  lf = length.astype(jnp.float32)
  if variant == "linear":
    alpha = 2.0 * t + 1.0 - lf
  else:
    alpha = 2.0 * (lf - t) - (lf + 1.0) * (harmonic[length] - harmonic[t])
  alpha = jnp.where(length == 1, 1.0, alpha)  # the reference's T = 1 convention
  return jnp.where(t < length, alpha, 0.0)


def harmonic_numbers(T: int) -> jnp.ndarray:
  """float32 [T + 1]: H_0 = 0, H_1, ..., H_T, summed in float64 for accuracy."""
  return jnp.asarray(np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, T + 1))]), jnp.float32)
