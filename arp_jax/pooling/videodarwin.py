"""VideoDarwin's rank pooling of a batch of sequences, in its plain formulation (the reference).

For each sequence of frames psi [T, D]:

  1. frame vectors z_t: the time-varying mean V_t = (1/t) sum_{i<=t} psi_i (or the frames themselves),
     then the nonlinearity (signed square root, or none);
  2. the Gram matrix G = Z Z^T [T, T], by a matrix product;
  3. the dual solution of the ranking problem on the kernel K = G / (|z| |z|^T) of the L2-normalised
     vectors x_t = z_t / |z_t| (`ranking_solvers.dual_coefficients`), which returns c = beta / |z|;
  4. the weights w = Z^T c = X^T beta.

The normalised vectors never exist: their kernel and the weights follow from z and its norms. Frames are
many values (D, e.g. 150528 pixels) and few (T, e.g. 10), so everything past step 1 works on T x T
matrices. `arp_jax.rank_pool` checks its arguments and calls `pool_sequences` here, or on XLA:CPU its
two-pass formulation (`arp_jax.xla_cpu.rank_pooling`), which computes the same.
"""

from __future__ import annotations

import dataclasses

import jax
from jax import lax
import jax.numpy as jnp

from arp_jax.pooling import ranking_solvers

OBJECTIVES = ranking_solvers.OBJECTIVES
NONLINEARITIES = ("ssr", None)
_HIGHEST = lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The switches of `arp_jax.rank_pool` (see there), static in its compiled program."""

  objective: str = "svr"
  time_varying_mean: bool = True
  nonlinearity: str | None = "ssr"
  normalize: bool = True
  forward_backward: bool = False


def signed_square_root(x: jax.Array) -> jax.Array:
  """sign(x) sqrt(|x|), elementwise, with derivative 0 (not infinity) at x = 0; NaN stays NaN."""
  is_zero = x == 0
  root = jnp.sqrt(jnp.abs(jnp.where(is_zero, 1.0, x)))
  return jnp.where(is_zero, 0.0, jnp.sign(x) * root)


def apply_nonlinearity(means: jax.Array, is_valid: jax.Array | None, recipe: Recipe) -> jax.Array:
  """The frame vectors z from the (running) means, elementwise: the nonlinearity, then zeros where
  `is_valid` (broadcastable; None: every frame) is False."""
  z = signed_square_root(means) if recipe.nonlinearity == "ssr" else means
  if is_valid is not None and recipe.time_varying_mean:
    # The running mean past the end of a sequence repeats its last value; those frames must not be fitted.
    z = jnp.where(is_valid, z, 0.0)
  return z


def frame_vectors(psi: jax.Array, valid: jax.Array | None, recipe: Recipe) -> jax.Array:
  """z_t before normalisation, time last: psi [n, T, D] (any real dtype), valid [n, T] or None ->
  float32 [n, D, T]; padded frames give zeros.

  Time goes last so that G = Z Z^T and w = Z^T c contract the long axis D as the major one: XLA's matrix
  products on the CPU, which run the derivatives there, are several times faster so.
  """
  psi = psi.astype(jnp.float32)
  if valid is not None:
    # where, not multiplication: padded frames may hold NaN, and NaN * 0 is NaN.
    psi = jnp.where(valid[..., None], psi, 0.0)
  if recipe.time_varying_mean:
    T = psi.shape[-2]
    psi = jnp.cumsum(psi, axis=-2) / jnp.arange(1, T + 1, dtype=jnp.float32)[:, None]
  return apply_nonlinearity(jnp.swapaxes(psi, -1, -2), None if valid is None else valid[..., None, :],
                            recipe)


def valid_frames(lengths: jax.Array | None, T: int) -> jax.Array | None:
  """[n, T] bool, True for the first lengths[i] frames of sequence i; None for None (all valid)."""
  return None if lengths is None else jnp.arange(T) < jnp.clip(lengths, 0, T)[:, None]


def directions(psi: jax.Array, lengths: jax.Array | None, recipe: Recipe) -> list[jax.Array]:
  """The sequences to fit: psi [n, T, D], and for forward_backward also each one reversed in time within
  its valid length (padded frames stay where they are)."""
  if not recipe.forward_backward:
    return [psi]
  if lengths is None:
    return [psi, jnp.flip(psi, axis=-2)]
  T = psi.shape[-2]
  t = jnp.arange(T)
  length = jnp.clip(lengths, 0, T)[..., None]
  source = jnp.where(t < length, length - 1 - t, t)
  return [psi, jnp.take_along_axis(psi, source[..., None], axis=-2)]


def pool_sequences(psi: jax.Array, lengths: jax.Array | None, hyperparameters: tuple,
                   *, recipe: Recipe) -> jax.Array:
  """Rank pooling of n sequences: psi [n, T, D] frames (any real dtype), lengths [n] or None,
  hyperparameters (C, epsilon, max_iter, tol) -> float32 [n, D] ([n, 2D] for forward_backward).

  Differentiable in psi through the solvers' implicit differentiation.
  """
  valid = valid_frames(lengths, psi.shape[-2])
  z = [frame_vectors(s, valid, recipe) for s in directions(psi, lengths, recipe)]
  grams = jnp.stack([jnp.einsum("ndt,nds->nts", z_k, z_k, precision=_HIGHEST) for z_k in z])
  c = ranking_solvers.dual_coefficients(grams, valid, hyperparameters, objective=recipe.objective,
                                        normalize=recipe.normalize)
  weights = [jnp.einsum("nt,ndt->nd", c_k, z_k, precision=_HIGHEST) for c_k, z_k in zip(c, z)]
  return jnp.concatenate(weights, axis=-1)
