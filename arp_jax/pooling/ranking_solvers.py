"""The dual solvers of rank pooling and their implicit differentiation.

Given the Gram matrices of a batch of sequences' frame vectors, `dual_coefficients` fits the ranking
function of each (`arp_jax.rank_pool`):

  - "svr": linear support vector regression to the labels y_t = t with the squared epsilon-insensitive
    loss and no bias (VideoDarwin; liblinear `-s 11`), min_w 0.5 |w|^2 + C sum_t max(0, |y_t - <w, x_t>| -
    epsilon)^2, by semismooth Newton steps on its dual (`_svr_newton`);
  - "ranksvm": eq. (1) of the paper with lambda = 1/C, E(d) = lambda/2 |d|^2 + 2/(T(T-1)) sum_{q>t} max(0,
    1 - <d, x_q> + <d, x_t>), by FISTA on its dual (`_ranksvm_fista`).

Both work in the dual (kernel) form, with only the T x T Gram matrix: frames are long (D values) and few
(T). Gradients come from implicit differentiation of the optimality conditions, not from unrolling the
solver: their cost does not depend on the number of iterations.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg
from jax import lax

OBJECTIVES = ("svr", "ranksvm")
# A FISTA step does far less than a Newton step; `max_iter` counts Newton steps, and the RankSVM solver may
# take this many first-order steps per unit of `max_iter`.
RANKSVM_STEPS_PER_ITER = 100
# Pairs whose multiplier lies this fraction of the box inside (0, c) are "free" (margin exactly 1) when
# differentiating the RankSVM solution; the others are held at their bound.
_FREE_PAIR_MARGIN = 1e-4
# Armijo sufficient-decrease constant and the number of halvings tried in the SVR line search.
_ARMIJO = 1e-4
_LINE_SEARCH_STEPS = 30


def dual_coefficients(grams: jax.Array, valid: jax.Array | None, hyperparameters: tuple, *, objective: str,
                      normalize: bool) -> jax.Array:
  """The ranking function of each sequence from its Gram matrix, as coefficients of its frame vectors.

  Args:
    grams: [k, n, T, T] Gram matrices G = Z Z^T of the unnormalised frame vectors z (k directions of n
      sequences); zero rows and columns on padded frames.
    valid: [n, T] bool, the frames each sequence holds, or None (all of them).
    hyperparameters: (C, epsilon, max_iter, tol), as `arp_jax.rank_pool` takes them (traced: changing
      them does not recompile).
    objective: "svr" or "ranksvm".
    normalize: fit the L2-normalised vectors x_t = z_t / |z_t|, whose kernel is G / (|z| |z|^T).

  Returns:
    c [k, n, T] with weights w = sum_t c_t z_t: the dual solution beta over the norms |z_t| (normalize),
    zero on padded frames.
  """
  T = grams.shape[-1]
  if normalize:
    inverse_norm = _inverse_norms(jnp.diagonal(grams, axis1=-2, axis2=-1))
  else:
    inverse_norm = jnp.ones(grams.shape[:-1], jnp.float32)
  kernel = grams * inverse_norm[..., :, None] * inverse_norm[..., None, :]
  valid = jnp.broadcast_to(jnp.ones((T,), bool) if valid is None else valid, kernel.shape[:-1])
  fit = _fit_svr if objective == "svr" else _fit_ranksvm
  # One solver call for every sequence and direction: the kernels are small, and a single loop compiles
  # faster.
  beta = jax.vmap(fit, in_axes=(0, 0, None))(kernel.reshape((-1, T, T)), valid.reshape((-1, T)),
                                             hyperparameters)
  return jnp.where(valid, beta.reshape(valid.shape), 0.0) * inverse_norm


def _fit_svr(kernel, valid, hyperparameters):
  C, epsilon, max_iter, tol = hyperparameters
  # Labels t = 1..T on the valid frames; 0 on padded ones, where K is zero, so that beta stays 0 there.
  T = kernel.shape[-1]
  labels = jnp.where(valid, jnp.arange(1, T + 1, dtype=jnp.float32), 0.0)
  return _svr_coefficients(kernel, labels, C, epsilon, max_iter, tol)


def _fit_ranksvm(kernel, valid, hyperparameters):
  C, _, max_iter, tol = hyperparameters
  return _ranksvm_coefficients(kernel, valid, C, max_iter, tol)


def _inverse_norms(gram_diagonal: jax.Array) -> jax.Array:
  """1/|z_t| from diag(Z Z^T), and 0 for a zero vector (it stays zero, never NaN); NaN propagates."""
  is_zero = gram_diagonal == 0
  return jnp.where(is_zero, 0.0, lax.rsqrt(jnp.where(is_zero, 1.0, gram_diagonal)))


# -------------------------------------------------------------------------------------- SVR (dual)


def _soft_threshold(r: jax.Array, epsilon: float) -> jax.Array:
  return jnp.sign(r) * jnp.maximum(jnp.abs(r) - epsilon, 0.0)


def _solve_newton_system(kernel: jax.Array, active: jax.Array, two_c: float, rhs: jax.Array) -> jax.Array:
  """Solves (I + 2C diag(active) K) x = rhs [T] through a symmetric positive definite system.

  Rows outside the active set read x_i = rhs_i; substituting them leaves (I + 2C K_AA) x_A =
  rhs_A - 2C K_AI rhs_I on the active set, i.e. the SPD matrix I + 2C S K S (S = diag(active)), which a
  Cholesky factorisation solves stably and compiles faster than a general LU.
  """
  s = active.astype(kernel.dtype)
  spd = jnp.eye(s.shape[-1], dtype=kernel.dtype) + two_c * (s[:, None] * kernel * s[None, :])
  reduced = rhs - two_c * s * (kernel @ ((1.0 - s) * rhs))
  return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(spd), reduced[:, None])[:, 0]


def _svr_newton(K: jax.Array, y: jax.Array, C: float, epsilon: float, max_iter: int,
                tol: float) -> tuple[jax.Array, jax.Array]:
  """Dual coefficients beta [T] of the squared-epsilon-insensitive SVR with kernel K [T, T], labels y [T].

  Stationarity of the primal at w = X^T beta reads F(beta) = beta - 2C soft(y - K beta, epsilon) = 0 (the
  optimality condition of the strongly convex dual, so beta is unique even when K is singular). F is
  piecewise linear; a semismooth Newton step solves the linear piece of the current sign pattern
  s_t = sign(r_t) [|r_t| > epsilon] exactly, so the iteration ends as soon as a full step keeps the pattern.
  Steps are globalised by Armijo backtracking on the primal objective written through beta,
  Phi(beta) = 0.5 beta^T K beta + C sum max(0, |y - K beta| - epsilon)^2, whose gradient is K F(beta) and
  for which the Newton direction is a descent direction.

  Returns (beta, number of Newton iterations).
  """
  two_c = 2.0 * C
  halvings = 0.5 ** jnp.arange(_LINE_SEARCH_STEPS, dtype=K.dtype)

  def pattern(k_beta):
    r = y - k_beta
    return jnp.sign(r) * (jnp.abs(r) > epsilon)

  def residual(beta, k_beta):
    return beta - two_c * _soft_threshold(y - k_beta, epsilon)

  def primal(beta, k_beta):
    # Broadcasts over a leading axis of step sizes in the line search.
    excess = jnp.maximum(jnp.abs(y - k_beta) - epsilon, 0.0)
    return 0.5 * jnp.sum(beta * k_beta, -1) + C * jnp.sum(excess * excess, -1)

  def converged(beta, k_beta):
    # Rounding of F in float32 grows with the size of the two terms it subtracts.
    scale = 1.0 + jnp.max(jnp.abs(beta)) + two_c * jnp.max(jnp.abs(y) + jnp.abs(k_beta))
    return jnp.max(jnp.abs(residual(beta, k_beta))) <= tol * scale

  def cond(state):
    _, _, iteration, done = state
    return (iteration < max_iter) & ~done

  def body(state):
    beta, k_beta, iteration, _ = state
    signs = pattern(k_beta)
    F = residual(beta, k_beta)
    direction = _solve_newton_system(K, signs != 0, two_c, -F)
    k_direction = K @ direction
    # Directional derivative of Phi: grad Phi = K F, and K is symmetric.
    slope = F @ k_direction
    phi = primal(beta, k_beta)
    trial_phi = primal(beta + halvings[:, None] * direction, k_beta + halvings[:, None] * k_direction)
    # A relative slack of a few float32 ulps: near the optimum Phi no longer changes measurably.
    accept = trial_phi <= phi + _ARMIJO * halvings * slope + 1e-6 * jnp.abs(phi)
    step = jnp.where(jnp.any(accept), jnp.max(jnp.where(accept, halvings, 0.0)), halvings[-1])
    beta, k_beta = beta + step * direction, k_beta + step * k_direction
    exact = (step == 1.0) & jnp.all(pattern(k_beta) == signs)
    done = exact | converged(beta, k_beta) | ~jnp.all(jnp.isfinite(beta))
    return beta, k_beta, iteration + 1, done

  beta = jnp.zeros_like(y)
  init = (beta, beta, jnp.asarray(0, jnp.int32), converged(beta, beta))
  beta, _, iterations, _ = lax.while_loop(cond, body, init)
  return beta, iterations


def _svr_coefficients(K, y, C, epsilon, max_iter, tol):
  """beta [T] for one sequence, differentiable in K by the implicit function theorem.

  beta* solves F(beta, K) = 0. One Newton step taken at beta* with the (constant) generalised Jacobian J,
  beta = beta* - J^{-1} F(beta*, K), leaves the value unchanged (F = 0) and has derivative
  -J^{-1} dF/dK, which is exactly d beta*/dK.
  """
  fixed_K = lax.stop_gradient(K)
  beta_star, _ = _svr_newton(fixed_K, y, C, epsilon, max_iter, tol)
  beta_star = lax.stop_gradient(beta_star)
  r = y - K @ beta_star
  residual = beta_star - 2.0 * C * _soft_threshold(r, epsilon)
  active = lax.stop_gradient(jnp.abs(r) > epsilon)
  return beta_star - _solve_newton_system(fixed_K, active, 2.0 * C, residual)


# ---------------------------------------------------------------------------------- RankSVM (dual)


def _ranksvm_fista(K: jax.Array, valid: jax.Array, C: float, max_steps: int,
                   tol: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Pair multipliers A [T, T] (A[q, t] for q > t) of the RankSVM dual, by FISTA with adaptive restart.

  With a_qt = x_q - x_t, c = 2/(T(T-1)) and lambda = 1/C, the dual of eq. (1) is
    max_{0 <= A <= c} sum A - (C/2) u^T K u,   u_s = sum_t A[s, t] - sum_q A[q, s],
  and d = C X^T u. Its gradient in A[q, t] is 1 - (S_q - S_t) with the scores S = K (C u), so each step
  costs O(T^2) and no pairs x pairs matrix is formed. The Lipschitz constant of the gradient is
  C lambda_max(M^T K M) = C L lambda_max(P K P) (M: pair -> frame incidence; M M^T = L P, the Laplacian of the
  complete graph on the L valid frames, P the centring projector). Stops when the duality gap
  E(d) - D(A) <= tol E(d).

  Returns (A, duality gap, steps).
  """
  T = K.shape[-1]
  validf = valid.astype(K.dtype)
  L = jnp.sum(validf)
  pairs = jnp.tril(jnp.ones((T, T), bool), -1) & valid[:, None] & valid[None, :]
  bound = 2.0 / jnp.maximum(L * (L - 1.0), 1.0)
  centring = jnp.diag(validf) - jnp.outer(validf, validf) / jnp.maximum(L, 1.0)
  lipschitz = C * L * jnp.linalg.eigvalsh(centring @ K @ centring)[-1]
  # Identical frames give lipschitz 0: the gradient is then constant and any step size is exact.
  step = 1.0 / jnp.maximum(lipschitz * (1.0 + 1e-5), 1e-12)

  def scores(A):
    u = jnp.sum(A, 1) - jnp.sum(A, 0)
    return u, C * (K @ u)

  def objectives(A):
    u, S = scores(A)
    quadratic = 0.5 * (u @ S)  # (C/2) u^T K u = (lambda/2) |d|^2
    hinge = jnp.where(pairs, jnp.maximum(0.0, 1.0 - (S[:, None] - S[None, :])), 0.0)
    primal = quadratic + bound * jnp.sum(hinge)
    dual = jnp.sum(A) - quadratic
    return primal, dual

  def project(A):
    return jnp.where(pairs, jnp.clip(A, 0.0, bound), 0.0)

  def cond(state):
    _, _, _, _, gap, primal, step_count = state
    return (step_count < max_steps) & (gap > tol * primal)

  def body(state):
    A, A_previous, momentum, dual, _, _, step_count = state
    next_momentum = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * momentum * momentum))
    Y = A + ((momentum - 1.0) / next_momentum) * (A - A_previous)
    _, S = scores(Y)
    ascent = 1.0 - (S[:, None] - S[None, :])
    A_next = project(Y + step * ascent)
    primal_next, dual_next = objectives(A_next)
    # Restart the momentum when the dual stops increasing (O'Donoghue and Candes, adaptive restart).
    next_momentum = jnp.where(dual_next < dual, 1.0, next_momentum)
    return A_next, A, next_momentum, dual_next, primal_next - dual_next, primal_next, step_count + 1

  A0 = jnp.zeros((T, T), K.dtype)
  primal0, dual0 = objectives(A0)
  init = (A0, A0, jnp.asarray(1.0, K.dtype), dual0, primal0 - dual0, primal0, jnp.asarray(0, jnp.int32))
  A, _, _, _, gap, _, steps = lax.while_loop(cond, body, init)
  return A, gap, steps


def _free_pair_projector(free: jax.Array) -> jax.Array:
  """Orthogonal projector [T, T] onto range(M_F): vectors that sum to zero on each connected component of
  the graph whose edges are the free pairs, and vanish on frames touched by no free pair."""
  T = free.shape[-1]
  reach = (free | free.T | jnp.eye(T, dtype=bool)).astype(jnp.float32)
  for _ in range(max(1, math.ceil(math.log2(max(T, 2))))):
    reach = (reach @ reach > 0).astype(jnp.float32)
  component_size = jnp.sum(reach, axis=1, keepdims=True)
  return jnp.eye(T, dtype=jnp.float32) - reach / component_size


def _ranksvm_coefficients(K, valid, C, max_iter, tol):
  """gamma [T] with d = X^T gamma for one sequence, differentiable in K by the implicit function theorem.

  At the solution, pairs strictly inside the box (free, set F) have margin S_q - S_t = 1 and the others sit
  at a bound that does not move under small perturbations. With u = M A (the frame coefficients) and R =
  range(M_F), the conditions Pi_R (K u) = Pi_R (1-margins) and du in R give du = -Psi dK u with
  Psi = N (N^T K N)^{-1} N^T (N a basis of R), computed as Pi_R (Pi_R K Pi_R + I - Pi_R)^{-1} Pi_R: a T x T
  solve. The result is u* + stop_gradient(e) - e with e = Psi K u*: the solver's value, this derivative.
  """
  fixed_K = lax.stop_gradient(K)
  A, _, _ = _ranksvm_fista(fixed_K, valid, C, RANKSVM_STEPS_PER_ITER * max_iter, tol)
  A = lax.stop_gradient(A)
  T = K.shape[-1]
  L = jnp.sum(valid.astype(K.dtype))
  bound = 2.0 / jnp.maximum(L * (L - 1.0), 1.0)
  free = (A > _FREE_PAIR_MARGIN * bound) & (A < (1.0 - _FREE_PAIR_MARGIN) * bound)
  projector = _free_pair_projector(free)
  u_star = jnp.sum(A, 1) - jnp.sum(A, 0)
  system = projector @ fixed_K @ projector + jnp.eye(T, dtype=K.dtype) - projector
  factor = jax.scipy.linalg.cho_factor(system)
  correction = projector @ jax.scipy.linalg.cho_solve(factor, (projector @ (K @ u_star))[:, None])[:, 0]
  u = u_star + lax.stop_gradient(correction) - correction
  return C * u
