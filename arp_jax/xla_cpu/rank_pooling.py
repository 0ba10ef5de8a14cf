"""Exact rank pooling on XLA:CPU: the same result as `arp_jax.pooling.videodarwin.pool_sequences`, faster.

The plain formulation stores the frame vectors z [n, D, T] and forms their Gram matrices and the weights by
matrix products. On XLA:CPU that costs a batch-sized temporary, a pass to write it and two to read it back,
and matrix products with T = 10 rows run far from peak. Here, for short sequences (T <= FUSED_MAX_T, e.g.
the 10-frame windows of multiple dynamic images), z is never stored: one fused pass over the frames sums
the Gram matrices, the solver runs on them, and a second fused pass sums the weights; each pass computes
z on the fly from the frames, in their own layout and dtype. Longer sequences, and the derivatives of
short ones, take the plain formulation in chunks of the batch.

Everything here runs under `jax.named_scope(SCOPE)`. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from arp_jax.pooling import ranking_solvers, videodarwin
from arp_jax.xla_cpu import SCOPE

# Sequences of at most this many frames are pooled in two fused passes (`_fused_gram`, whose reduction has
# T(T+1)/2 outputs, compiles in seconds at T = 24); longer ones by the plain formulation.
FUSED_MAX_T = 24
# The plain formulation runs on chunks of about this many bytes of float32 frames (`in_chunks`).
CHUNK_BYTES = 8 << 20
# The Gram matrices are summed in blocks of at most this many values first (`_block_length`).
_MAX_BLOCK = 256


def pool_sequences(psi: jax.Array, lengths: jax.Array | None, hyperparameters: tuple,
                   *, recipe: videodarwin.Recipe) -> jax.Array:
  """`videodarwin.pool_sequences` (same arguments, same result) for XLA:CPU."""
  T, D = psi.shape[1:]
  chunk = max(1, CHUNK_BYTES // (4 * T * D))
  with jax.named_scope(SCOPE):
    if T <= FUSED_MAX_T:
      return pool_fused(psi, lengths, hyperparameters, recipe, chunk)
    return in_chunks(psi, lengths, hyperparameters, recipe, chunk)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def pool_fused(psi, lengths, hyperparameters, recipe, chunk):
  """The value from two fused passes over the frames (`pool_in_two_passes`), the derivative from the plain
  formulation in chunks (`in_chunks`): differentiated over the whole batch, the fused passes are several
  times slower and their temporaries batch-sized."""
  return pool_in_two_passes(psi, lengths, hyperparameters, recipe)


@pool_fused.defjvp
def _pool_fused_jvp(recipe, chunk, primals, tangents):
  # Only the frames are differentiated: the hyperparameters are concrete to rank_pool.
  (psi, lengths, hyperparameters), (psi_dot, _, _) = primals, tangents
  plain = lambda p: in_chunks(p, lengths, hyperparameters, recipe, chunk)
  _, tangent = jax.jvp(plain, (psi,), (psi_dot,))
  return pool_fused(psi, lengths, hyperparameters, recipe, chunk), tangent


def pool_in_two_passes(psi: jax.Array, lengths: jax.Array | None, hyperparameters: tuple,
                       recipe: videodarwin.Recipe) -> jax.Array:
  """[n, T, D] frames (any real dtype), [n] lengths or None -> [n, D] ([n, 2D] for forward_backward): one
  fused pass over the frames for the Gram matrices, one for the weights. Not differentiable by itself
  (`pool_fused` gives it its derivative)."""
  n, T, D = psi.shape
  L = _block_length(D)
  valid = videodarwin.valid_frames(lengths, T)
  sequences = [s.reshape((n, T, D // L, L)) for s in videodarwin.directions(psi, lengths, recipe)]
  grams = jnp.stack([_fused_gram(jnp.stack(_frame_rows(s, valid, recipe), axis=1)) for s in sequences])
  c = ranking_solvers.dual_coefficients(grams, valid, hyperparameters, objective=recipe.objective,
                                        normalize=recipe.normalize)
  # The barrier keeps XLA from sharing the rows between the two passes (common subexpressions): shared,
  # they would be stored, a batch-sized temporary and a third pass.
  sequences, c = lax.optimization_barrier((sequences, c))
  weights = []
  for s, c_k in zip(sequences, c):
    rows = _frame_rows(s, valid, recipe)
    weights.append(sum(c_k[:, t, None, None] * z for t, z in enumerate(rows)).reshape((n, D)))
  return jnp.concatenate(weights, axis=-1)


def _frame_rows(psi: jax.Array, valid: jax.Array | None, recipe: videodarwin.Recipe) -> list[jax.Array]:
  """z_1..z_T before normalisation, one array per frame: psi [n, T, ...] (any real dtype) -> T float32
  arrays [n, ...]; padded frames (valid [n, T] False) give zeros.

  The running mean is unrolled, s_t = s_{t-1} + psi_t, so that XLA fuses the rows into whatever reads them
  and each pass reads the frames once. (`jnp.cumsum` becomes a reduce-window that XLA:CPU runs as scalar
  loads T rows apart, many times slower.)
  """
  expand = (slice(None),) + (None,) * (psi.ndim - 2)  # a per-sequence scalar against [n, ...]
  rows, running = [], None
  for t in range(psi.shape[1]):
    z = psi[:, t].astype(jnp.float32)
    is_valid = None if valid is None else valid[:, t][expand]
    if is_valid is not None:
      # where, not multiplication: padded frames may hold NaN, and NaN * 0 is NaN.
      z = jnp.where(is_valid, z, 0.0)
    if recipe.time_varying_mean:
      running = z if running is None else running + z
      z = running / np.float32(t + 1)
    rows.append(videodarwin.apply_nonlinearity(z, is_valid, recipe))
  return rows


def _block_length(D: int) -> int:
  """Length L of the blocks that `_fused_gram` sums first: the largest divisor of D up to _MAX_BLOCK, or D
  itself when every divisor up to _MAX_BLOCK is below 64 (then the sum has one level).

  XLA:CPU's reductions add one value at a time: float32 rounding grows with the length of a sequential
  sum, and two levels of short sums keep the Gram matrix close to the plain formulation's.
  """
  divisor = max(L for L in range(1, min(D, _MAX_BLOCK) + 1) if D % L == 0)
  return divisor if divisor >= 64 else D


def _fused_gram(z: jax.Array) -> jax.Array:
  """G = Z Z^T [n, T, T] of frame vectors z [n, T, B, L] (each vector's D = B * L values in B blocks).

  The T(T+1)/2 distinct products are summed by one variadic reduction, so that XLA fuses the computation of
  z into it (the caller stacks `_frame_rows`) and z never exists in memory: the Gram matrix costs one read
  of the frames. The sum runs within blocks of L values first, then over the B block sums.
  """
  T = z.shape[1]
  pairs = [(t, s) for t in range(T) for s in range(t + 1)]
  products = [z[:, t] * z[:, s] for t, s in pairs]
  zeros = [np.float32(0)] * len(pairs)
  add = lambda a, b: [u + v for u, v in zip(a, b)]
  block_sums = lax.reduce(products, zeros, add, (2,))  # each [n, B]
  sums = jnp.stack(lax.reduce(block_sums, zeros, add, (1,)), axis=-1)  # [n, T(T+1)/2]
  index = np.zeros((T, T), np.int32)
  for k, (t, s) in enumerate(pairs):
    index[t, s] = index[s, t] = k
  return sums[:, index]


def in_chunks(psi: jax.Array, lengths: jax.Array | None, hyperparameters: tuple,
              recipe: videodarwin.Recipe, size: int) -> jax.Array:
  """`videodarwin.pool_sequences` on consecutive chunks of `size` sequences, assembled: [n, T, D] -> [n, E].

  One pass over the whole batch would hold several batch-sized float32 temporaries (the frame vectors in
  two layouts), and on the CPU every fresh buffer that large costs a page fault per 4 KB on each call. The
  loop slices its chunk out of the frames in place; the last chunk ends at n and may overlap the one before
  it (those sequences are pooled twice, to the same values), so no padded copy of the input is ever made.
  """
  pool = functools.partial(videodarwin.pool_sequences, hyperparameters=hyperparameters, recipe=recipe)
  count = psi.shape[0]
  if count <= size:
    return pool(psi, lengths)

  def chunk(i, out):
    start = jnp.minimum(i * size, count - size)
    piece = lax.dynamic_slice_in_dim(psi, start, size)
    piece_lengths = None if lengths is None else lax.dynamic_slice_in_dim(lengths, start, size)
    return lax.dynamic_update_slice_in_dim(out, pool(piece, piece_lengths), start, 0)

  out_shape = jax.eval_shape(pool, psi[:size], None if lengths is None else lengths[:size])
  out = jnp.zeros((count,) + out_shape.shape[1:], out_shape.dtype)
  # Static bounds make this a scan, which reverse-mode differentiation needs.
  return lax.fori_loop(0, -(-count // size), chunk, out)
