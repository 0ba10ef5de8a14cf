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


def test_adamw_is_adam_with_decoupled_decay_on_kernels_only():
  # Two steps by hand: Adam's moments (betas 0.9, 0.999, eps 1e-8, bias-corrected), then lr x (m_hat /
  # (sqrt(v_hat) + eps) + wd x w) for the kernel and without the decay for the bias.
  params = {"kernel": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "bias": jnp.array([0.5, -1.0])}
  grads = [{"kernel": jnp.array([[0.1, -0.2], [0.3, 0.0]]), "bias": jnp.array([1.0, -0.5])},
           {"kernel": jnp.array([[-0.1, 0.4], [0.2, 0.1]]), "bias": jnp.array([0.5, 0.5])}]
  lr, wd = 0.01, 0.1
  multipliers = {"kernel": 1.0, "bias": 2.0}
  tx = optim.adamw(lr, weight_decay=wd, multipliers=multipliers)
  state = tx.init(params)
  expected = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in expected.items()}
  v = {k: np.zeros_like(x) for k, x in expected.items()}
  for t, g in enumerate(grads, start=1):
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    for k in expected:
      gk = np.asarray(g[k], np.float64)
      m[k] = 0.9 * m[k] + 0.1 * gk
      v[k] = 0.999 * v[k] + 0.001 * gk ** 2
      step = (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
      decay = wd * expected[k] if k == "kernel" else 0.0
      expected[k] = expected[k] - lr * multipliers[k] * (step + decay)
    for k in expected:
      np.testing.assert_allclose(params[k], expected[k], rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="weight_decay is -1"):
    optim.adamw(lr, weight_decay=-1)


def test_the_config_chooses_the_optimiser():
  from arp_jax import builders, config as config_lib  # pylint: disable=import-outside-toplevel
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
  grads = {"kernel": jnp.full((2, 2), 0.5), "bias": jnp.full(2, 0.5)}
  c = config_lib.base_config().optim
  c.multipliers, c.accumulation_steps = {}, 1
  updates = {}
  for name in ("sgd", "adamw"):
    c.optimizer = name
    tx, _ = builders.optimizer(c, 10, params)
    updates[name], _ = tx.update(grads, tx.init(params), params)
  lr = c.learning_rates[0]
  # SGD's first step: lr x (g + wd x w); Adam's: lr x (sign(g) + wd x w) on kernels, lr x sign(g) on biases.
  np.testing.assert_allclose(updates["sgd"]["bias"], -lr * 0.5, rtol=1e-6)
  np.testing.assert_allclose(updates["adamw"]["bias"], -lr * 1.0, rtol=1e-5)
  np.testing.assert_allclose(updates["adamw"]["kernel"], -lr * (1.0 + c.weight_decay), rtol=1e-5)
  del c["optimizer"]  # a config written before the field trained with SGD
  tx, _ = builders.optimizer(c, 10, params)
  np.testing.assert_allclose(tx.update(grads, tx.init(params), params)[0]["bias"], -lr * 0.5, rtol=1e-6)
