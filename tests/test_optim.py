"""The reference optimiser (arp_jax.optim) against a hand-written PyTorch-style SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from arp_jax import optim

PARAMS = {"backbone": {"conv": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones((3,))}},
          "temporal_pooling": {"layer0": {"kernel": jnp.full((10, 1), 0.1), "bias": jnp.zeros((1,))}}}


def _grads(step: int):
  return jax.tree.map(lambda p: jnp.full_like(p, 0.5 + step) * jnp.arange(1, p.size + 1).reshape(p.shape), PARAMS)


def _reference(params, steps, rates, multipliers, momentum=0.9, decay=5e-4):
  """PyTorch SGD by hand: v = m v + (g + wd w) (kernels only), w -= lr * mult * v."""
  flat = {k: np.asarray(v, np.float64) for k, v in jax.tree_util.tree_leaves_with_path(params)}
  velocity = {k: np.zeros_like(v) for k, v in flat.items()}
  mults = dict(jax.tree_util.tree_leaves_with_path(multipliers))
  for step in range(steps):
    grads = dict(jax.tree_util.tree_leaves_with_path(_grads(step)))
    for k in flat:
      g = np.asarray(grads[k], np.float64) + (decay * flat[k] if flat[k].ndim >= 2 else 0.0)
      velocity[k] = momentum * velocity[k] + g
      flat[k] = flat[k] - rates[step] * mults[k] * velocity[k]
  return flat


def test_sgd_matches_pytorch_rule_with_schedule_and_multipliers():
  schedule = optim.epoch_schedule([1e-2, 1e-2, 1e-3], steps_per_epoch=2)
  assert [float(schedule(s)) for s in range(8)] == pytest.approx([1e-2] * 4 + [1e-3] * 4)
  multipliers = optim.lr_multipliers(PARAMS, {"temporal_pooling": 0.1})
  assert multipliers["temporal_pooling"]["layer0"]["kernel"] == 0.1
  assert multipliers["backbone"]["conv"]["kernel"] == 1.0
  tx = optim.sgd(schedule, multipliers=multipliers)
  params, state = PARAMS, tx.init(PARAMS)
  for step in range(6):
    updates, state = tx.update(_grads(step), state, params)
    params = optax.apply_updates(params, updates)
  expected = _reference(PARAMS, 6, [float(schedule(s)) for s in range(6)], multipliers)
  for path, value in jax.tree_util.tree_leaves_with_path(params):
    np.testing.assert_allclose(value, expected[path], rtol=1e-5, atol=1e-6)  # float32 against float64


def test_gradient_accumulation_averages_sub_batches():
  plain, accumulated = optim.sgd(0.1), optim.sgd(0.1, accumulation_steps=2)
  p1, s1 = PARAMS, plain.init(PARAMS)
  mean = jax.tree.map(lambda a, b: (a + b) / 2, _grads(0), _grads(1))
  updates, s1 = plain.update(mean, s1, p1)
  p1 = optax.apply_updates(p1, updates)
  p2, s2 = PARAMS, accumulated.init(PARAMS)
  for step in range(2):
    updates, s2 = accumulated.update(_grads(step), s2, p2)
    p2 = optax.apply_updates(p2, updates)
    if step == 0:  # nothing moves until the last sub-batch
      jax.tree.map(np.testing.assert_array_equal, p2, PARAMS)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), p1, p2)


def test_bad_arguments():
  with pytest.raises(ValueError, match="one per epoch"):
    optim.epoch_schedule([], 10)
  with pytest.raises(ValueError, match="one per epoch"):
    optim.epoch_schedule([1e-2, -1.0], 10)
  with pytest.raises(ValueError, match="steps_per_epoch"):
    optim.epoch_schedule([1e-2], 0)
  with pytest.raises(ValueError, match="no parameter path contains"):
    optim.lr_multipliers(PARAMS, {"temporal_poling": 0.1})
  with pytest.raises(ValueError, match="finite number"):
    optim.lr_multipliers(PARAMS, {"backbone": float("nan")})
  with pytest.raises(ValueError, match="momentum"):
    optim.sgd(0.1, momentum=1.0)
  with pytest.raises(ValueError, match="accumulation_steps"):
    optim.sgd(0.1, accumulation_steps=0)
