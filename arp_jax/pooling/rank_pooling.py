"""Exact rank pooling (RP): the learned ranking function of a sequence as its representation.

Rank pooling (Fernando et al., "VideoDarwin"; eq. (1) of the dynamic image paper) summarises frames
psi(I_1..I_T) by the parameters of a linear function whose scores order the frames in time. The pipeline of
VideoDarwin, each step switchable here:

  1. time-varying mean   V_t = (1/t) sum_{i<=t} psi(I_i);
  2. non-linearity       signed square root sign(x) sqrt(|x|);
  3. L2-normalise each frame's vector, x_t = z_t / |z_t|;
  4. fit the ranking function, by linear SVR to the labels t ("svr", VideoDarwin's) or by the RankSVM of
     eq. (1) ("ranksvm"): `ranking_solvers`.

That order suits feature sequences. For dynamic images (pixels), section 5.3 takes the square root first,
then the time-varying mean, and fits one hyperplane per colour channel: `rank_pool_pixels`.

This module checks the arguments and picks the formulation, once: `videodarwin.pool_sequences` (frame
vectors, Gram matrix by a matrix product, dual solver, weights w = Z^T c) on every platform, and on XLA:CPU
its two-pass formulation, `arp_jax.xla_cpu.rank_pooling`, which computes the same faster there.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from arp_jax import checks, platforms
from arp_jax.pooling import videodarwin
from arp_jax.pooling.videodarwin import NONLINEARITIES, OBJECTIVES
from arp_jax.xla_cpu import rank_pooling as xla_cpu_rank_pooling

# `rank_pool_pixels`: the dynamic image by section 5.3's order (square root, mean, a hyperplane per
# channel) or VideoDarwin's (mean, signed square root, L2, one hyperplane).
RP_ORDERS = ("paper", "videodarwin")
_HIGHEST = lax.Precision.HIGHEST

# The plain formulation everywhere; on XLA:CPU two fused passes over the frames.
_pool_sequences = platforms.by_platform(videodarwin.pool_sequences, cpu=xla_cpu_rank_pooling.pool_sequences)


def _check_features(features, name: str = "features") -> int:
  """T of `features` [..., T, D]; errors for a wrong rank, dtype or an empty time axis."""
  checks.check_real_dtype(features, name)
  if np.ndim(features) < 2:
    raise ValueError(
        f"{name} has {np.ndim(features)} dimensions; expected [..., T, D] (time, then feature vector)")
  if features.shape[-1] == 0:
    raise ValueError(f"{name} has shape {tuple(features.shape)}: feature vectors of size D = 0; expected "
                     "[..., T, D] with D >= 1")
  return checks.check_time_axis(features, -2, name)[1]


def rank_pool(features, C=1.0, epsilon=0.1, *, objective="svr", time_varying_mean=True,
              nonlinearity="ssr", normalize=True, forward_backward=False, lengths=None,
              max_iter=100, tol=1e-6) -> jax.Array:
  """Exact rank pooling: the weights of the linear function that ranks each sequence's frames in time.

  Args:
    features: [..., T, D] per-frame feature vectors psi(I_t) (e.g. flattened pixels, 0..255), any real
      dtype; computed in float32. Time is the second-to-last axis; leading axes are independent sequences.
    C: positive regularisation constant (C = 1 in VideoDarwin, 10 for dynamic images); for "ranksvm",
      lambda = 1/C.
    epsilon: positive width of the insensitive tube of the SVR loss (0.1 as VideoDarwin; unused by
      "ranksvm").
    objective: "svr" (VideoDarwin: linear SVR to the labels t = 1..T, squared epsilon-insensitive loss, no
      bias; liblinear `-s 11`) or "ranksvm" (eq. (1) of the paper).
    time_varying_mean: fit V_t = (1/t) sum_{i<=t} psi_i instead of the frames themselves.
    nonlinearity: "ssr" (signed square root) or None.
    normalize: L2-normalise each frame's vector (a zero vector stays zero).
    forward_backward: also fit the time-reversed sequence and return [forward, backward] concatenated.
    lengths: optional int array of shape features.shape[:-2], the number of valid frames of each sequence
      (1..T). Frames at t >= length are ignored (they may hold anything, NaN included), and the result equals
      rank-pooling that sequence alone; for forward_backward the reversal is within the valid frames.
    max_iter: cap on semismooth Newton iterations ("svr"; 2-6 are typical). "ranksvm" is solved by FISTA and
      may take up to ranking_solvers.RANKSVM_STEPS_PER_ITER * max_iter (100x) first-order steps.
    tol: stopping tolerance: relative size of the optimality residual ("svr", which also stops as soon as a
      full Newton step keeps the active pattern, i.e. is exact) or relative duality gap ("ranksvm").

  Returns:
    float32 [..., D] (forward_backward: [..., 2D], forward then backward weights).

  Notes:
    - T = 1 is well defined: for "svr" the result is 2C max(0, 1 - epsilon)/(1 + 2C) x_1 (the SVR fitted to
      the single vector and label 1); for "ranksvm" there are no pairs and the result is 0.
    - A NaN or infinity in a valid frame makes that sequence's whole result NaN.
    - Differentiable (jax.grad, jvp) by implicit differentiation of the optimality conditions: for "svr"
      with the active set of the solution held fixed; for "ranksvm" on the free pairs (multipliers strictly
      inside the box), the pairs at a bound held there. At points where the active set changes the result is
      continuous but only piecewise smooth, and the derivative is that of one piece. The signed square root
      has derivative 0 at 0 (its true derivative is infinite there).
    - The same program, and the same result, at top level and inside a caller's `jax.jit`; on XLA:CPU
      it takes two fused passes over the frames for sequences of up to 24 frames (see
      `arp_jax.xla_cpu.rank_pooling`), elsewhere the plain formulation of `videodarwin`.
    - Works under jit and vmap (over features and lengths). C, epsilon, max_iter, tol, objective and the
      switches must be concrete Python values; changing C, epsilon, max_iter or tol does not recompile.
  """
  C = checks.check_positive_number(C, "C")
  epsilon = checks.check_positive_number(epsilon, "epsilon")
  tol = checks.check_positive_number(tol, "tol")
  max_iter = checks.check_int(max_iter, "max_iter")
  if objective not in OBJECTIVES:
    raise ValueError(f"objective is {objective!r}; expected one of {OBJECTIVES}")
  if nonlinearity not in NONLINEARITIES:
    raise ValueError(f"nonlinearity is {nonlinearity!r}; expected one of {NONLINEARITIES}")
  T = _check_features(features)
  if lengths is not None:
    lengths = checks.check_lengths(lengths, tuple(features.shape[:-2]), T)
  recipe = videodarwin.Recipe(objective=objective, time_varying_mean=bool(time_varying_mean),
                              nonlinearity=nonlinearity, normalize=bool(normalize),
                              forward_backward=bool(forward_backward))
  return _rank_pool(features, lengths, (C, epsilon, max_iter, tol), recipe=recipe)


@functools.partial(jax.jit, static_argnames=("recipe",))
def _rank_pool(features, lengths, hyperparameters, *, recipe):
  """`rank_pool` after its checks: one compiled program per shape and recipe (the numeric hyperparameters
  are arguments, so changing C does not recompile)."""
  T, D = features.shape[-2:]
  batch_shape = features.shape[:-2]
  count = math.prod(batch_shape)
  lengths = None if lengths is None else lengths.reshape((count,))
  pooled = _pool_sequences(features.reshape((count, T, D)), lengths, hyperparameters, recipe=recipe)
  return pooled.reshape(batch_shape + pooled.shape[-1:])


def rank_pool_pixels(frames, C=10.0, epsilon=0.1, *, order="paper", normalize=True, lengths=None,
                     max_iter=100, tol=1e-6) -> jax.Array:
  """The dynamic image of video frames by exact rank pooling (Table 1's "Dynamic Image", Table 2's RP).

  order="paper" is section 5.3's recipe: "we follow the pipeline suggested in Fernando et al. [17]: i) square
  root the RGB pixel values (psi), ii) use a time varying mean representation of sqrt, iii) learn ranking
  hyperplanes for each channel, iv) scale the computed dynamic images into [0, 255] range again" (step iv
  is the caller's: `data_prep.dynamic.to_uint8`). Here: psi(I_t) = sqrt(I_t); `rank_pool` with
  time_varying_mean=True and nonlinearity=None on the features [..., C, T, H*W] (one SVR per channel).
  order="videodarwin" is VideoDarwin's order for feature sequences: `rank_pool` with its defaults on the
  whole frame [..., T, H*W*C] (time-varying mean of the pixels, then signed square root, L2 per frame, one
  joint hyperplane).

  Step iii's L2 normalisation (normalize=True, each channel's vector of each frame) is VideoDarwin's, whose
  pipeline section 5.3 says it follows and which normalises every vector before its SVR; the paper does not
  mention it. Without it the kernel <V_q, V_t> grows with the number of pixels (about H*W times the mean
  pixel), so the weight of C against the regulariser, and the image, change with the resolution (the
  paper's C = 10, against VideoDarwin's 1, then has no fixed meaning), and I + 2C K becomes too
  ill-conditioned for float32 on frames of a realistic size (the solver returns NaN). With it the image
  depends neither on the resolution nor on the pixel scale. normalize=False gives the literal reading
  (the hyperplanes of eq. (1) on V_t itself), usable on small frames.

  Args:
    frames: [..., T, H, W, C] pixels, 0..255 (any real dtype; computed in float32). Channels last. psi is
      the signed square root sign(x) sqrt(|x|), which is sqrt on non-negative pixels.
    C, epsilon, lengths, max_iter, tol: as `rank_pool` (C = 10, the dynamic-image value; lengths has the
      shape frames.shape[:-4]).
    order: "paper" (section 5.3) or "videodarwin".
    normalize: L2-normalise each frame's vector (per channel for "paper") before the SVR.

  Returns:
    float32 [..., H, W, C]: the weights of the ranking function(s), laid out as a frame.
  """
  if order not in RP_ORDERS:
    raise ValueError(f"order is {order!r}; expected one of {RP_ORDERS}")
  checks.check_real_dtype(frames, "frames")
  if np.ndim(frames) < 4:
    raise ValueError(f"frames has {np.ndim(frames)} dimensions; expected [..., T, H, W, C]")
  *batch, T, H, W, channels = frames.shape
  if T == 0:
    raise ValueError(f"frames has no frames (shape {tuple(frames.shape)})")
  if lengths is not None:
    lengths = checks.check_lengths(lengths, tuple(batch), T)
  options = dict(C=C, epsilon=epsilon, normalize=normalize, max_iter=max_iter, tol=tol)
  if order == "videodarwin":
    pooled = rank_pool(frames.reshape(tuple(batch) + (T, H * W * channels)), lengths=lengths, **options)
    return pooled.reshape(tuple(batch) + (H, W, channels))
  if lengths is not None:
    lengths = jnp.broadcast_to(jnp.asarray(lengths)[..., None], tuple(batch) + (channels,))
  pooled = rank_pool(_channel_roots(frames), lengths=lengths, time_varying_mean=True, nonlinearity=None,
                     **options)  # [..., C, H*W]
  return jnp.moveaxis(pooled, -2, -1).reshape(tuple(batch) + (H, W, channels))


@jax.jit
def _channel_roots(frames: jax.Array) -> jax.Array:
  """psi(I_t) = sqrt(I_t), each channel a sequence of its own: [..., T, H, W, C] -> [..., C, T, H*W]."""
  *batch, T, H, W, channels = frames.shape
  roots = videodarwin.signed_square_root(frames.astype(jnp.float32)).reshape(tuple(batch) + (T, H * W, channels))
  return jnp.moveaxis(roots, -1, -3)


def ranking_accuracy(d, features, lengths=None) -> jax.Array:
  """Pairwise ranking accuracy (Table 2): fraction of pairs q > t with <d, f_q> > <d, f_t>.

  Args:
    d: [..., D] ranking functions (e.g. `rank_pool` outputs).
    features: [..., T, D] the vectors the ranking function scores (e.g. time-varying means); leading axes
      broadcast against d's.
    lengths: optional int array, broadcastable to the leading axes, of valid frame counts; only pairs of
      valid frames count (a sequence with fewer than two valid frames gives NaN: it has no pairs).

  Returns:
    float32 [...] in [0, 1]. Ties count as wrong.
  """
  checks.check_real_dtype(d, "d")
  T = _check_features(features)
  if T < 2:
    raise ValueError(f"features has T = {T} frame; ranking accuracy needs T >= 2 (it counts pairs q > t)")
  if np.ndim(d) < 1:
    raise ValueError("d is a scalar; expected [..., D], one ranking function per sequence")
  D = features.shape[-1]
  if d.shape[-1] != D:
    raise ValueError(f"d has {d.shape[-1]} features but features has D = {D}; they must match")
  try:
    batch_shape = jnp.broadcast_shapes(tuple(d.shape[:-1]), tuple(features.shape[:-2]))
  except ValueError:
    raise ValueError(
        f"d [..., D] has leading shape {tuple(d.shape[:-1])} and features [..., T, D] has "
        f"{tuple(features.shape[:-2])}; they must broadcast") from None
  if lengths is not None:
    checks.check_real_dtype(lengths, "lengths")
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
      raise TypeError(f"lengths has dtype {lengths.dtype}; expected integers (one frame count per sequence)")
    try:
      jnp.broadcast_shapes(tuple(lengths.shape), batch_shape)
    except ValueError:
      raise ValueError(
          f"lengths has shape {tuple(lengths.shape)}; expected one length per sequence, broadcastable to "
          f"{batch_shape}") from None
  return _ranking_accuracy(d, features, lengths)


@jax.jit
def _ranking_accuracy(d, features, lengths):
  f = features.astype(jnp.float32)
  T = f.shape[-2]
  valid = jnp.ones((T,), bool)
  if lengths is not None:
    valid = jnp.arange(T) < lengths[..., None]
    # where, not multiplication: frames past the end may hold NaN.
    f = jnp.where(valid[..., None], f, 0.0)
  scores = jnp.einsum("...td,...d->...t", f, d.astype(jnp.float32), precision=_HIGHEST)
  later = jnp.tril(jnp.ones((T, T), bool), -1)  # [q, t] with q > t
  pairs = later & valid[..., :, None] & valid[..., None, :]
  correct = pairs & (scores[..., :, None] > scores[..., None, :])
  # pairs broadcasts against correct when lengths is None.
  pairs = jnp.broadcast_to(pairs, correct.shape)
  return (jnp.sum(correct, axis=(-2, -1)) / jnp.sum(pairs, axis=(-2, -1))).astype(jnp.float32)
