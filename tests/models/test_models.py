"""Backbones: parameter counts, shapes at every boundary, running in pieces, train mode, mixed precision,
and Caffe's pooling and LRN against their definitions (and torch's ceil-mode pooling).

Models are small here (a 1-1-1-2 ResNeXt, CaffeNet on 99x99 inputs) and variables are random NumPy
draws into the tree from `jax.eval_shape`: on CPU, compiling a full random init takes tens of seconds.
Parity with PyTorch on the full ResNeXt-50 and CaffeNet is in test_weights.py.
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from arp_jax import models
from arp_jax.models import layers, resnext
from arp_jax.xla_cpu import conv as xla_cpu_conv


def count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def random_variables(model, shape, seed=0):
  """Variables of `model` for inputs of `shape`: He-scaled random kernels, random biases and BatchNorm
  scales, shifts and statistics (positive variances)."""
  abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":
      value = rng.standard_normal(leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
    elif name in ("scale", "var"):
      value = 0.5 + rng.random(leaf.shape)
    else:  # bias, mean
      value = 0.2 * rng.standard_normal(leaf.shape)
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, abstract)


TINY_RESNEXT = functools.partial(models.ResNeXt, stage_sizes=(1, 1, 1, 2), cardinality=4, base_width=4,
                                 num_classes=10)
# CaffeNet on 99x99: conv1 23x23, pool 11x11, conv2 11x11, pool 5x5, conv3-5 5x5, pool5 2x2.
SMALL_CAFFE = (2, 99, 99, 3)


@functools.partial(jax.jit, static_argnames=("model", "train", "start", "stop"))
def run(model, variables, x, train=False, start=None, stop=None):
  return model.apply(variables, x, train=train, start=start, stop=stop)


def test_parameter_counts():
  caffenet = jax.eval_shape(models.CaffeNet().init, jax.random.key(0), jnp.zeros((1, 227, 227, 3)))
  assert count(caffenet["params"]) == 60_965_224
  assert set(caffenet) == {"params"}
  for arch, expected in (("resnext50_32x4d", 25_028_904), ("resnext101_32x4d", 44_177_704)):
    variables = jax.eval_shape(models.ARCHS[arch]().init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    assert count(variables["params"]) == expected, arch
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))


def test_boundaries_and_shapes_full_size():
  assert models.CaffeNet.BOUNDARIES == ("conv1", "relu1", "conv2", "relu2", "conv3", "conv4", "conv5",
                                        "merge", "logits")
  assert models.ResNeXt.BOUNDARIES == ("stem", "res2", "res3", "res4", "res5", "merge", "logits")
  expected = [
      # CaffeNet at Caffe's 227 and the paper's 224: they differ only at relu1 (55 against 54 columns).
      (models.CaffeNet(), (227, 3), [(227, 227, 3), (55, 55, 96), (27, 27, 96), (27, 27, 256),
                                     (13, 13, 256), (13, 13, 384), (13, 13, 384), (13, 13, 256), (1000,)]),
      (models.CaffeNet(), (224, 3), [(224, 224, 3), (54, 54, 96), (27, 27, 96), (27, 27, 256),
                                     (13, 13, 256), (13, 13, 384), (13, 13, 384), (13, 13, 256), (1000,)]),
      (models.ResNeXt50_32x4d(), (224, 3), [(224, 224, 3), (56, 56, 64), (56, 56, 256), (28, 28, 512),
                                            (14, 14, 1024), (7, 7, 2048), (1000,)]),
  ]
  for model, (size, channels), shapes in expected:
    x = jnp.zeros((2, size, size, channels))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    for boundary, shape in zip(model.BOUNDARIES, shapes):
      out = jax.eval_shape(functools.partial(model.apply, stop=boundary), variables, x)
      assert out.shape == (2,) + shape, (type(model).__name__, boundary)
    assert out.dtype == jnp.float32
  # CaffeNet at 224x224 reaches the same 6x6 pool5 map, so the same fc6.
  caffenet = models.CaffeNet()
  variables = jax.eval_shape(caffenet.init, jax.random.key(0), jnp.zeros((1, 227, 227, 3)))
  assert jax.eval_shape(caffenet.apply, variables, jnp.zeros((1, 224, 224, 3))).shape == (1, 1000)
  assert variables["params"]["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)


def test_caffenet_relu_boundaries_are_before_the_pool_and_lrn():
  """"relu1"/"relu2" (PP "after the ReLU layer", §5.7, read literally) against "conv2"/"conv3" (the input
  of the convolution): between them sit exactly Caffe's max-pool and LRN."""
  model = models.CaffeNet(num_classes=7)
  variables = random_variables(model, SMALL_CAFFE)
  x = jax.random.normal(jax.random.key(1), SMALL_CAFFE) * 50
  for relu, conv in (("relu1", "conv2"), ("relu2", "conv3")):
    after_relu = run(model, variables, x, stop=relu)
    assert (np.asarray(after_relu) >= 0).all() and (np.asarray(after_relu) == 0).any(), relu
    expected = layers.local_response_norm(layers.caffe_max_pool(after_relu, 3, 2))
    np.testing.assert_allclose(run(model, variables, after_relu, start=relu, stop=conv), expected,
                               rtol=1e-6, atol=1e-6 * float(np.abs(expected).max()))
  first = variables["params"]["conv1"]
  conv1 = lax.conv_general_dilated(x, first["kernel"], (4, 4), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + first["bias"]
  np.testing.assert_allclose(run(model, variables, x, stop="relu1"), jnp.maximum(conv1, 0), rtol=1e-5,
                             atol=1e-5 * float(np.abs(conv1).max()))


@pytest.mark.parametrize("model,shape", [(TINY_RESNEXT(), (2, 32, 32, 3)), (models.CaffeNet(num_classes=7),
                                                                          SMALL_CAFFE)])
def test_pieces_chain_to_the_full_forward(model, shape):
  variables = random_variables(model, shape)
  x = jax.random.normal(jax.random.key(1), shape) * 50
  bounds = model.BOUNDARIES
  full = run(model, variables, x)
  chained = x
  for start, stop in zip(bounds[:-1], bounds[1:]):
    chained = run(model, variables, chained, start=start, stop=stop)
    if stop == "merge":
      merge = run(model, variables, x, stop="merge")
      np.testing.assert_allclose(chained, merge, rtol=0, atol=1e-6 * np.abs(chained).max())
      # "merge" is before the last ReLU: it has negative values, the maps after a ReLU would not.
      assert (np.asarray(chained) < 0).any()
  assert chained.shape == full.shape
  np.testing.assert_allclose(chained, full, rtol=0, atol=1e-6 * np.abs(full).max())
  # Split in two at each boundary, as a video model does around its temporal pooling.
  for split in bounds[1:-1]:
    rest = run(model, variables, run(model, variables, x, stop=split), start=split)
    np.testing.assert_allclose(rest, full, rtol=0, atol=1e-6 * np.abs(full).max(), err_msg=split)
  # One piece alone has its own part of the same parameter tree.
  part = jax.eval_shape(functools.partial(model.init, start="merge"), jax.random.key(0), merge)
  names = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"])}
  assert {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(part["params"])} < names


def test_resnext_train_mode_updates_batch_stats_and_uses_dropout():
  model = TINY_RESNEXT(dropout_rate=0.5)
  variables = random_variables(model, (4, 32, 32, 3))
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))

  @jax.jit
  def train_step(variables, x, key):
    return model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": key})

  logits, updates = train_step(variables, x, jax.random.key(2))
  assert logits.shape == (4, 10) and logits.dtype == jnp.float32
  old, new = variables["batch_stats"]["bn1"], updates["batch_stats"]["bn1"]
  assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(variables["batch_stats"])
  assert not np.allclose(old["mean"], new["mean"])
  # Flax momentum 0.9 = torch momentum 0.1: new = 0.9 old + 0.1 batch mean of the stem's conv output.
  conv = jax.lax.conv_general_dilated(x, variables["params"]["conv1"]["kernel"], (2, 2), ((3, 3), (3, 3)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(new["mean"], 0.9 * old["mean"] + 0.1 * conv.mean((0, 1, 2)), rtol=1e-4,
                             atol=1e-5)
  other, _ = train_step(variables, x, jax.random.key(3))
  assert not np.allclose(logits, other)  # dropout draws differ
  # Eval mode is deterministic and reads the running statistics.
  np.testing.assert_array_equal(run(model, variables, x), run(model, variables, x))


def test_initialisation():
  # The classifier alone (the piece after "merge"), with "rbg" keys: threefry's random draws take
  # over a second each to compile on CPU.
  for model, width, name in ((TINY_RESNEXT(), 2048, "fc"), (models.CaffeNet(num_classes=10), 256, "fc8")):
    params = model.init(jax.random.key(0, impl="rbg"), jnp.ones((1, 6, 6, width)), start="merge")["params"]
    assert abs(float(jnp.std(params[name]["kernel"])) - 0.01) < 1e-3
    np.testing.assert_array_equal(params[name]["bias"], 0)
  abstract = jax.eval_shape(TINY_RESNEXT().init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert abstract["params"]["fc"]["kernel"].shape == (2048, 10)
  # Grouped 3x3: kernel [3, 3, width / cardinality, width] with width = 64 * 4 / 64 * 4 = 16.
  assert abstract["params"]["layer1_0"]["conv2"]["kernel"].shape == (3, 3, 4, 16)
  assert set(abstract["batch_stats"]["layer1_0"]["bn2"]) == {"mean", "var"}


@pytest.mark.parametrize("model,shape", [(TINY_RESNEXT, (2, 32, 32, 3)),
                                         (functools.partial(models.CaffeNet, num_classes=7), SMALL_CAFFE)])
def test_bfloat16_compute(model, shape):
  f32, bf16 = model(), model(dtype=jnp.bfloat16)
  abstract = jax.eval_shape(bf16.init, jax.random.key(0), jnp.zeros(shape))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))  # params and statistics
  variables = random_variables(f32, shape)
  x = jax.random.normal(jax.random.key(1), shape) * 50
  low, high = run(bf16, variables, x), run(f32, variables, x)
  assert low.dtype == jnp.float32
  assert run(bf16, variables, x, stop="merge").dtype == jnp.bfloat16
  error = np.abs(np.asarray(low) - np.asarray(high)).max() / np.abs(np.asarray(high)).max()
  assert error < 0.05, error


def test_boundary_errors():
  model = TINY_RESNEXT()
  variables = random_variables(model, (1, 32, 32, 3))
  x = jnp.zeros((1, 32, 32, 3))
  with pytest.raises(ValueError, match=r"unknown stop boundary 'res6'.*'stem', 'res2'"):
    model.apply(variables, x, stop="res6")
  with pytest.raises(ValueError, match="unknown start boundary 'conv3'"):
    model.apply(variables, x, start="conv3")
  with pytest.raises(ValueError, match="start='res4' comes after stop='res2'"):
    model.apply(variables, x, start="res4", stop="res2")
  with pytest.raises(ValueError, match="has 2 channels.*in_channels=3"):
    model.apply(variables, jnp.zeros((1, 32, 32, 2)))
  with pytest.raises(ValueError, match=r"shape \(32, 32, 3\); expected \[B, H, W, C\]"):
    model.apply(variables, jnp.zeros((32, 32, 3)))
  with pytest.raises(TypeError, match="dtype bool"):
    model.apply(variables, jnp.zeros((1, 32, 32, 3), bool))
  with pytest.raises(ValueError, match="expected 4 stages"):
    models.ResNeXt(stage_sizes=(3, 4, 6)).init(jax.random.key(0), x)
  # start == stop runs nothing.
  np.testing.assert_array_equal(model.apply(variables, x, start="res3", stop="res3"), x)


def test_flow_input_channels():
  model = TINY_RESNEXT(in_channels=2)
  variables = random_variables(model, (1, 32, 32, 2))
  assert variables["params"]["conv1"]["kernel"].shape == (7, 7, 2, 64)
  assert run(model, variables, jnp.ones((1, 32, 32, 2))).shape == (1, 10)
  caffenet = jax.eval_shape(models.CaffeNet(in_channels=2).init, jax.random.key(0),
                            jnp.zeros((1, 227, 227, 2)))
  assert caffenet["params"]["conv1"]["kernel"].shape == (11, 11, 2, 96)


@pytest.mark.parametrize("size,expected", [(55, 27), (27, 13), (13, 6), (14, 7), (3, 1)])
def test_caffe_max_pool_rounds_up_like_torch_ceil_mode(size, expected):
  x = np.random.default_rng(0).standard_normal((2, size, size + 1, 3)).astype(np.float32)
  got = np.asarray(layers.caffe_max_pool(jnp.asarray(x), 3, 2))
  assert got.shape[1] == expected
  want = torch.nn.MaxPool2d(3, 2, ceil_mode=True)(torch.from_numpy(x).permute(0, 3, 1, 2))
  np.testing.assert_array_equal(got, want.permute(0, 2, 3, 1).numpy())


def test_local_response_norm_is_caffes():
  rng = np.random.default_rng(0)
  x = (rng.standard_normal((2, 4, 5, 11)) * 100).astype(np.float32)  # large, so the norm matters
  # Caffe's definition: y_c = x_c / (k + alpha / n * sum over the n channels centred on c of x^2)^beta.
  padded = np.pad(x.astype(np.float64) ** 2, [(0, 0)] * 3 + [(2, 2)])
  window = sum(padded[..., i:i + 11] for i in range(5))
  want = x / (1.0 + 1e-4 / 5 * window) ** 0.75
  assert np.abs(want / x - 1).max() > 0.1
  got = np.asarray(layers.local_response_norm(jnp.asarray(x)))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # torch's LocalResponseNorm also divides alpha by the size: the same layer.
  lrn = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
  torch_out = lrn(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(torch_out, want, rtol=1e-5)
  assert layers.local_response_norm(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16


@pytest.mark.parametrize("stride", [1, 2])
def test_grouped_conv_gradient_equals_xlas(stride):
  # On the CPU the backward pass of ResNeXt's grouped 3x3 convolution is computed differently from the
  # forward (xla_cpu.conv.grouped_conv3x3): both must be the derivative of lax.conv_general_dilated.
  rng = np.random.default_rng(stride)
  x = jnp.asarray(rng.normal(size=(2, 9, 9, 16)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 4, 24)), jnp.float32)
  reference = lambda x, k: lax.conv_general_dilated(
      x, k, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=4)
  cotangent = jnp.asarray(rng.normal(size=reference(x, kernel).shape), jnp.float32)
  ours = lambda x, k: xla_cpu_conv.grouped_conv3x3(x, k, stride, 4)
  np.testing.assert_array_equal(ours(x, kernel), reference(x, kernel))
  for got, want in zip(jax.grad(lambda x, k: jnp.sum(ours(x, k) * cotangent), (0, 1))(x, kernel),
                       jax.grad(lambda x, k: jnp.sum(reference(x, k) * cotangent), (0, 1))(x, kernel)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_conv_equals_xlas(stride):
  rng = np.random.default_rng(10 + stride)
  x = jnp.asarray(rng.normal(size=(2, 7, 7, 16)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(1, 1, 16, 24)), jnp.float32)
  reference = lambda x, k: lax.conv_general_dilated(x, k, (stride, stride), ((0, 0), (0, 0)),
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(xla_cpu_conv.pointwise_conv(x, kernel, stride), reference(x, kernel), rtol=1e-5,
                             atol=1e-5)
  cotangent = jnp.asarray(rng.normal(size=reference(x, kernel).shape), jnp.float32)
  for got, want in zip(
      jax.grad(lambda x, k: jnp.sum(xla_cpu_conv.pointwise_conv(x, k, stride) * cotangent), (0, 1))(x, kernel),
      jax.grad(lambda x, k: jnp.sum(reference(x, k) * cotangent), (0, 1))(x, kernel)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("groups, kernel_size, padding", [(4, 3, 1), (1, 1, 0), (1, 3, 1)])
def test_platform_conv_is_xlas_convolution_on_every_platform(groups, kernel_size, padding):
  # ResNeXt's default convolution: XLA:CPU's formulation here (the CPU), XLA's own elsewhere; the same
  # values and derivatives, at top level and under jit.
  rng = np.random.default_rng(groups + kernel_size)
  x = jnp.asarray(rng.normal(size=(2, 9, 9, 16)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(kernel_size, kernel_size, 16 // groups, 8)), jnp.float32)
  pads = ((padding, padding), (padding, padding))
  settings = dict(dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
  reference = lambda x, k: lax.conv_general_dilated(x, k, (2, 2), pads, **settings)
  ours = lambda x, k: resnext.platform_conv(x, k, (2, 2), pads, **settings)
  for run in (ours, jax.jit(ours)):
    np.testing.assert_allclose(run(x, kernel), reference(x, kernel), rtol=1e-5, atol=1e-4)
  cotangent = jnp.asarray(rng.normal(size=reference(x, kernel).shape), jnp.float32)
  for got, want in zip(jax.jit(jax.grad(lambda x, k: jnp.sum(ours(x, k) * cotangent), (0, 1)))(x, kernel),
                       jax.grad(lambda x, k: jnp.sum(reference(x, k) * cotangent), (0, 1))(x, kernel)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


def test_resnext_takes_its_convolution_injected():
  # As flax's ResNet takes `conv`: XLA's plain convolution gives the same network.
  model = models.ResNeXt(stage_sizes=(1, 1, 1, 1), cardinality=4, base_width=16, base_planes=16,
                         stem_kernel=3, stem_stride=1, stem_pool=False, num_classes=5)
  plain = model.clone(conv_general_dilated=lax.conv_general_dilated)
  variables = random_variables(model, (2, 32, 32, 3))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
  np.testing.assert_allclose(model.apply(variables, x), plain.apply(variables, x), rtol=1e-4, atol=1e-4)
