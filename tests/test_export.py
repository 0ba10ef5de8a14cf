"""Programs exported for GPU and TPU from this CPU host carry no XLA:CPU formulation.

The CPU formulations (`arp_jax.xla_cpu`) are chosen by `lax.platform_dependent`, resolved when a program
is lowered for its platform, and run under the named scope `xla_cpu.SCOPE`, which the exported module's
locations show. Each operator is exported with `jax.export` for ["cuda", "tpu"] (it must lower, without
the scope and without rank pooling's optimization barrier) and for ["cpu"] (where the scope must appear,
so that these tests can fail). So is the train step of every network the paper's configs train
(experiments/, each distinct network of each sweep), shapes only: nothing is compiled or run.
"""

import jax
import jax.numpy as jnp
import pytest

import arp_jax
from arp_jax import builders, flow, sweep, train_step, xla_cpu
from arp_jax.input import CHANNELS

from paths import EXPERIMENTS

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
  assert_plain(exported_text(flow.tvl1, pairs, pairs, platforms=ACCELERATORS))
  assert xla_cpu.SCOPE in exported_text(flow.tvl1, pairs, pairs, platforms=["cpu"])


# The paper's configs, not the synthetic benchmark's (tests/integration/test_examples.py runs its streams).
PAPER_CONFIGS = sorted(p for p in EXPERIMENTS.glob("*.py") if p.stem != "synthetic_four_stream")
# UCF101's classes; the class count changes only the classifier's width, not what is lowered.
NUM_CLASSES = 101
# Updates per epoch of the learning-rate schedule: a constant of the program, any value lowers the same.
UPDATES_PER_EPOCH = 100


def network_arguments(config) -> tuple:
  """What makes two points of a sweep the same network: `builders.model`'s arguments (datasets, splits,
  learning rates and the input's windows do not)."""
  return tuple(sorted(config.model.items())) + (("in_channels", CHANNELS[config.input.modality]),)


def paper_networks() -> dict[str, object]:
  """Every distinct network the sweeps of the paper's configs train (`get_hyper`, as `arp-jax sweep`
  expands it): a readable id -> the config of one point that trains it, the one with the longest windows
  (the most temporal pooling in the program). A config or depth added to experiments/ is covered here."""
  found = {}
  for path in PAPER_CONFIGS:
    module = sweep.load_config_file(path)
    for point in sweep.points(module):
      config = sweep.point_config(module, None, point)
      key = network_arguments(config)
      if key not in found or builders.window_length(config.input) > builders.window_length(found[key].input):
        found[key] = config
  return {f"{c.model.backbone}-{c.model.pool_at}-{c.model.pooling}-merge_{c.model.merge}-"
          f"{c.input.modality}": c for c in found.values()}


PAPER_NETWORKS = paper_networks()


def exported_train_step(config, platforms) -> str:
  """The MLIR module of `arp_jax.train`'s step for `config`, exported for `platforms` from shapes alone.

  The network, its initial state and the optimiser are built by `arp_jax.builders` as a run builds them
  (without pretrained weights), the step by `train_step.make_train_step` on a one-device mesh; the batch
  is one video of the config's training windows [1, S, tau, size, size, C]. The spatial side is the
  config's own: it changes neither the program's size nor the time to trace and lower it.
  """
  c = config.input
  network = builders.model(config.model, NUM_CLASSES, CHANNELS[c.modality])
  variables = jax.eval_shape(lambda: builders.initial_variables(config, network, use_pretrained=False))
  tx, _ = builders.optimizer(config.optim, UPDATES_PER_EPOCH, variables["params"])
  state = jax.eval_shape(lambda v: train_step.create_state(network, tx, v), variables)
  frames = (1, c.train_windows, builders.window_length(c), c.size, c.size, CHANNELS[c.modality])
  batch = {"frames": jax.ShapeDtypeStruct(frames, jnp.float32),
           "windows": jax.ShapeDtypeStruct((1,), jnp.int32),
           "label": jax.ShapeDtypeStruct((1,), jnp.int32)}
  key = jax.eval_shape(lambda: jax.random.key(0))
  step = train_step.make_train_step(network, train_step.data_mesh(jax.devices()[:1]))
  exported = jax.export.export(step, platforms=platforms)(state, batch, key)
  assert tuple(exported.platforms) == tuple(platforms)
  return exported.mlir_module()


def test_the_exported_networks_are_every_backbone_depth_and_pooling_of_the_tables():
  networks = {(c.model.backbone, c.model.pool_at, c.model.pooling, c.model.merge, c.input.modality)
              for c in PAPER_NETWORKS.values()}
  caffenet = {("caffenet", depth, pooling, "max", "rgb") for depth in ("conv1", "conv2", "conv3", "conv4")
              for pooling in ("arp", "pp1", "pp2")}  # Tables 4 and 5
  merges = {("caffenet", "conv1", "arp", merge, "rgb") for merge in ("mean", "arp")}  # temporal_pooling.py
  resnext = {(backbone, "stem", "arp", "max", modality)  # Tables 6-9: SI and DI, OF and DOF
             for backbone in ("resnext50_32x4d", "resnext101_32x4d") for modality in ("rgb", "flow")}
  assert networks == caffenet | merges | resnext


@pytest.mark.parametrize("name", sorted(PAPER_NETWORKS))
def test_paper_train_step_exports_for_accelerators(name):
  text = exported_train_step(PAPER_NETWORKS[name], ACCELERATORS)
  assert_plain(text)
  assert "bf16" not in text  # the configs train in float32 (config.model.dtype)


@pytest.mark.parametrize("depth", ["res2", "res3", "res4", "res5"])
def test_resnext_dynamic_map_train_steps_export_for_accelerators(depth):
  # No table pools ResNeXt deeper than its input, but the depth sweeps users run do (and
  # benchmarks/device_check.py measures res3): Table 8's DI network with ARP before each stage.
  config = PAPER_NETWORKS["resnext50_32x4d-stem-arp-merge_max-rgb"].copy_and_resolve_references()
  config.model.pool_at = depth
  assert_plain(exported_train_step(config, ACCELERATORS))


def test_bfloat16_dynamic_image_train_step_exports_for_accelerators():
  # The dynamic image network of ResNeXt-50 (Table 8's DI) as an accelerator would train it in bfloat16.
  config = PAPER_NETWORKS["resnext50_32x4d-stem-arp-merge_max-rgb"].copy_and_resolve_references()
  config.model.dtype = "bfloat16"
  text = exported_train_step(config, ACCELERATORS)
  assert_plain(text)
  assert "bf16" in text


def test_train_step_exports_its_xla_cpu_formulation_for_the_cpu():
  # The control of the tests above: on XLA:CPU ResNeXt's convolutions take their CPU formulation. The
  # tiny ResNeXt has the same blocks and convolutions, and traces several times faster than ResNeXt-50.
  config = PAPER_NETWORKS["resnext50_32x4d-stem-arp-merge_max-rgb"].copy_and_resolve_references()
  config.model.backbone = "resnext_tiny"
  assert xla_cpu.SCOPE in exported_train_step(config, ["cpu"])
