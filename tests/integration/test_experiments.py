"""Every config file of experiments/ runs in `runlocal` mode (a few steps on the miniature real-clip or
tiny synthetic dataset), so that none of them rots; and the paper's stream configs carry the reference's
settings."""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from arp_jax import builders, config as config_lib, evaluate, paper_configs, sweep, train
from arp_jax.input import CHANNELS
from arp_jax.models import ARCHS

from paths import REPO as ROOT
CONFIG_FILES = sorted(p for p in (ROOT / "experiments").glob("*.py"))
# synthetic_four_stream.py is not run here: tests/integration/test_examples.py runs every one of its
# streams through `arp-jax four-stream --runlocal`.
RUNLOCAL_FILES = [p for p in CONFIG_FILES if p.stem != "synthetic_four_stream"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
  """One folder for the datasets every config reads (the miniature and the synthetic ones)."""
  return tmp_path_factory.mktemp("experiments")


def prepare(config, data_dir: Path) -> None:
  """What `arp-jax synthetic-data` or `arp-jax mini-data` does for a runlocal config (idempotent)."""
  from data_prep import mini, synthetic  # pylint: disable=import-outside-toplevel
  tool, dataset, dynamic = builders.preparation(config)
  if tool == "synthetic-data":
    synthetic.build(data_dir, dataset)
  else:
    assert tool == "mini-data", "runlocal configs read the miniature datasets"
    mini.build_mini(dataset, data_dir, (dynamic,) if dynamic else ())


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNLOCAL_FILES, ids=lambda p: p.stem)
def test_every_config_runs_locally(path, shared):
  module = sweep.load_config_file(path)
  point = sweep.points(module)[0]
  config = sweep.point_config(module, "runlocal", point)
  assert config.max_steps and config.max_steps <= 4, "runlocal must shrink the run"
  name = config.dataset.name.split("/")[0]
  config.dataset.data_dir = os.fspath(shared / ("mini_data" if config.dataset.mini else "data"))
  prepare(config, Path(config.dataset.data_dir))
  workdir = shared / path.stem
  assert train.train(config, workdir)["step"] == config.max_steps
  report = evaluate.evaluate(config, workdir)
  assert report["num_videos"] >= 1 and 0 <= report["mean_class_accuracy"] <= 1, name


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_point_at_full_scale_builds_its_dataset_and_network(path, tmp_path):
  """What the runlocal run above cannot show for the other points and the full-scale settings: each
  point's config is valid, names a dataset that data_prep builds, and its network initialises and trains
  on its input shapes (traced abstractly, `jax.eval_shape`: no compilation, no data)."""
  module = sweep.load_config_file(path)
  seen = set()
  for point in sweep.points(module):
    config = sweep.point_config(module, None, point)
    config_lib.check_config(config)
    if config.dataset.name.split("/")[0] != config_lib.SYNTHETIC:
      tfds.builder(config.dataset.name, data_dir=os.fspath(tmp_path))  # a registered builder config
    key = (config.model.to_json(), config.input.to_json())
    if key in seen:
      continue
    seen.add(key)
    c = config.input
    network = builders.model(config.model, 101, CHANNELS[c.modality])
    S, tau = c.train_windows, builders.window_length(c)
    windows = jax.ShapeDtypeStruct((2, S, tau, c.size, c.size, CHANNELS[c.modality]), jnp.float32)
    variables = jax.eval_shape(lambda: builders.initial_variables(config, network))  # pylint: disable=cell-var-from-loop
    logits, _ = jax.eval_shape(
        lambda v, x: network.apply(v, x, train=True, num_windows=jnp.array([1, S]),  # pylint: disable=cell-var-from-loop
                                   rngs={"dropout": jax.random.key(0)}, mutable=["batch_stats"]),
        variables, windows)
    assert logits.shape == (2, 101), (point, logits.shape)


def test_stream_configs_follow_the_reference():
  di = paper_configs.stream_config("hmdb51", 2, "di")
  assert di.dataset.name == "hmdb51_frames/split2" and di.model.pool_at == "stem"
  assert (di.input.window, di.input.stride, di.input.train_windows, di.input.test_windows) == (10, 6, 10, 20)
  assert list(di.optim.learning_rates) == [1e-2] * 2 + [1e-3] * 8 and di.model.dropout_rate == 0.5
  assert di.input.batch_size * di.optim.accumulation_steps == 128 and di.input.repeat == 5
  of = paper_configs.stream_config("ucf101", 1, "of")
  assert of.input.modality == "flow" and of.input.window == 1
  assert list(of.optim.learning_rates) == [1e-2, 1e-2, 1e-3, 1e-3] and of.model.dropout_rate == 0.8
  caffenet = paper_configs.stream_config("ucf101", 1, "si", backbone="caffenet")
  assert caffenet.input.size == 224 and list(caffenet.optim.learning_rates) == [1e-3, 1e-3, 1e-4, 1e-4]
  local = paper_configs.stream_config("ucf101", 3, "dof", runlocal=True)
  assert local.dataset.name == "ucf101_frames/split1" and local.dataset.mini
  assert local.model.backbone == "resnext_tiny" and local.max_steps == 2
  for arg, message in (("dataset=kinetics", "dataset is 'kinetics'"), ("split=4", "split is 4")):
    with pytest.raises(ValueError, match=message):
      paper_configs.arguments(arg)
  with pytest.raises(ValueError, match="stream is 'rgb'"):
    paper_configs.stream_config("ucf101", 1, "rgb")


def test_frame_streams_default_to_the_papers_single_frame_windows_merged_by_max():
  """§5.5: "a single frame window corresponds to using RGB frames as input" to the MDI network, whose
  windows a temporal max-pool merges; `frame_streams=softmax_mean` is the other reading."""
  for stream in ("si", "of"):
    config = paper_configs.stream_config("ucf101", 1, stream)
    c = config.input
    assert (c.window, c.stride, c.train_windows, c.test_windows) == (1, 1, 10, 20), stream
    assert config.model.merge == "max" and config.eval.aggregate == "network", stream
    mean = paper_configs.stream_config("ucf101", 1, stream, frame_streams="softmax_mean")
    assert (mean.input.window, mean.input.train_windows, mean.input.test_windows) == (1, 1, 20), stream
    assert mean.eval.aggregate == "mean", stream
  # The option leaves the window streams alone.
  assert (paper_configs.stream_config("ucf101", 1, "di", frame_streams="softmax_mean").to_json()
          == paper_configs.stream_config("ucf101", 1, "di").to_json())
  table8 = sweep.load_config_file(ROOT / "experiments" / "table8_four_stream.py")
  assert table8.get_config("stream=si").eval.aggregate == "network"
  assert table8.get_config("stream=of,frame_streams=softmax_mean").eval.aggregate == "mean"
  table6 = sweep.load_config_file(ROOT / "experiments" / "table6_deeper.py")
  assert table6.get_config("backbone=caffenet,stream=si,frame_streams=softmax_mean").input.train_windows == 1
  assert paper_configs.stream_config("ucf101", 1, "si", runlocal=True).input.train_windows == 2
  assert paper_configs.stream_config("ucf101", 1, "si", runlocal=True,
                                     frame_streams="softmax_mean").input.train_windows == 1
  with pytest.raises(ValueError, match="frame_streams is 'vote'"):
    table8.get_config("stream=si,frame_streams=vote")

  # The network of the default: every frame (a window of one) through the backbone to "merge", max over
  # the real frames (`windows`), then the rest; padding frames are never read.
  config = paper_configs.stream_config("ucf101", 1, "si", runlocal=True)
  network = builders.model(config.model, 5, 3)
  assert (config.input.window, config.input.stride, network.merge, network.pool_at) == (1, 1, "max", "stem")
  frames = jax.random.normal(jax.random.key(0), (2, 3, 32, 32, 3)) * 50
  rng = np.random.default_rng(0)

  def draw(path, leaf):  # random variables: compiling the initialisers would take most of the test
    if path[-1].key == "var":
      return jnp.asarray(1.0 + rng.random(leaf.shape), leaf.dtype)
    scale = np.sqrt(2.0 / np.prod(leaf.shape[:-1])) if path[-1].key == "kernel" else 0.1
    return jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype)

  windows = frames[:, :, None]  # [B, S, tau = 1, H, W, C]
  variables = jax.tree_util.tree_map_with_path(draw, jax.eval_shape(network.init, jax.random.key(1), windows))
  padded = windows.at[1, 2:].set(jnp.nan)
  logits = jax.jit(network.apply)(variables, padded, num_windows=jnp.array([3, 2]))
  backbone = ARCHS[config.model.backbone](num_classes=5)
  inner = {k: v["backbone"] for k, v in variables.items()}
  maps = backbone.apply(inner, frames.reshape((6,) + frames.shape[2:]), stop="merge")  # [6, h, w, c]
  merged = jnp.stack([maps[:3].max(axis=0), maps[3:5].max(axis=0)])  # video 1: its 2 real frames
  np.testing.assert_allclose(logits, backbone.apply(inner, merged, start="merge"), rtol=1e-5, atol=1e-5)


def test_caffenet_input_side_defaults_to_the_papers_224():
  """§5.2: "rescale it to 224 x 224"; `caffenet_size=227` is Caffe's crop."""
  for name, arg in (("table1_summary_images", ""), ("table3_windows", ""), ("temporal_pooling", ""),
                    ("table4_dynamic_maps", ""), ("table6_deeper", "backbone=caffenet,")):
    module = sweep.load_config_file(ROOT / "experiments" / f"{name}.py")
    assert module.get_config(arg).input.size == 224, name
    assert module.get_config(arg + "caffenet_size=227").input.size == 227, name
    assert module.get_config(arg + "caffenet_size=227,runlocal").input.size == 227, name
  assert paper_configs.stream_config("ucf101", 1, "di", caffenet_size=227).input.size == 224  # ResNeXt
  with pytest.raises(ValueError, match="caffenet_size is 256"):
    paper_configs.stream_config("ucf101", 1, "di", "caffenet", caffenet_size=256)


def test_parametric_pooling_placement_defaults_to_the_convolutions_input():
  """§5.6: "convX" is "before the X-th convolutional layer"; `placement=after_relu` reads §5.7's "after
  the ReLU layer following the specified convolutional layer" as before the max-pool and LRN."""
  table5 = sweep.load_config_file(ROOT / "experiments" / "table5_parametric_pooling.py")
  for depth, after_relu in (("conv1", "conv1"), ("conv2", "relu1"), ("conv3", "relu2"), ("conv4", "conv4")):
    assert table5.get_config(f"depth={depth},pooling=pp1").model.pool_at == depth
    assert table5.get_config(f"depth={depth},pooling=pp2,placement=after_relu").model.pool_at == after_relu
  assert paper_configs.insertion_boundary("conv3") == "conv3"
  assert set(paper_configs.PLACEMENTS["after_relu"].values()) < set(ARCHS["caffenet"].BOUNDARIES)
  with pytest.raises(ValueError, match="placement is 'before_relu'"):
    table5.get_config("depth=conv2,placement=before_relu")
  point = sweep.point_config(table5, "placement=after_relu", sweep.points(table5)[0])
  assert point.model.pool_at == paper_configs.insertion_boundary(sweep.points(table5)[0]["depth"],
                                                                 "after_relu")


def test_table8_paper_results():
  module = sweep.load_config_file(ROOT / "experiments" / "table8_four_stream.py")
  assert len(sweep.points(module)) == 12
  assert module.paper_result({"stream": "di"}) == 86.6
  assert module.paper_result({"stream": "dof", "dataset": "hmdb51"}) == 58.9
  assert module.get_config("dataset=hmdb51,split=3,stream=of").dataset.name == "hmdb51_frames/split3"


def test_ablation_configs_sweeps_and_paper_results():
  def load(name):
    return sweep.load_config_file(ROOT / "experiments" / f"{name}.py")

  table3, merge, table4, table5 = (load(n) for n in ("table3_windows", "temporal_pooling",
                                                       "table4_dynamic_maps", "table5_parametric_pooling"))
  grid = [(p["window"], p["stride"]) for p in sweep.points(table3)]
  assert grid == [(5, 3), (10, 3), (10, 6), (20, 6), (20, 12)]
  assert table3.paper_result({"window": 10, "stride": 6}) == 67.4
  assert table3.paper_result({"window": 10, "stride": 6, "dataset": "hmdb51"}) is None
  config = table3.get_config("window=20,stride=12")
  assert (config.input.window, config.input.stride, config.model.backbone) == (20, 12, "caffenet")
  assert merge.paper_result({"merge": "max"}) == 68.3 and merge.get_config("merge=arp").model.merge == "arp"
  assert len(sweep.points(table4)) == 12 and len(sweep.points(table5)) == 24
  assert {p["pooling"] for p in sweep.points(table5)} == {"pp1", "pp2"}
  assert table4.paper_result({"depth": "conv3", "pooling": "arp"}) == 73.3
  assert table5.paper_result({"depth": "conv3", "pooling": "pp1", "dataset": "hmdb51"}) == 38.4
  deep = table5.get_config("depth=conv4,pooling=pp2,dataset=hmdb51")
  assert (deep.model.pool_at, deep.model.pooling) == ("conv4", "pp2")
  assert deep.dataset.name == "hmdb51_frames/split1"
  with pytest.raises(ValueError, match="depth='res3'"):
    table4.get_config("depth=res3")


def test_table1_summary_images():
  table1 = sweep.load_config_file(ROOT / "experiments" / "table1_summary_images.py")
  assert [p["summary"] for p in sweep.points(table1)] == ["mean", "max", "mhi", "rp", "arp"]
  assert table1.paper_result({"summary": "mhi"}) == 46.6 and table1.paper_result({"summary": "arp"}) == 55.2
  assert table1.paper_result({"summary": "rp", "dataset": "hmdb51"}) is None
  config = table1.get_config("dataset=hmdb51,split=3,summary=rp")
  assert config.dataset.name == "hmdb51_dynamic_images/split3_rgb_single_rp"
  assert config.input.offline and config.input.offline_values == "image" and config.model.backbone == "caffenet"
  assert (config.input.train_windows, config.input.test_windows) == (1, 1)
  local = table1.get_config("split=2,summary=mean,runlocal")
  assert local.dataset.name == "ucf101_dynamic_images/split1_rgb_single_mean" and local.dataset.mini
  with pytest.raises(ValueError, match="summary is 'median'"):
    table1.get_config("summary=median")
