"""Programs exported for GPU and TPU from this CPU host carry no XLA:CPU formulation.

The CPU formulations (`arp_jax.xla_cpu`) are chosen by `lax.platform_dependent`, resolved when a program
is lowered for its platform, and run under the named scope `xla_cpu.SCOPE`, which the exported module's
locations show. Each operator is exported with `jax.export` for ["cuda", "tpu"] (it must lower, without
the scope and without rank pooling's optimization barrier) and for ["cpu"] (where the scope must appear,
so that these tests can fail).
"""

import functools

import jax
import jax.numpy as jnp
import optax
import pytest

import arp_jax
from arp_jax import train_step, xla_cpu
from arp_jax.models import DynamicImageNetwork

ACCELERATORS = ["cuda", "tpu"]


def exported_text(fn, *shapes, platforms) -> str:
  exported = jax.export.export(jax.jit(fn), platforms=platforms)(*shapes)
  assert tuple(exported.platforms) == tuple(platforms)
  return exported.mlir_module()


def assert_plain(text: str) -> None:
  assert xla_cpu.SCOPE not in text
  assert "optimization_barrier" not in text


def test_pool_exports_for_accelerators():
  # ARP has no CPU formulation: the plain program everywhere.
  frames = jax.ShapeDtypeStruct((2, 10, 32, 32, 3), jnp.float32)
  pool = lambda x: arp_jax.pool(x, axis=1)
  assert_plain(exported_text(pool, frames, platforms=ACCELERATORS))
  assert_plain(exported_text(pool, frames, platforms=["cpu"]))


@pytest.mark.parametrize("with_lengths", [False, True])
def test_rank_pool_exports_the_plain_formulation_for_accelerators(with_lengths):
  features = jax.ShapeDtypeStruct((4, 10, 512), jnp.float32)
  if with_lengths:
    shapes = (features, jax.ShapeDtypeStruct((4,), jnp.int32))
    rank_pool = lambda x, lengths: arp_jax.rank_pool(x, 10.0, lengths=lengths, forward_backward=True)
  else:
    shapes = (features,)
    rank_pool = lambda x: arp_jax.rank_pool(x, 10.0)
  assert_plain(exported_text(rank_pool, *shapes, platforms=ACCELERATORS))
  cpu = exported_text(rank_pool, *shapes, platforms=["cpu"])
  assert xla_cpu.SCOPE in cpu and "optimization_barrier" in cpu


def test_rank_pool_gradient_exports_for_accelerators():
  features = jax.ShapeDtypeStruct((4, 10, 512), jnp.float32)
  grad = jax.grad(lambda x: jnp.sum(arp_jax.rank_pool(x) ** 2))
  assert_plain(exported_text(grad, features, platforms=ACCELERATORS))
  assert xla_cpu.SCOPE in exported_text(grad, features, platforms=["cpu"])


def test_tvl1_exports_the_batched_formulation_for_accelerators():
  pairs = jax.ShapeDtypeStruct((4, 240, 320, 3), jnp.uint8)
  assert_plain(exported_text(arp_jax.flow.tvl1, pairs, pairs, platforms=ACCELERATORS))
  assert xla_cpu.SCOPE in exported_text(arp_jax.flow.tvl1, pairs, pairs, platforms=["cpu"])


def test_resnext50_dynamic_image_train_step_exports_for_accelerators():
  # The dynamic image network of the paper: ARP at the input of ResNeXt-50, a 5-D clip batch of 2 clips
  # of 10 frames (one window each), shapes only.
  model = DynamicImageNetwork(backbone="resnext50_32x4d", num_classes=101, window=10, stride=10,
                              pool_at="stem", pooling="arp")
  clips = jax.ShapeDtypeStruct((2, 10, 112, 112, 3), jnp.float32)
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), clips)
  tx = optax.sgd(0.01, momentum=0.9)
  state = jax.eval_shape(lambda v: train_step.create_state(model, tx, v), variables)
  batch = {"frames": clips, "windows": jax.ShapeDtypeStruct((2,), jnp.int32),
           "label": jax.ShapeDtypeStruct((2,), jnp.int32)}
  key = jax.eval_shape(lambda: jax.random.key(0))
  step = train_step.make_train_step(model, train_step.data_mesh(jax.devices()[:1]))
  for platforms in (ACCELERATORS, ["cpu"]):
    exported = jax.export.export(step, platforms=platforms)(state, batch, key)
    text = exported.mlir_module()
    if platforms == ACCELERATORS:
      assert_plain(text)
    else:
      assert xla_cpu.SCOPE in text  # ResNeXt's convolutions in their XLA:CPU formulation
