"""One data-parallel training step: `jax.jit` over a device mesh, batch sharded, state replicated.

    mesh = data_mesh()                       # every device of every host, one axis "data"
    state = create_state(model, tx, variables)
    state = replicate(state, mesh)
    step = make_train_step(model, mesh)
    batch = global_batch(local_batch, mesh)  # each host passes the part its input pipeline read
    state, metrics = step(state, batch, dropout_key)

The batch axis is split over all devices with a `NamedSharding`; the parameters, BatchNorm statistics
and optimiser state are replicated; XLA (GSPMD) inserts the reductions, so the loss, the gradients and the
BatchNorm batch statistics are those of the global batch, exactly as on one device (tests/integration/test_train_step.py
checks 8 devices against 1). The state argument is donated: its buffers are reused for the new state. No
`jax.pmap`. On several hosts call `jax.distributed.initialize()` first; `global_batch` then assembles the
hosts' local batches with `jax.make_array_from_process_local_data`.

A batch is a dict with `frames` ([B, S_max, tau, H, W, C]: each video's windows), `windows` (int [B],
its real windows; the rest repeat the last) and `label` (int [B]), as `arp_jax.input` yields them.
"""

from __future__ import annotations

from typing import Any

import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


class TrainState(train_state.TrainState):
  """Step, parameters, optimiser state, and the BatchNorm running statistics."""
  batch_stats: Any = None


def data_mesh(devices=None) -> Mesh:
  """A one-axis mesh ("data") over `devices` (default: every device of every host)."""
  devices = np.asarray(jax.devices() if devices is None else devices)
  if devices.size == 0:
    raise ValueError("no devices for the mesh; expected at least one")
  return Mesh(devices.reshape(-1), (DATA_AXIS,))


def create_state(model, tx: optax.GradientTransformation, variables) -> TrainState:
  """A TrainState from initialised (or converted pretrained) `variables` = {"params", "batch_stats"?}."""
  if "params" not in variables:
    raise ValueError(f"variables has keys {sorted(variables)}; expected 'params' (and 'batch_stats')")
  # One program: eagerly, the optimiser's state is one small program per parameter shape (on XLA:CPU
  # 0.6-0.8 s of compiling per run for the synthetic benchmark's network).
  create = jax.jit(lambda params, batch_stats: TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                                                                 batch_stats=batch_stats))
  return create(variables["params"], variables.get("batch_stats", flax.core.FrozenDict()))


def replicate(tree, mesh: Mesh):
  """A copy of `tree` with every array replicated on every device of `mesh`.

  Always a copy (never aliasing the input's buffers): the train step donates the state, which would
  otherwise delete the caller's arrays, e.g. the pretrained variables it started from.
  """
  # device_put may reuse an input buffer as one device's shard even with may_alias=False (jax 0.10.2,
  # seen for a single-device array put on 8 devices), so copy first.
  copied = jax.tree.map(lambda x: jnp.array(x, copy=True), tree)
  return jax.device_put(copied, NamedSharding(mesh, PartitionSpec()))


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """The global batch from this host's part: leading axis sharded over the mesh's devices.

  Raises:
    ValueError: a leading axis that does not split evenly over this host's devices.
  """
  local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  out = {}
  for key, value in local_batch.items():
    value = np.asarray(value)
    if value.ndim == 0 or value.shape[0] % local_devices:
      raise ValueError(f"batch[{key!r}] has shape {value.shape}; its leading axis must be a multiple of "
                       f"this host's {local_devices} devices")
    out[key] = jax.make_array_from_process_local_data(sharding, value)
  return out


def cross_entropy(logits, labels) -> jax.Array:
  """Mean softmax cross-entropy of `logits` float [B, K] against int `labels` [B]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels).mean()


def make_train_step(model, mesh: Mesh):
  """The jitted step `(state, batch, dropout_key) -> (state, metrics)` for `model` on `mesh`.

  metrics: loss, accuracy (of the batch, before the update), learning rate is left to the caller
  (`schedule(state.step)`), all replicated scalars.
  """
  replicated = NamedSharding(mesh, PartitionSpec())
  sharded = NamedSharding(mesh, PartitionSpec(DATA_AXIS))

  def step(state: TrainState, batch: dict, dropout_key):
    def loss_fn(params):
      logits, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch["frames"], train=True,
          num_windows=batch["windows"], mutable=["batch_stats"], rngs={"dropout": dropout_key})
      return cross_entropy(logits, batch["label"]), (logits, updates.get("batch_stats", state.batch_stats))

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return state, {"loss": loss, "accuracy": accuracy}

  return jax.jit(step, in_shardings=(replicated, sharded, replicated),
                 out_shardings=(replicated, replicated), donate_argnums=0)
