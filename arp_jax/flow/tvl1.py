"""TV-L1 optical flow as a batched, jittable JAX op: `tvl1(frame0, frame1)` -> flow `[..., H, W, 2]`.

The duality-based TV-L1 of Zach, Pock and Bischof (2007), with the median filtering of Wedel, Pock, Zach,
Bischof and Cremers (2009), in the form Sanchez, Meinhardt-Llopis and Facciolo describe (IPOL 2013,
"TV-L1 Optical Flow Estimation"). It minimises

  E(u) = sum_x |grad u1| + |grad u2| + lambda |I1(x + u(x)) - I0(x)|

coarse to fine over a pyramid. At each scale the data term is linearised around the current flow u0
("warping"): rho(u) = I1(x + u0) + grad I1(x + u0) . (u - u0) - I0(x). An auxiliary flow v splits the
energy into a TV-denoising problem in u (solved by Chambolle's dual projection, dual variable p) and a
pointwise problem in v solved in closed form (the thresholding step), coupled by (u - v)^2 / (2 theta).

Stopping rule. A warp iterates until its flow stops moving: after every primal-dual step the mean squared
update of the flow, mean(|u^k - u^{k-1}|^2), is compared with epsilon^2 (IPOL 2013 tests it after every
iteration; OpenCV documents its `epsilon` as this threshold). The steps come in outer iterations of at most
`inner_iterations` steps, each followed by Wedel et al.'s median filter; the warp ends at the first step
below the threshold (after that outer iteration's median filter) or after `outer_iterations` outer
iterations. Testing after every step rather than after each outer iteration matters: most warps converge
within a few steps, so the test saves most of the iterations the maxima allow. In a batch every pair has
its own test, so a batch gives each pair what it would get alone: the loops are `lax.while_loop`s that
`jax.vmap` turns into "while any pair of the batch is unconverged", converged pairs kept unchanged (a batch
then runs as long as its slowest pair), except on XLA:CPU, where the pairs are solved one after another
(`arp_jax.xla_cpu.tvl1`). `epsilon=0` runs every iteration (the maxima).

Flow convention: (u, v) in pixels, u to the right and v down, from frame0 to frame1, so that
frame1(x + u(x), y + v(x)) ~ frame0(x, y): OpenCV's `calc(prev, next)`.
"""

from __future__ import annotations

import functools
import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import checks, platforms
from arp_jax.flow import pyramid
from arp_jax.xla_cpu import tvl1 as xla_cpu_tvl1

# The coarsest scale must keep this many pixels on its smaller side: the 4x4 bicubic stencil and the 5x5
# median need a few pixels, and a coarser scale carries no information about the motion.
MIN_COARSEST_SIDE = 8


class Params(NamedTuple):
  """The static parameters of `tvl1` (hashable: they select the compiled program)."""
  tau: float
  lambda_: float
  theta: float
  scales: int
  scale_step: float
  warps: int
  epsilon: float
  inner_iterations: int
  outer_iterations: int
  median_filtering: int
  gamma: float
  interpolation: str


def _forward_difference(u: jax.Array, axis: int) -> jax.Array:
  """`u[i+1] - u[i]` along `axis`, 0 at the last index (Neumann boundary)."""
  n = u.shape[axis]
  ahead = jax.lax.slice_in_dim(u, 1, n, axis=axis)
  here = jax.lax.slice_in_dim(u, 0, n - 1, axis=axis)
  zero = jnp.zeros_like(jax.lax.slice_in_dim(u, 0, 1, axis=axis))
  return jnp.concatenate([ahead - here, zero], axis=axis)


def _divergence(px: jax.Array, py: jax.Array) -> jax.Array:
  """Divergence by backward differences, the negative adjoint of `_forward_difference` (p is 0 on the last
  column/row, where the forward difference is 0, so `p[i] - p[i-1]` with `p[-1] = 0` is the adjoint)."""
  def backward(p, axis):
    n = p.shape[axis]
    first = jax.lax.slice_in_dim(p, 0, 1, axis=axis)
    rest = jax.lax.slice_in_dim(p, 1, n, axis=axis) - jax.lax.slice_in_dim(p, 0, n - 1, axis=axis)
    return jnp.concatenate([first, rest], axis=axis)
  return backward(px, 1) + backward(py, 0)


def _primal_dual_step(u, p, data, params: Params):
  """One iteration of Zach et al.'s scheme at one warp.

  u: tuple of the primal fields `[H, W]` (u1, u2, and the illumination field w when gamma > 0);
  p: tuple of their dual fields ((px, py) per primal field); data: (rho_c, gradient fields, |grad|^2) of
  the linearised data term rho(u) = rho_c + sum_k grad_k u_k.
  """
  rho_c, grads, grad2 = data
  lt = params.lambda_ * params.theta
  rho = rho_c + sum(g * uk for g, uk in zip(grads, u))
  # Thresholding step (the closed-form minimiser in v of lambda |rho(v)| + |v - u|^2 / (2 theta)):
  # v = u + c grad with c = lt when rho < -lt |grad|^2, -lt when rho > lt |grad|^2, else -rho / |grad|^2;
  # that is -rho / |grad|^2 clipped to [-lt, lt]. Where the gradient vanishes the clip keeps v ~ u.
  c = jnp.clip(-rho / jnp.maximum(grad2, 1e-10), -lt, lt)
  step = params.tau / params.theta
  new_u, new_p = [], []
  for uk, g, (px, py) in zip(u, grads, p):
    # u = v + theta div p (the TV-denoising primal), then Chambolle's projected dual ascent on p.
    uk = uk + c * g + params.theta * _divergence(px, py)
    ux, uy = _forward_difference(uk, 1), _forward_difference(uk, 0)
    norm = 1 + step * jnp.sqrt(ux * ux + uy * uy)
    new_u.append(uk)
    new_p.append(((px + step * ux) / norm, (py + step * uy) / norm))
  return tuple(new_u), tuple(new_p)


def _solve_scale(grey0, grey1, flow, params: Params):
  """Refines `flow` `[H, W, 2]` at one scale of the pyramid: `warps` linearisations of the data term, each
  solved by the primal-dual iterations with the epsilon stopping rule; dual variables start at 0."""
  height, width = grey0.shape
  gx, gy = pyramid.centered_gradient(grey1)
  # The image and its derivatives are warped together; the gradient of the warped image would need a
  # derivative of the interpolant, IPOL 2013 warps the gradient instead.
  stack = jnp.stack([grey1, gx, gy], axis=-1)
  y, x = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                      indexing="ij")
  zeros = jnp.zeros_like(grey0)
  with_w = params.gamma > 0
  u = (flow[..., 0], flow[..., 1]) + ((zeros,) if with_w else ())
  p = tuple((zeros, zeros) for _ in u)

  def warp_body(_, state):
    u, p = state
    warped = pyramid.warp(stack, x + u[0], y + u[1], params.interpolation)
    i1w, i1x, i1y = warped[..., 0], warped[..., 1], warped[..., 2]
    grads = (i1x, i1y) + ((jnp.full_like(i1x, params.gamma),) if with_w else ())
    grad2 = i1x * i1x + i1y * i1y + params.gamma**2
    # rho_c: the linearised residual at u = 0 around u0; the illumination field w enters rho linearly.
    rho_c = i1w - i1x * u[0] - i1y * u[1] - grey0
    data = (rho_c, grads, grad2)

    def unconverged(count, limit, error):
      # epsilon = 0 runs every iteration, even when a step leaves the flow exactly unchanged.
      return (count < limit) & ((error > params.epsilon**2) if params.epsilon > 0 else True)

    def inner_body(carry):
      n, _, u, p = carry
      new_u, new_p = _primal_dual_step(u, p, data, params)
      error = jnp.mean((new_u[0] - u[0])**2 + (new_u[1] - u[1])**2)
      return n + 1, error, new_u, new_p

    def outer_body(carry):
      n, _, u, p = carry
      _, error, u, p = jax.lax.while_loop(lambda c: unconverged(c[0], params.inner_iterations, c[1]),
                                          inner_body, (0, jnp.float32(jnp.inf), u, p))
      if params.median_filtering > 1:
        # Wedel et al. 2009: a median filter of the flow between iterations removes outliers.
        u = tuple(pyramid.median_filter(uk, params.median_filtering) for uk in u[:2]) + u[2:]
      return n + 1, error, u, p

    def outer_cond(carry):
      return unconverged(carry[0], params.outer_iterations, carry[1])

    _, _, u, p = jax.lax.while_loop(outer_cond, outer_body, (0, jnp.float32(jnp.inf), u, p))
    return u, p

  u, _ = jax.lax.fori_loop(0, params.warps, warp_body, (u, p))
  return jnp.stack(u[:2], axis=-1)


def _tvl1_pair(grey0, grey1, params: Params):
  """Flow `[H, W, 2]` between grey images `[H, W]`, coarse to fine from zero flow at the coarsest scale."""
  shapes = pyramid.pyramid_shapes(grey0.shape, params.scales, params.scale_step)
  levels = [(grey0, grey1)]
  for shape in shapes[1:]:
    levels.append(tuple(pyramid.downsample(image, shape) for image in levels[-1]))
  flow = jnp.zeros((*shapes[-1], 2), jnp.float32)
  for scale in reversed(range(params.scales)):
    if scale < params.scales - 1:
      flow = pyramid.upsample_flow(flow, shapes[scale], params.scale_step)
    flow = _solve_scale(*levels[scale], flow, params)
  return flow


def _vmapped(grey0, grey1, *, pair_flow):
  return jax.vmap(pair_flow)(grey0, grey1)


# Batched by `jax.vmap` (every pair of the batch in each step: what accelerators want); pair by pair on
# XLA:CPU, where one pair's fields stay in the caches (`arp_jax.xla_cpu.tvl1`).
_flow_by_platform = platforms.by_platform(_vmapped, cpu=xla_cpu_tvl1.pairs_one_at_a_time)


@functools.partial(jax.jit, static_argnames="params")
def _tvl1_batch(grey0, grey1, params: Params):
  """`[B, H, W]` grey pairs -> `[B, H, W, 2]`; the whole pyramid in one program."""
  return _flow_by_platform(grey0, grey1, pair_flow=functools.partial(_tvl1_pair, params=params))


def tvl1(frame0, frame1, *, tau: float = 0.25, lambda_: float = 0.15, theta: float = 0.3,
         scales: int = 5, scale_step: float = 0.8, warps: int = 5, epsilon: float = 0.01,
         inner_iterations: int = 30, outer_iterations: int = 10, median_filtering: int = 5,
         gamma: float = 0.0, interpolation: str = "bicubic") -> jax.Array:
  """TV-L1 optical flow from `frame0` to `frame1` (defaults: those of the papers and OpenCV's DualTVL1).

  Args:
    frame0, frame1: the same shape, grey `[..., H, W]` or RGB `[..., H, W, 3]` (a last axis of 3 means
      RGB, converted with the BT.601 weights of OpenCV's COLOR_RGB2GRAY), uint8 or float on the 0..255
      scale, any leading batch shape.
    tau: time step of the dual (Chambolle) projection; the scheme converges for tau <= 1/4.
    lambda_: weight of the data term against the total variation; smaller gives smoother flow.
    theta: coupling of u and the auxiliary flow v, |u - v|^2 / (2 theta); small keeps them close.
    scales: number of pyramid scales, the finest included.
    scale_step: ratio of each scale's size to the next finer one's, in (0, 1).
    warps: linearisations of the data term (warps of frame1 by the current flow) per scale.
    epsilon: stopping threshold: a warp ends at the first primal-dual step whose mean squared flow update
      is below epsilon^2 (after that outer iteration's median filter); 0 runs all iterations.
    inner_iterations: at most this many primal-dual iterations between two median filterings.
    outer_iterations: at most this many outer iterations (each `inner_iterations` steps) per warp.
    median_filtering: side of the median filter of the flow after each outer iteration (Wedel et al.),
      odd; 1 turns it off.
    gamma: weight of the illumination-change field w of Chambolle and Pock's model, rho + gamma w; 0 turns
      it off (the default, as in the original model).
    interpolation: how frame1 and its gradient are sampled at x + u0 when warping: "bicubic" (the
      default: Keys' cubic convolution, a = -0.5, IPOL 2013's choice; the closest to OpenCV's flow) or
      "bilinear" (4 taps instead of 16: cheaper where gathers are costly).

  Returns:
    float32 `[..., H, W, 2]`, (u, v) in pixels: frame1(x + u, y + v) ~ frame0(x, y), as OpenCV's
    `calc(frame0, frame1)`.

  Raises:
    TypeError: a frame is not a real-valued array, or a parameter has the wrong type.
    ValueError: shapes differ, a frame has fewer than 2 dimensions, the coarsest scale would be smaller
      than `MIN_COARSEST_SIDE` pixels, a frame holds NaN or infinity (checked when values are concrete), or
      a parameter is out of range.
  """
  params = _check_params(tau, lambda_, theta, scales, scale_step, warps, epsilon, inner_iterations,
                         outer_iterations, median_filtering, gamma, interpolation)
  for name, frame in (("frame0", frame0), ("frame1", frame1)):
    checks.check_real_dtype(frame, name)
  if frame0.shape != frame1.shape:
    raise ValueError(f"frame0 has shape {tuple(frame0.shape)} and frame1 {tuple(frame1.shape)}; "
                     "expected the same shape, [..., H, W] grey or [..., H, W, 3] RGB")
  rgb = frame0.ndim >= 3 and frame0.shape[-1] == 3
  image_ndim = 3 if rgb else 2
  if frame0.ndim < 2:
    raise ValueError(f"frames have shape {tuple(frame0.shape)}; expected [..., H, W] grey or [..., H, W, 3] RGB")
  image_shape = tuple(frame0.shape[frame0.ndim - image_ndim:][:2])
  smallest = min(pyramid.pyramid_shapes(image_shape, scales, scale_step)[-1])
  if smallest < MIN_COARSEST_SIDE:
    raise ValueError(
        f"frames of {image_shape[0]}x{image_shape[1]} pixels are too small for {scales} scales of step "
        f"{scale_step}: the coarsest scale has {smallest} pixels on its smaller side, at least "
        f"{MIN_COARSEST_SIDE} needed; use fewer scales or larger frames")
  for name, frame in (("frame0", frame0), ("frame1", frame1)):
    if checks.is_concrete(frame) and not np.isfinite(np.asarray(frame, dtype=np.float32)).all():
      raise ValueError(f"{name} holds NaN or infinity; expected finite intensities on the 0..255 scale")
  batch_shape = tuple(frame0.shape[:frame0.ndim - image_ndim])
  grey0, grey1 = (pyramid.to_grey(jnp.asarray(f), rgb).reshape(-1, *image_shape) for f in (frame0, frame1))
  flow = _tvl1_batch(grey0, grey1, params)
  return flow.reshape(*batch_shape, *image_shape, 2)


def _params(**overrides) -> Params:
  """The `Params` of `tvl1`'s defaults with `overrides`, checked as `tvl1` checks them: for the tests and
  benchmarks that call a formulation of the solver directly."""
  defaults = {name: p.default for name, p in inspect.signature(tvl1).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
  return _check_params(**{**defaults, **overrides})


def _check_params(tau, lambda_, theta, scales, scale_step, warps, epsilon, inner_iterations,
                  outer_iterations, median_filtering, gamma, interpolation) -> Params:
  """The parameters validated, as the static `Params` of the compiled program."""
  scale_step = checks.check_positive_number(scale_step, "scale_step")
  if scale_step >= 1:
    raise ValueError(f"scale_step must lie in (0, 1), got {scale_step!r}")
  median_filtering = checks.check_int(median_filtering, "median_filtering")
  if median_filtering % 2 == 0:
    raise ValueError(f"median_filtering must be odd (1 turns it off), got {median_filtering!r}")
  epsilon = 0.0 if epsilon == 0 else checks.check_positive_number(epsilon, "epsilon")
  gamma = 0.0 if gamma == 0 else checks.check_positive_number(gamma, "gamma")
  if interpolation not in pyramid.INTERPOLATIONS:
    raise ValueError(f"interpolation is {interpolation!r}; expected one of {pyramid.INTERPOLATIONS}")
  return Params(
      tau=checks.check_positive_number(tau, "tau"),
      lambda_=checks.check_positive_number(lambda_, "lambda_"),
      theta=checks.check_positive_number(theta, "theta"),
      scales=checks.check_int(scales, "scales"), scale_step=scale_step,
      warps=checks.check_int(warps, "warps"), epsilon=epsilon,
      inner_iterations=checks.check_int(inner_iterations, "inner_iterations"),
      outer_iterations=checks.check_int(outer_iterations, "outer_iterations"),
      median_filtering=median_filtering, gamma=gamma, interpolation=interpolation)
