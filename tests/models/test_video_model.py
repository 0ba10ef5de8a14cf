"""DynamicImageNetwork and TemporalPooling: every insertion depth x pooling x backbone, the equivalences
that define them (ARP at the input = backbone(pool(frames)), whole-clip window, tau = 1), parametric
pooling gradients and learning-rate labels."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import arp_jax
from arp_jax.models import ARCHS, DynamicImageNetwork, ResNeXt, param_labels
from arp_jax.models import video
from arp_jax.pooling import parametric

POOLINGS = video.POOLINGS
TINY = functools.partial(ResNeXt, stage_sizes=(1, 1, 1, 1), cardinality=2, base_width=4)
KEY = jax.random.key(0, impl="rbg")  # rbg: random init compiles in a fraction of threefry's time


def backbone_boundaries(name):
  return (ARCHS[name].BOUNDARIES if hasattr(ARCHS[name], "BOUNDARIES") else
          ARCHS[name].func.BOUNDARIES)


# ResNeXt-101 is ResNeXt-50's code with longer stages: every depth, one pooling without and one with
# parameters (tracing all six at every depth of it took over a minute).
@pytest.mark.parametrize("backbone, size, poolings", [("caffenet", 224, POOLINGS), ("resnext50_32x4d", 64, POOLINGS),
                                                      ("resnext101_32x4d", 64, ("arp", "pp2"))],
                         ids=("caffenet", "resnext50_32x4d", "resnext101_32x4d"))
def test_shapes_for_every_depth_and_pooling(backbone, size, poolings):
  boundaries = backbone_boundaries(backbone)
  clips = jax.ShapeDtypeStruct((2, 13, size, size, 3), jnp.float32)
  for pool_at in boundaries[:boundaries.index("merge")]:
    for pooling in poolings:
      model = DynamicImageNetwork(backbone=backbone, num_classes=7, window=10, stride=6, pool_at=pool_at,
                                  pooling=pooling)

      def forward(c):
        variables = model.init(KEY, c)
        return model.apply(variables, c), variables

      logits, variables = jax.eval_shape(forward, clips)
      assert logits.shape == (2, 7) and logits.dtype == jnp.float32, (pool_at, pooling)
      has_pp = "temporal_pooling" in variables["params"]
      assert has_pp == (pooling in parametric.KINDS), (pool_at, pooling)


def init(model, clips):
  return model.init(KEY, clips)


@pytest.fixture(scope="module")
def clips():
  return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 13, 32, 32, 3)), jnp.float32)


def test_arp_at_the_input_is_the_backbone_on_the_dynamic_image(clips):
  model = DynamicImageNetwork(backbone=TINY, num_classes=5, window=None, pool_at="stem", pooling="arp")
  variables = init(model, clips)
  backbone = TINY(num_classes=5, dropout_rate=0.5)
  expected = backbone.apply({k: v["backbone"] for k, v in variables.items()},
                            0.1 * arp_jax.pool(clips, axis=1))  # ResNeXt: ARP scaled by 0.1
  np.testing.assert_allclose(model.apply(variables, clips), expected, rtol=1e-5, atol=1e-5)


def test_caffenet_dynamic_image_is_l2_normalised_to_6000_and_clipped():
  di = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 8, 8, 3)), jnp.float32)
  scaled = video.scale_pooled(di, "l2_6000_clip_128")
  direction = di * 6000 / jnp.linalg.norm(di.reshape(2, 3, -1), axis=-1)[..., None, None, None]
  np.testing.assert_allclose(scaled, np.clip(direction, -128, 128), rtol=1e-5)
  assert video.reference_scaling("caffenet", 0, "arp") == "l2_6000_clip_128"
  assert video.reference_scaling("caffenet", 2, "arp") == "x0.1_relu"
  assert video.reference_scaling("resnext50_32x4d", 3, "arp_linear") == "x0.1"
  assert video.reference_scaling("caffenet", 0, "mean") == "none"
  assert video.reference_scaling("resnext50_32x4d", 0, "arp", window=1) == "none"


def test_whole_clip_window_equals_the_single_dynamic_image_path(clips):
  T = clips.shape[1]
  whole = DynamicImageNetwork(backbone=TINY, num_classes=5, window=None, pool_at="res3")
  one_window = DynamicImageNetwork(backbone=TINY, num_classes=5, window=T, stride=T, pool_at="res3")
  variables = init(whole, clips)
  np.testing.assert_allclose(whole.apply(variables, clips), one_window.apply(variables, clips),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("merge", video.MERGES)
def test_window_of_one_frame_classifies_frames_and_merges_them(clips, merge):
  model = DynamicImageNetwork(backbone=TINY, num_classes=5, window=1, stride=1, pool_at="res2",
                              merge=merge)
  variables = init(model, clips)
  backbone = TINY(num_classes=5, dropout_rate=0.5)
  inner = {k: v["backbone"] for k, v in variables.items()}
  B, T = clips.shape[:2]
  per_frame = backbone.apply(inner, clips.reshape((B * T,) + clips.shape[2:]), stop="merge")
  merged = arp_jax.pool(per_frame.reshape((B, T) + per_frame.shape[1:]), merge, axis=1)
  expected = backbone.apply(inner, merged, start="merge")
  np.testing.assert_allclose(model.apply(variables, clips), expected, rtol=1e-5, atol=1e-5)


def test_caffenet_pool_at_relu1_pools_before_the_pool_and_lrn_and_differs_from_conv2():
  """The two readings of Table 5's depth conv2 (`paper_configs.PLACEMENTS`): "conv2" pools conv2's input,
  "relu1" conv1's ReLU output, before Caffe's max-pool and LRN (which do not commute with pooling)."""
  clips = jnp.asarray(np.random.default_rng(3).uniform(-100, 100, (1, 3, 67, 67, 3)), jnp.float32)
  outputs = {}
  for pool_at in ("relu1", "conv2"):
    model = DynamicImageNetwork(backbone="caffenet", num_classes=5, window=None, pool_at=pool_at,
                                pooling="mean")
    variables = init(model, clips)
    inner = {k: v["backbone"] for k, v in variables.items()}
    backbone = ARCHS["caffenet"](num_classes=5)
    maps = backbone.apply(inner, clips[0], stop=pool_at)  # [T, h, w, c], a frame each
    assert maps.shape[1:3] == {"relu1": (15, 15), "conv2": (7, 7)}[pool_at]
    expected = backbone.apply(inner, maps.mean(0, keepdims=True), start=pool_at)
    outputs[pool_at] = model.apply(variables, clips)
    np.testing.assert_allclose(outputs[pool_at], expected, rtol=1e-4,
                               atol=1e-4 * float(np.abs(expected).max()))
  assert not np.allclose(outputs["relu1"], outputs["conv2"], rtol=1e-3, atol=0)


def test_windows_of_padded_clips_equal_each_clip_alone(clips):
  model = DynamicImageNetwork(backbone=TINY, num_classes=5, window=4, stride=3, pool_at="res3",
                              merge="mean")
  variables = init(model, clips)
  padded = clips.at[1, 7:].set(jnp.nan)  # clip 1 has 7 frames; its padding must never be read
  batched = model.apply(variables, padded, lengths=jnp.array([13, 7]))
  alone = model.apply(variables, clips[1:, :7])
  np.testing.assert_allclose(batched[1], alone[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(batched[0], model.apply(variables, clips[:1])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", ["pp1", "pp2"])
def test_gradients_reach_parametric_pooling(clips, pooling):
  model = DynamicImageNetwork(backbone=TINY, num_classes=5, window=10, stride=6, pool_at="res2",
                              pooling=pooling)
  variables = init(model, clips)
  labels = jnp.array([1, 3])

  def loss(params):
    logits, _ = model.apply({**variables, "params": params}, clips, train=True,
                            mutable=["batch_stats"], rngs={"dropout": KEY})
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  grads = jax.jit(jax.grad(loss))(variables["params"])
  pp_grads = jax.tree.leaves(grads["temporal_pooling"]["layers"])
  assert pp_grads and all(np.isfinite(g).all() for g in pp_grads)
  assert all(np.abs(g).max() > 0 for g in pp_grads)

  # The reference trains the pooling parameters with a 10x smaller learning rate.
  tx = optax.multi_transform({"temporal_pooling": optax.sgd(0.1), "backbone": optax.sgd(1.0)},
                             param_labels(variables["params"]))
  updates, _ = tx.update(grads, tx.init(variables["params"]), variables["params"])
  np.testing.assert_allclose(updates["temporal_pooling"]["layers"]["layer0"]["kernel"],
                             -0.1 * grads["temporal_pooling"]["layers"]["layer0"]["kernel"], rtol=1e-6)
  np.testing.assert_allclose(updates["backbone"]["fc"]["kernel"], -grads["backbone"]["fc"]["kernel"],
                             rtol=1e-6)


def test_parametric_pooling_reference_initialisation_and_formula():
  constant = parametric.init_parametric_pooling(KEY, "pp1", 10)
  np.testing.assert_array_equal(constant["layer0"]["kernel"], np.full((10, 1), 0.1, np.float32))
  np.testing.assert_array_equal(constant["layer0"]["bias"], [0.0])
  normal = parametric.init_parametric_pooling(KEY, "pp2", 10, init="normal")
  assert normal["layer0"]["kernel"].shape == (10, 10) and normal["layer1"]["kernel"].shape == (10, 1)
  assert 0.05 < float(jnp.std(normal["layer0"]["kernel"])) < 0.15
  x = np.random.default_rng(2).normal(size=(3, 10, 4)).astype(np.float32)  # time at axis 1
  w1, b1 = np.asarray(normal["layer0"]["kernel"]), np.asarray(normal["layer0"]["bias"])
  w2, b2 = np.asarray(normal["layer1"]["kernel"]), np.asarray(normal["layer1"]["bias"])
  hidden = np.maximum(np.einsum("btc,tk->bkc", x, w1) + b1[None, :, None], 0)
  expected = np.maximum(np.einsum("bkc,k->bc", hidden, w2[:, 0]) + b2, 0)
  np.testing.assert_allclose(parametric.parametric_pooling(x, normal, axis=1), expected, rtol=1e-5,
                             atol=1e-6)
  pp1 = parametric.parametric_pooling(x, constant, axis=1)
  np.testing.assert_allclose(pp1, np.maximum(0.1 * x.sum(1), 0), rtol=1e-5, atol=1e-6)


def test_flow_stream_and_bfloat16(clips):
  flow = DynamicImageNetwork(backbone=TINY, num_classes=5, in_channels=2, pool_at="stem",
                             dropout_rate=0.8)
  flow_clips = clips[..., :2]
  variables = init(flow, flow_clips)
  assert variables["params"]["backbone"]["conv1"]["kernel"].shape[2] == 2
  logits = flow.apply(variables, flow_clips)
  half = DynamicImageNetwork(backbone=TINY, num_classes=5, in_channels=2, pool_at="stem",
                             dtype=jnp.bfloat16).apply(variables, flow_clips)
  assert half.dtype == jnp.float32
  np.testing.assert_allclose(half, logits, atol=0.05 * float(jnp.abs(logits).max()) + 1e-3)


@pytest.mark.parametrize("pooling", POOLINGS + ("rp",))
def test_pooling_of_bfloat16_maps_accumulates_in_float32(pooling):
  # A bfloat16 backbone's maps, pooled at a feature depth (exact rank pooling through `arp_jax.pool`): the
  # float32 pooling of the same values. A sum kept in bfloat16 would be off by about 2^-9 of its terms.
  maps = jnp.asarray(np.random.default_rng(0).normal(size=(2, 10, 4, 4, 8)), jnp.bfloat16)
  if pooling == "rp":
    pool = lambda x: arp_jax.pool(x, "rp", axis=1)
  else:
    module = video.TemporalPooling(pooling=pooling, window=10, stride=10)
    variables = module.init(KEY, maps.astype(jnp.float32))
    pool = lambda x: module.apply(variables, x)[0]
  pooled, exact = pool(maps), pool(maps.astype(jnp.float32))
  assert pooled.dtype == jnp.float32
  np.testing.assert_allclose(pooled, exact, rtol=1e-6, atol=1e-6 * float(jnp.abs(exact).max()))


@pytest.mark.parametrize("kwargs, message", [
    (dict(pool_at="conv3"), "not an insertion depth"),
    (dict(pool_at="merge"), "not an insertion depth"),
    (dict(pooling="median"), "unknown pooling"),
    (dict(merge="sum"), "unknown merge"),
    (dict(backbone="vgg16"), "unknown backbone"),
])
def test_bad_configuration_is_named(clips, kwargs, message):
  with pytest.raises(ValueError, match=message):  # when the network is built, before any trace
    DynamicImageNetwork(**{"backbone": TINY, "num_classes": 5, **kwargs})


def test_clips_of_the_wrong_rank(clips):
  with pytest.raises(ValueError, match=r"expected \[B, T, H, W, C\]"):
    init(DynamicImageNetwork(backbone=TINY, num_classes=5), clips[0])


@pytest.mark.parametrize("pooling", ["arp", "pp1"])
def test_windows_input_equals_the_clip_cut_into_the_same_windows(clips, pooling):
  """The pipelines' layout [B, S, tau, ...] with `num_windows` is the clip of those windows back to back,
  pooled with stride tau from frame 0, with `lengths` the real windows' frames."""
  clip_model = DynamicImageNetwork(backbone=TINY, num_classes=5, window=4, stride=4, pool_at="res2",
                                   pooling=pooling)
  windows_model = DynamicImageNetwork(backbone=TINY, num_classes=5, pool_at="res2", pooling=pooling)
  frames = clips[:, :12]  # 3 windows of 4
  variables = init(clip_model, frames)
  counts = jnp.array([3, 2])  # the second video's third window is padding
  windows = frames.reshape((2, 3, 4) + frames.shape[2:])
  got = windows_model.apply(variables, windows, num_windows=counts)
  want = clip_model.apply(variables, frames, lengths=4 * counts)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
