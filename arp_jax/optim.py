"""The reference's optimiser: SGD with momentum 0.9 and weight decay 5e-4, learning rates set per epoch,
per-parameter learning-rate multipliers, and gradient accumulation; and AdamW with the same schedule,
multipliers and accumulation (`config.optim.optimizer`), for networks trained from scratch.

    schedule = epoch_schedule([1e-2] * 2 + [1e-3] * 8, steps_per_epoch)  # ResNeXt RGB, REFERENCE.md
    tx = sgd(schedule, multipliers=lr_multipliers(params, {"temporal_pooling": 0.1}), accumulation_steps=4)

Conventions:
  * The update is PyTorch's SGD: `v = momentum * v + (g + wd * w)`, `w -= lr * multiplier * v`. (Caffe and
    MatConvNet fold the learning rate into the momentum buffer; the two agree while the learning rate is
    constant and differ only for a few steps after each change.)
  * Weight decay applies to convolution and fully connected kernels (rank >= 2), not to biases or
    BatchNorm scales and offsets, as the reference models declare per-parameter decay.
  * With gradient accumulation (`optax.MultiSteps`) the gradients of `accumulation_steps` sub-batches are
    averaged and one update is made: a batch of 128 videos as 4 sub-batches of 32 (the reference's
    practice). The schedule counts updates, not sub-batches: `steps_per_epoch` is in updates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from arp_jax import checks

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
OPTIMIZERS = ("sgd", "adamw")  # config.optim.optimizer: the reference's SGD (default), or `adamw`


def epoch_schedule(learning_rates: Sequence[float], steps_per_epoch: int) -> optax.Schedule:
  """A piecewise-constant learning rate: `learning_rates[e]` for every update of epoch e (0-based).

  Args:
    learning_rates: one non-negative rate per epoch, e.g. `[1e-2] * 2 + [1e-3] * 8`; updates past the
      last epoch keep the last rate.
    steps_per_epoch: updates per epoch, >= 1.

  Returns:
    `schedule(step) -> float32 scalar`, jittable.

  Raises:
    ValueError: an empty or negative/non-finite list, or steps_per_epoch < 1.
  """
  rates = np.asarray(learning_rates, np.float64)
  if rates.ndim != 1 or rates.size == 0 or not np.isfinite(rates).all() or (rates < 0).any():
    raise ValueError(f"learning_rates is {learning_rates!r}; expected a non-empty list of finite rates >= 0, "
                     "one per epoch")
  steps_per_epoch = checks.check_int(steps_per_epoch, "steps_per_epoch")  # updates per epoch
  table = jnp.asarray(rates, jnp.float32)

  def schedule(step):
    return table[jnp.clip(step // steps_per_epoch, 0, len(rates) - 1)]

  return schedule


def lr_multipliers(params, rules: Mapping[str, float]) -> Any:
  """A float per parameter, like `params`: the product of `rules[name]` over the names on its path.

  E.g. `{"temporal_pooling": 0.1}` trains the parametric pooling 10 times slower (the reference), and
  `{"fc": 10.0}` a new classifier faster. Parameters matching no rule get 1.

  Raises:
    ValueError: a rule matches no parameter (a typo would silently do nothing), or a multiplier is
      negative or not finite.
  """
  for name, value in rules.items():
    if not np.isfinite(value) or value < 0:
      raise ValueError(f"multiplier {name!r}: {value!r}; expected a finite number >= 0")
  paths = traverse_util.flatten_dict(params)
  unused = [name for name in rules if not any(name in path for path in paths)]
  if unused:
    raise ValueError(f"no parameter path contains {unused}; the top-level names are "
                     f"{sorted({path[0] for path in paths})}")
  return traverse_util.path_aware_map(
      lambda path, _: float(np.prod([rules.get(name, 1.0) for name in path])), params)


def _decay_mask(params):
  return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def _scale_by_tree(multipliers) -> optax.GradientTransformation:
  """Multiplies each update by its parameter's multiplier (a pytree of floats like the updates)."""
  return optax.stateless(lambda updates, params=None: jax.tree.map(
      lambda u, m: u * jnp.asarray(m, u.dtype), updates, multipliers))


def sgd(learning_rate, *, momentum: float = MOMENTUM, weight_decay: float = WEIGHT_DECAY,
        multipliers=None, accumulation_steps: int = 1) -> optax.GradientTransformation:
  """SGD as the reference trains (see the module docstring).

  Args:
    learning_rate: a float or an optax schedule of the update count (`epoch_schedule`).
    momentum, weight_decay: the reference's 0.9 and 5e-4.
    multipliers: None, or a pytree of floats like the parameters (`lr_multipliers`).
    accumulation_steps: sub-batches averaged into one update (1: none).

  Raises:
    ValueError: momentum outside [0, 1), negative weight decay, or accumulation_steps < 1.
    TypeError: accumulation_steps is not an int.
  """
  if not 0 <= momentum < 1:
    raise ValueError(f"momentum is {momentum!r}; expected a number in [0, 1)")
  parts = [optax.add_decayed_weights(_check_decay(weight_decay), mask=_decay_mask)]
  if momentum:
    parts.append(optax.trace(decay=momentum))
  return _finish(parts, learning_rate, multipliers, accumulation_steps)


def adamw(learning_rate, *, weight_decay: float = WEIGHT_DECAY, multipliers=None,
          accumulation_steps: int = 1) -> optax.GradientTransformation:
  """Adam with decoupled weight decay (AdamW): not the reference's optimiser, for networks trained from
  scratch on little data, where SGD learns slowly (the synthetic benchmark's mean-image and flow
  streams).

  The update is `w -= lr * multiplier * (adam(g) + wd * w)`, Adam's default betas (0.9, 0.999) and eps
  1e-8; the decay applies to the kernels only, as `sgd`'s. Arguments as `sgd`'s (no momentum: Adam's
  first moment is one).

  Raises:
    ValueError: negative weight decay, or accumulation_steps < 1.
    TypeError: accumulation_steps is not an int.
  """
  parts = [optax.scale_by_adam(), optax.add_decayed_weights(_check_decay(weight_decay), mask=_decay_mask)]
  return _finish(parts, learning_rate, multipliers, accumulation_steps)


def _check_decay(weight_decay) -> float:
  if not weight_decay >= 0:
    raise ValueError(f"weight_decay is {weight_decay!r}; expected a number >= 0")
  return weight_decay


def _finish(parts: list, learning_rate, multipliers, accumulation_steps) -> optax.GradientTransformation:
  """`parts`, then the multipliers and the learning rate, chained; accumulated over sub-batches."""
  accumulation_steps = checks.check_int(accumulation_steps, "accumulation_steps")
  if multipliers is not None:
    parts.append(_scale_by_tree(multipliers))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  tx = optax.chain(*parts)
  if accumulation_steps > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=accumulation_steps)
  return tx
