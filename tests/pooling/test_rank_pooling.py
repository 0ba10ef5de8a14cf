"""Exact rank pooling (VideoDarwin SVR and the RankSVM of eq. (1)) against scikit-learn, scipy and a real
dynamic image, plus its gradients, padding, errors and the pairwise ranking accuracy of Table 2."""

import re

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from scipy.optimize import minimize
from sklearn.svm import LinearSVR

from arp_jax.pooling import ranking_solvers as solvers  # private solvers: iteration counts, duality gaps
from arp_jax.pooling import videodarwin
from arp_jax.pooling.rank_pooling import rank_pool, rank_pool_pixels, ranking_accuracy
from arp_jax.xla_cpu import rank_pooling as xla_cpu_rank_pooling

from paths import DATA
UCF101_CLIP = DATA / "clips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
WILLPRICE = DATA / "dynamic_images" / "willprice_rankpool_213160"
WINDOW = 10


# ------------------------------------------------------------------------------- float64 references


def reference_frame_vectors(frames, time_varying_mean=True, ssr=True, normalize=True):
  """VideoDarwin preprocessing in float64 NumPy. frames: [T, D] -> [T, D]."""
  x = np.asarray(frames, np.float64)
  if time_varying_mean:
    x = np.cumsum(x, axis=0) / np.arange(1, len(x) + 1)[:, None]
  if ssr:
    x = np.sign(x) * np.sqrt(np.abs(x))
  if normalize:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
  return x


def sklearn_rank_pool(frames, C, **preprocessing):
  """VideoDarwin's SVR (liblinear -s 11) fitted to convergence in float64. frames: [T, D] -> [D]."""
  x = reference_frame_vectors(frames, **preprocessing)
  svr = LinearSVR(C=C, epsilon=0.1, loss="squared_epsilon_insensitive", fit_intercept=False, dual=False,
                  tol=1e-10, max_iter=100_000)
  return svr.fit(x, np.arange(1, len(x) + 1, dtype=np.float64)).coef_


def sklearn_rank_pool_per_channel(frames, C, normalize=True):
  """Section 5.3's dynamic image in float64: square root of the pixels, time-varying mean (L2 per frame
  and channel when normalize), one SVR per channel. frames: [T, H, W, C] -> [H, W, C]."""
  T, H, W, channels = frames.shape
  roots = np.sqrt(np.asarray(frames, np.float64))
  return np.stack([sklearn_rank_pool(roots[..., c].reshape(T, -1), C, ssr=False, normalize=normalize)
                   .reshape(H, W) for c in range(channels)], axis=-1)


def scipy_ranksvm(x, C):
  """Eq. (1) by brute force: the primal with slack variables, E = lambda/2 |d|^2 + c sum xi, by SLSQP in
  float64. x: [T, D] already preprocessed -> d [D]."""
  T, D = x.shape
  pairs = [(q, t) for q in range(T) for t in range(q)]
  differences = np.stack([x[q] - x[t] for q, t in pairs])
  P, c = len(pairs), 2.0 / (T * (T - 1))
  objective = lambda v: 0.5 / C * v[:D] @ v[:D] + c * v[D:].sum()
  gradient = lambda v: np.concatenate([v[:D] / C, np.full(P, c)])
  constraints = [
      {"type": "ineq", "fun": lambda v: v[D:] - 1 + differences @ v[:D],
       "jac": lambda v: np.hstack([differences, np.eye(P)])},
      {"type": "ineq", "fun": lambda v: v[D:], "jac": lambda v: np.hstack([np.zeros((P, D)), np.eye(P)])},
  ]
  start = np.concatenate([np.zeros(D), np.ones(P)])
  result = minimize(objective, start, jac=gradient, constraints=constraints, method="SLSQP",
                    options={"ftol": 1e-15, "maxiter": 1000})
  assert result.success, result.message
  return result.x[:D]


def relative_error(a, b):
  return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


def to_uint8_image(x):
  """Display convention of REFERENCE.md: min-max over the whole array to 0..255, rounded."""
  x = np.asarray(x, np.float64)
  return np.round(255 * (x - x.min()) / (x.max() - x.min())).astype(np.uint8)


@pytest.fixture(scope="module")
def clip_windows():
  """float32 [3, 10, 3600] (0..255): three 10-frame windows of the UCF101 clip at 1/8 resolution (30x40x3).

  Most tests pool exactly this array, so that they share one compiled program per configuration.
  """
  frames = np.stack([f.to_ndarray(format="rgb24") for f in av.open(str(UCF101_CLIP)).decode(video=0)])
  frames = frames[:, ::8, ::8].reshape(len(frames), -1)
  return np.stack([frames[start:start + WINDOW] for start in (0, 60, 120)]).astype(np.float32)


# --------------------------------------------------------------------------- SVR against scikit-learn


@pytest.mark.parametrize("C", [1.0, 10.0])
def test_matches_sklearn_linear_svr(clip_windows, C):
  pooled = rank_pool(clip_windows, C)
  assert pooled.dtype == jnp.float32 and pooled.shape == (3, clip_windows.shape[-1])
  for window, weights in zip(clip_windows, np.asarray(pooled)):
    assert relative_error(weights, sklearn_rank_pool(window, C)) <= 1e-4


def test_forward_backward_fits_the_reversed_sequence(clip_windows):
  D = clip_windows.shape[-1]
  pooled = np.asarray(rank_pool(clip_windows, 10.0, forward_backward=True))
  assert pooled.shape == (3, 2 * D)
  for window, weights in zip(clip_windows, pooled):
    assert relative_error(weights[:D], sklearn_rank_pool(window, 10.0)) <= 1e-4
    assert relative_error(weights[D:], sklearn_rank_pool(window[::-1], 10.0)) <= 1e-4


@pytest.mark.parametrize("switch", ["time_varying_mean", "nonlinearity", "normalize"])
def test_each_preprocessing_step_switched_off(clip_windows, switch):
  window = clip_windows[2]
  reference = {"time_varying_mean": True, "ssr": True, "normalize": True}
  options = {switch: None if switch == "nonlinearity" else False}
  reference["ssr" if switch == "nonlinearity" else switch] = False
  if switch == "normalize":
    # Without normalisation K = G scales with the pixel values; scale them so that |z_t| ~ 1 and the SVR
    # stays well conditioned in float32.
    window = window / (255.0 * window.shape[-1])
  pooled = rank_pool(window, 1.0, **options)
  assert relative_error(pooled, sklearn_rank_pool(window, 1.0, **reference)) <= 1e-4


def test_newton_converges_in_a_few_iterations(clip_windows):
  vectors = np.stack([reference_frame_vectors(w) for w in clip_windows])
  kernels = vectors @ np.swapaxes(vectors, 1, 2)
  labels = np.arange(1.0, WINDOW + 1)
  newton = jax.jit(jax.vmap(solvers._svr_newton, in_axes=(0, None, None, None, None, None)))
  for C in (1.0, 10.0):
    beta, iterations = newton(kernels.astype(np.float32), labels.astype(np.float32), C, 0.1, 100, 1e-6)
    assert np.all((1 <= np.asarray(iterations)) & (np.asarray(iterations) <= 6))
    # The fixed point beta = 2C soft(y - K beta, epsilon) holds.
    residual = labels - np.einsum("bts,bs->bt", kernels, np.asarray(beta, np.float64))
    soft = np.sign(residual) * np.maximum(np.abs(residual) - 0.1, 0)
    np.testing.assert_allclose(np.asarray(beta), 2 * C * soft, rtol=0, atol=1e-4 * C * WINDOW)


def test_input_dtype_and_pixel_scale(clip_windows):
  expected = np.asarray(rank_pool(clip_windows))
  np.testing.assert_array_equal(rank_pool(clip_windows.astype(np.uint8)), expected)
  # bfloat16 holds these integer pixel values exactly.
  np.testing.assert_array_equal(rank_pool(clip_windows.astype(jnp.bfloat16)), expected)
  # With per-frame normalisation the pixel scale cancels: the signed square root is homogeneous.
  assert relative_error(rank_pool(clip_windows / np.float32(255)), expected) <= 1e-5


def test_jit_and_vmap_match_the_batched_call(clip_windows):
  expected = np.asarray(rank_pool(clip_windows, 10.0, forward_backward=True), np.float64)
  jitted = jax.jit(lambda f: rank_pool(f, 10.0, forward_backward=True))(clip_windows)
  mapped = jax.vmap(lambda f: rank_pool(f, 10.0, forward_backward=True))(clip_windows)
  # vmap batches the solvers' loops differently: equal up to float32 rounding, which 2C amplifies.
  for pooled in (np.asarray(jitted), np.asarray(mapped)):
    for got, want in zip(pooled, expected):
      assert relative_error(got, want) <= 1e-5


# ------------------------------------------------------------------------------------- padded batches


@pytest.mark.parametrize("objective", ["svr", "ranksvm"])
def test_padded_batch_equals_each_sequence_alone(clip_windows, objective):
  lengths = np.array([10, 4, 4])
  padded = clip_windows.copy()
  for i, length in enumerate(lengths):
    padded[i, length:] = np.nan  # garbage past the end must not leak
  # forward_backward: the backward half checks that the reversal stays within each valid length.
  pooled = np.asarray(rank_pool(padded, 10.0, objective=objective, forward_backward=True, lengths=lengths))
  assert np.isfinite(pooled).all()
  alone = np.concatenate([
      rank_pool(clip_windows, 10.0, objective=objective, forward_backward=True)[:1],
      rank_pool(clip_windows[1:, :4], 10.0, objective=objective, forward_backward=True)])
  for i in range(3):
    # Equal up to float32 summation order (the batched and single Gram matrices sum differently), which
    # 2C amplifies.
    assert relative_error(pooled[i], alone[i].astype(np.float64)) <= 1e-4
  if objective == "svr":
    D = clip_windows.shape[-1]
    assert relative_error(pooled[2, :D], sklearn_rank_pool(clip_windows[2, :4], 10.0)) <= 1e-4
    assert relative_error(pooled[2, D:], sklearn_rank_pool(clip_windows[2, 3::-1], 10.0)) <= 1e-4


def test_top_level_and_inside_a_callers_jit_agree(clip_windows):
  """rank_pool compiles the same program whether it is called at top level or traced inside the caller's
  jax.jit (no compiler options of its own): the same values."""
  lengths = np.array([10, 7, 3])
  for options in (dict(C=1.0), dict(C=10.0, forward_backward=True, lengths=lengths)):
    top_level = np.asarray(rank_pool(clip_windows, **options), np.float64)
    in_jit = np.asarray(jax.jit(lambda f, options=options: rank_pool(f, **options))(clip_windows))
    for got, want in zip(in_jit, top_level):
      assert relative_error(got, want) <= 1e-6


# The hyperparameters (C, epsilon, max_iter, tol) as rank_pool passes them to the formulations.
HYPERPARAMETERS = (10.0, 0.1, 100, 1e-6)


def test_large_batches_pooled_in_chunks_equal_each_sequence_alone(clip_windows):
  """On XLA:CPU, long sequences (more than FUSED_MAX_T frames) and the derivatives of short ones take the
  plain formulation in a loop over chunks of the batch whose last chunk overlaps the one before it:
  values, lengths, the backward half, gradients and tangents must not notice."""
  # 5 sequences in chunks of 2 (the last one is [3, 4] and re-pools sequence 3).
  frames = np.concatenate([clip_windows, clip_windows[:2, ::-1]])[:, :, :1000]
  lengths = np.array([10, 7, 10, 3, 7])
  for i, length in enumerate(lengths):
    frames[i, length:] = np.nan
  recipe = videodarwin.Recipe(forward_backward=True)
  pool = lambda f: xla_cpu_rank_pooling.in_chunks(f, jnp.asarray(lengths), HYPERPARAMETERS, recipe, 2)
  assert "scan" in str(jax.make_jaxpr(pool)(frames))  # the loop over chunks (the solvers are while loops)
  pooled = np.asarray(jax.jit(pool)(frames))
  probe = np.random.default_rng(0).normal(size=pooled.shape).astype(np.float32)
  grad = np.asarray(jax.grad(lambda f: jnp.vdot(pool(f), probe))(np.nan_to_num(frames)))
  direction = np.random.default_rng(1).normal(size=frames.shape).astype(np.float32)
  _, tangent = jax.jvp(pool, (np.nan_to_num(frames),), (direction,))
  for i, length in enumerate(lengths):
    alone = lambda f, length=length: rank_pool(f[:length], 10.0, forward_backward=True)
    assert relative_error(pooled[i], np.asarray(alone(frames[i]), np.float64)) <= 1e-5
    expected_grad = jax.grad(lambda f: jnp.vdot(alone(f), probe[i]))(frames[i])
    assert relative_error(grad[i], np.asarray(expected_grad, np.float64)) <= 1e-4
    assert not grad[i, length:].any()
    _, expected_tangent = jax.jvp(alone, (frames[i],), (direction[i],))
    assert relative_error(tangent[i], np.asarray(expected_tangent, np.float64)) <= 1e-4


def test_cpu_formulation_equals_the_plain_one(clip_windows):
  """On XLA:CPU short sequences are pooled in two fused passes over the frames (`_fused_gram`) and
  differentiated through the plain formulation in chunks (a custom_jvp): on the same padded windows, with
  the backward half, both formulations give the same values, gradients and tangents, and padded frames no
  gradient."""
  frames = clip_windows.copy()
  lengths = jnp.asarray([10, 7, 3])
  for i, length in enumerate(lengths):
    frames[i, length:] = np.nan
  clean = np.nan_to_num(frames)
  probe = np.random.default_rng(0).normal(size=(3, 2 * frames.shape[-1])).astype(np.float32)
  direction = np.random.default_rng(1).normal(size=frames.shape).astype(np.float32)
  recipe = videodarwin.Recipe(forward_backward=True)

  def evaluate(pool):
    grad = jax.jit(jax.grad(lambda f: jnp.vdot(pool(f), probe)))(clean)
    _, tangent = jax.jit(lambda f, d: jax.jvp(pool, (f,), (d,)))(clean, direction)
    return str(jax.make_jaxpr(pool)(frames)), [np.asarray(a) for a in (jax.jit(pool)(frames), grad, tangent)]

  cpu_program, cpu = evaluate(
      lambda f: xla_cpu_rank_pooling.pool_sequences(f, lengths, HYPERPARAMETERS, recipe=recipe))
  plain_program, plain = evaluate(
      lambda f: videodarwin.pool_sequences(f, lengths, HYPERPARAMETERS, recipe=recipe))
  assert "custom_jvp_call" in cpu_program and "custom_jvp_call" not in plain_program
  assert np.isfinite(cpu[0]).all()
  for name, a, b in zip(("values", "gradients", "tangents"), cpu, plain):
    for i, length in enumerate(lengths):
      # Both sum their Gram matrices in float32 in another order (each within 3e-7 of float64 here), a
      # difference that 2C = 20 amplifies; with C = 1 (VideoDarwin's) the values agree to 1e-6, below.
      assert relative_error(a[i], b[i].astype(np.float64)) <= 1e-5, (name, i)
      if name == "gradients":
        assert not a[i, length:].any() and a[i, :length].any()
  hyperparameters = (1.0,) + HYPERPARAMETERS[1:]
  cpu, plain = (jax.jit(lambda f, pool=pool: pool(f, None, hyperparameters, recipe=videodarwin.Recipe()))(
      clip_windows) for pool in (xla_cpu_rank_pooling.pool_sequences, videodarwin.pool_sequences))
  for a, b in zip(np.asarray(cpu), np.asarray(plain, np.float64)):
    assert relative_error(a, b) <= 1e-6


def test_padded_frames_get_no_gradient(clip_windows):
  padded = clip_windows[:2, :, :50].copy()
  padded[1, 6:] = np.nan
  # A zero first frame: its running mean is a zero vector, where the signed square root and the
  # normalisation must not produce NaN gradients either.
  padded[0, 0] = 0.0
  lengths = np.array([10, 6])
  grad = jax.grad(lambda f: jnp.sum(rank_pool(f, lengths=lengths, forward_backward=True) ** 2))(padded)
  grad = np.asarray(grad)
  assert np.isfinite(grad).all()
  assert not grad[1, 6:].any() and grad[1, :6].any()


# ------------------------------------------------------------------------------------------ edge cases


def test_single_frame_is_the_closed_form_svr_solution():
  frame = np.array([[3.0, 4.0]], np.float32)  # time-varying mean = itself; ssr then normalise
  x = np.sign(frame[0]) * np.sqrt(np.abs(frame[0]))
  x = x / np.linalg.norm(x)
  for C in (1.0, 10.0):  # one compiled program: C is not static
    expected = 2 * C * (1 - 0.1) / (1 + 2 * C) * x
    np.testing.assert_allclose(rank_pool(frame, C), expected, rtol=1e-6)
    assert relative_error(rank_pool(frame, C), sklearn_rank_pool(frame, C)) <= 1e-6
  np.testing.assert_array_equal(rank_pool(frame, objective="ranksvm"), [0.0, 0.0])


def test_zero_frames_stay_zero_not_nan():
  frames = np.zeros((1, 2, 5, 6), np.float32)
  # Sequence 1: a zero first frame among others; its running mean is zero and the vector stays zero.
  frames[0, 1, 1:] = np.arange(24, dtype=np.float32).reshape(4, 6)
  for objective in ("svr", "ranksvm"):
    pooled = np.asarray(rank_pool(frames, objective=objective))
    np.testing.assert_array_equal(pooled[0, 0], np.zeros(6))
    assert np.isfinite(pooled[0, 1]).all() and pooled[0, 1].any()
  assert relative_error(rank_pool(frames)[0, 1], sklearn_rank_pool(frames[0, 1], 1.0)) <= 1e-4


def test_nan_frame_gives_nan_result():
  # Two leading batch axes.
  frames = np.random.default_rng(0).uniform(0, 255, (1, 2, 5, 6)).astype(np.float32)
  frames[0, 0, 3, 2] = np.nan
  for objective in ("svr", "ranksvm"):
    pooled = np.asarray(rank_pool(frames, objective=objective))
    assert pooled.shape == (1, 2, 6)
    assert np.isnan(pooled[0, 0]).all()
    assert np.isfinite(pooled[0, 1]).all()
  # Masked by lengths, the same NaN is ignored.
  assert np.isfinite(rank_pool(frames, lengths=np.array([[3, 5]]))).all()


# -------------------------------------------------------------------------------------------- gradients


def test_svr_gradient_matches_central_differences_of_the_float64_reference():
  rng = np.random.default_rng(0)
  x = rng.uniform(0.5, 2.0, (6, 8))
  probe = rng.normal(size=8)
  for C in (1.0, 10.0):
    grad = np.asarray(jax.grad(lambda f: jnp.vdot(rank_pool(f, C), probe))(x.astype(np.float32)))
    for _ in range(2):  # directional derivatives along random directions
      direction = rng.normal(size=x.shape)
      h = 1e-5
      numeric = (sklearn_rank_pool(x + h * direction, C) - sklearn_rank_pool(x - h * direction, C)) @ probe
      numeric /= 2 * h
      np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-3, atol=1e-3)


def test_ranksvm_gradient_matches_central_differences_of_the_float64_reference():
  rng = np.random.default_rng(0)
  x = rng.uniform(0.5, 2.0, (5, 6))
  probe = rng.normal(size=6)
  C = 100.0  # large enough that some pairs are free (0 < multiplier < c), so the free-set path is used
  grad = np.asarray(jax.grad(lambda f: jnp.vdot(rank_pool(f, C, objective="ranksvm"), probe))(
      x.astype(np.float32)))
  reference = lambda f: scipy_ranksvm(reference_frame_vectors(f), C) @ probe
  for _ in range(3):
    direction = rng.normal(size=x.shape)
    h = 1e-4
    numeric = (reference(x + h * direction) - reference(x - h * direction)) / (2 * h)
    np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------- RankSVM


@pytest.mark.parametrize("C", [1.0, 100.0])
def test_ranksvm_matches_brute_force_primal(C):
  x = np.random.default_rng(1).uniform(0.0, 1.0, (5, 6))
  pooled = rank_pool(x, C, objective="ranksvm", tol=1e-7, max_iter=1000)
  assert relative_error(pooled, scipy_ranksvm(reference_frame_vectors(x), C)) <= 1e-4


def test_ranksvm_duality_gap_and_kkt_conditions():
  x = reference_frame_vectors(np.random.default_rng(2).uniform(0.0, 1.0, (6, 8))).astype(np.float32)
  T, C = 6, 100.0
  multipliers, gap, steps = solvers._ranksvm_fista(jnp.asarray(x @ x.T), jnp.ones(T, bool), C, 10_000, 1e-6)
  multipliers = np.asarray(multipliers, np.float64)
  c = 2.0 / (T * (T - 1))
  u = multipliers.sum(1) - multipliers.sum(0)
  d = C * x.T.astype(np.float64) @ u
  scores = x.astype(np.float64) @ d
  primal = 0.5 / C * d @ d + c * sum(max(0.0, 1 - scores[q] + scores[t]) for q in range(T) for t in range(q))
  assert 0 < int(steps) < 10_000
  assert float(gap) <= 1e-6 * primal
  for q in range(T):
    for t in range(q):
      margin, a = scores[q] - scores[t], multipliers[q, t] / c
      assert -1e-6 <= a <= 1 + 1e-6
      if a < 1e-3:
        assert margin >= 1 - 1e-3   # inactive pair: satisfied
      elif a > 1 - 1e-3:
        assert margin <= 1 + 1e-3   # at the bound: violated or on the margin
      else:
        assert abs(margin - 1) <= 1e-3  # free pair: exactly on the margin
  np.testing.assert_array_equal(np.triu(multipliers), 0)


def test_ranksvm_orders_real_frames(clip_windows):
  D = clip_windows.shape[-1]
  pooled = rank_pool(clip_windows, 10.0, objective="ranksvm", forward_backward=True)
  vectors = np.stack([reference_frame_vectors(w) for w in clip_windows]).astype(np.float32)
  assert np.all(np.asarray(ranking_accuracy(pooled[:, :D], vectors)) >= 0.8)


# ----------------------------------------------------------------------------------- ranking accuracy


def test_ranking_accuracy_counts_ordered_pairs():
  features = np.zeros((2, 4, 3), np.float32)
  features[0, :, 0] = [0, 1, 2, 3]   # perfectly ordered by d = e_0
  features[1, :, 0] = [0, 2, 1, 3]   # one pair (2 > 1) out of 6 inverted
  d = np.array([1.0, 0, 0], np.float32)
  np.testing.assert_allclose(ranking_accuracy(d, features), [1.0, 5 / 6])
  np.testing.assert_allclose(ranking_accuracy(-d, features), [0.0, 1 / 6])
  # Only pairs of valid frames count: garbage past the end is ignored.
  features[1, 3] = np.nan
  np.testing.assert_allclose(ranking_accuracy(np.stack([d, d]), features, lengths=np.array([4, 3])),
                             [1.0, 2 / 3])
  assert jax.jit(ranking_accuracy)(d, features[:1]).dtype == jnp.float32


def test_ranking_accuracy_of_svr_pooling_is_high(clip_windows):
  vectors = np.stack([reference_frame_vectors(w) for w in clip_windows]).astype(np.float32)
  accuracy = np.asarray(ranking_accuracy(rank_pool(clip_windows, 1.0), vectors))
  assert accuracy.shape == (3,) and np.all(accuracy >= 0.9)


def test_ranking_accuracy_errors():
  with pytest.raises(ValueError, match="T >= 2"):
    ranking_accuracy(np.ones(3), np.ones((1, 3)))
  with pytest.raises(ValueError, match="must match"):
    ranking_accuracy(np.ones(4), np.ones((5, 3)))
  with pytest.raises(ValueError, match="broadcast"):
    ranking_accuracy(np.ones((2, 3)), np.ones((3, 5, 3)))


# ---------------------------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
  frames = np.ones((2, 5, 6), np.float32)
  with pytest.raises(ValueError, match=r"expected \[..., T, D\]"):
    rank_pool(np.ones(5, np.float32))
  with pytest.raises(ValueError, match="no frames"):
    rank_pool(np.ones((0, 6), np.float32))
  with pytest.raises(TypeError, match="dtype bool"):
    rank_pool(np.ones((5, 6), bool))
  with pytest.raises(TypeError, match="NumPy or JAX array"):
    rank_pool([[1.0, 2.0]])
  with pytest.raises(ValueError, match="objective"):
    rank_pool(frames, objective="svm")
  with pytest.raises(ValueError, match="nonlinearity"):
    rank_pool(frames, nonlinearity="tanh")
  for bad in (0.0, -1.0, float("nan"), float("inf")):
    with pytest.raises(ValueError, match="C must be a finite positive"):
      rank_pool(frames, C=bad)
    with pytest.raises(ValueError, match="epsilon must be a finite positive"):
      rank_pool(frames, epsilon=bad)
  with pytest.raises(TypeError, match="C must be a positive number"):
    rank_pool(frames, C="1")
  with pytest.raises(TypeError, match="traced"):
    jax.jit(lambda c: rank_pool(frames, C=c))(1.0)
  with pytest.raises(ValueError, match="max_iter"):
    rank_pool(frames, max_iter=0)
  with pytest.raises(ValueError, match=r"lengths has shape \(3,\); expected \(2,\)"):
    rank_pool(frames, lengths=np.array([5, 5, 5]))
  with pytest.raises(ValueError, match=r"lengths must lie in 1..5"):
    rank_pool(frames, lengths=np.array([5, 6]))
  with pytest.raises(ValueError, match=r"lengths must lie in 1..5"):
    rank_pool(frames, lengths=np.array([0, 5]))
  with pytest.raises(TypeError, match="expected integers"):
    rank_pool(frames, lengths=np.array([5.0, 5.0]))


# ------------------------------------------------------------------------------- a real dynamic image


def test_reproduces_the_willprice_exact_rank_pooling_dynamic_image():
  """willprice/dynamic-images example 213160: 20 frames, exact RP (C = 1), saved as JPEG.

  That source flattened each frame to one vector of all pixels and channels (one SVR on H*W*3 values), read
  the JPEGs as 0..255 floats, min-max scaled the weights over the whole array and saved a JPEG. Its pixel
  scale does not matter: the signed square root is homogeneous (degree 1/2) and the per-frame L2
  normalisation removes any global scale. Its solver stopped early (liblinear tol 1e-3, about 0.3 % away
  from the exact weights) and it truncated rather than rounded to uint8; both stay well inside the JPEG
  error, so the exact solution rounded to uint8 matches it to about 2 grey levels on average.
  """
  paths = sorted(WILLPRICE.glob("frame_*.jpg"), key=lambda p: int(re.search(r"(\d+)", p.stem).group(1)))
  frames = np.stack([np.asarray(Image.open(p)) for p in paths])
  assert frames.shape == (20, 240, 428, 3)
  T, H, W, _ = frames.shape
  target = np.asarray(Image.open(WILLPRICE / "213160_dynamic_image.jpg")).astype(np.float64)

  joint = np.asarray(rank_pool(frames.reshape(T, -1), 1.0)).reshape(H, W, 3)
  joint_error = np.abs(to_uint8_image(joint).astype(np.float64) - target).mean()
  assert joint_error <= 3.0

  # One SVR per colour channel fits the reference worse than one on all channels.
  per_channel = np.stack(
      [np.asarray(rank_pool(frames[..., c].reshape(T, -1), 1.0)).reshape(H, W) for c in range(3)], -1)
  per_channel_error = np.abs(to_uint8_image(per_channel).astype(np.float64) - target).mean()
  assert joint_error < per_channel_error


# ------------------------------------------------------------- dynamic images by exact rank pooling


@pytest.fixture(scope="module")
def clip_frames(ucf_frames):
  """uint8 [12, 30, 40, 3]: the first 12 frames of the UCF101 clip at 1/8 resolution."""
  return ucf_frames[:12, ::8, ::8]


def test_dynamic_image_in_the_paper_order_is_one_svr_per_channel_on_square_root_means(clip_frames):
  """Section 5.3: square root, time-varying mean, a ranking hyperplane per channel (C = 10)."""
  pooled = rank_pool_pixels(clip_frames)
  assert pooled.dtype == jnp.float32 and pooled.shape == (30, 40, 3)
  assert relative_error(pooled, sklearn_rank_pool_per_channel(clip_frames, 10.0)) <= 1e-4
  assert relative_error(rank_pool_pixels(clip_frames, 1.0),
                        sklearn_rank_pool_per_channel(clip_frames, 1.0)) <= 1e-4
  # With the L2 normalisation the pixel scale cancels.
  assert relative_error(rank_pool_pixels(clip_frames / np.float32(255)), np.asarray(pooled, np.float64)) <= 1e-5


def test_dynamic_image_in_videodarwin_order_is_one_svr_on_the_whole_frame(clip_frames):
  T = len(clip_frames)
  pooled = np.asarray(rank_pool_pixels(clip_frames, order="videodarwin"))
  assert pooled.shape == (30, 40, 3)
  expected = sklearn_rank_pool(clip_frames.reshape(T, -1), 10.0).reshape(30, 40, 3)
  assert relative_error(pooled, expected) <= 1e-4
  # The two orders give different images, not a rescaling of one another.
  paper = sklearn_rank_pool_per_channel(clip_frames, 10.0)
  assert np.corrcoef(expected.ravel(), paper.ravel())[0, 1] < 0.99
  assert np.abs(to_uint8_image(expected).astype(int) - to_uint8_image(paper)).mean() > 2


def test_dynamic_image_without_normalisation_matches_sklearn_on_small_frames(ucf_frames):
  """The literal reading of section 5.3 (hyperplanes on V_t itself). Its kernel holds |V_t|^2, about the
  number of pixels times 128, so float32 is accurate to about 1e-3 only on small frames."""
  frames = ucf_frames[:8, 96:128:8, 144:176:8]
  pooled = rank_pool_pixels(frames, normalize=False)
  assert relative_error(pooled, sklearn_rank_pool_per_channel(frames, 10.0, normalize=False)) <= 1e-3


def test_dynamic_images_of_a_padded_batch_equal_each_video_alone(clip_frames):
  batch = np.stack([clip_frames, clip_frames[::-1]]).astype(np.float32)
  batch[1, 7:] = np.nan  # garbage past the end must not leak
  for order in ("paper", "videodarwin"):
    pooled = np.asarray(rank_pool_pixels(batch, order=order, lengths=np.array([12, 7])))
    assert pooled.shape == (2, 30, 40, 3) and np.isfinite(pooled).all()
    alone = [rank_pool_pixels(clip_frames, order=order), rank_pool_pixels(clip_frames[::-1][:7], order=order)]
    for got, want in zip(pooled, alone):
      assert relative_error(got, np.asarray(want, np.float64)) <= 1e-4


def test_rank_pool_pixels_errors(clip_frames):
  with pytest.raises(ValueError, match="order is 'sorted'"):
    rank_pool_pixels(clip_frames, order="sorted")
  with pytest.raises(ValueError, match=r"expected \[..., T, H, W, C\]"):
    rank_pool_pixels(clip_frames[..., 0])
  with pytest.raises(ValueError, match=r"lengths has shape \(2,\); expected \(\)"):
    rank_pool_pixels(clip_frames, lengths=np.array([3, 4]))
  with pytest.raises(ValueError, match="C must be a finite positive"):
    rank_pool_pixels(clip_frames, C=0.0)
