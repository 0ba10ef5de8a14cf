"""The training and evaluation commands end to end, on the tiny synthetic dataset (`runlocal` configs).

* a run trains, logs (JSON lines, TensorBoard), checkpoints, and evaluation scores every test video
  exactly once, in a `Scores` file that fusion reads;
* a run killed with SIGKILL and started again ends in the same state as an uninterrupted run (subprocesses:
  a real kill, a real restart);
* bad configs, a workdir of another config and a missing checkpoint are clear errors.
"""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorflow_datasets as tfds

from arp_jax import builders, config as config_lib, evaluate, input as input_lib, run_config, train
from arp_jax.input import memory as input_memory
from arp_jax.metric_writer import read_metrics
from arp_jax.scores import load_scores

from paths import REPO as ROOT
from runs import CONFIG_FILE, stream_config as _config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
  path = tmp_path_factory.mktemp("synthetic")
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  synthetic.build(path, "tiny")
  return path


@pytest.mark.slow
def test_train_then_evaluate_scores_every_test_video_once(data_dir, tmp_path):
  config = _config("dof", data_dir)  # flow input, ARP windows: the longest path through the code
  result = train.train(config, tmp_path)
  assert result["step"] == config.max_steps == 4 and not result["stopped"]
  records = read_metrics(tmp_path)
  assert [r["step"] for r in records] == [2, 4]
  for record in records:
    assert {"loss", "accuracy", "learning_rate", "steps_per_sec", "clips_per_sec", "epoch"} <= set(record)
    assert np.isfinite(record["loss"])
  # 24 training videos in batches of 8: 3 steps per epoch, the first epoch at peak / 5, the next at the
  # peak (DOF: AdamW, 1e-3).
  assert config.optim.optimizer == "adamw"
  assert [r["learning_rate"] for r in records] == pytest.approx([2e-4, 1e-3])
  assert [r["epoch"] for r in records] == pytest.approx([2 / 3, 4 / 3])
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  assert json.loads((tmp_path / train.CONFIG_FILE).read_text())["input"]["modality"] == "flow"

  report = evaluate.evaluate(config, tmp_path)
  scores = load_scores(tmp_path / evaluate.SCORES_FILE)
  source = tfds.data_source("synthetic_motion/tiny", split="test", data_dir=os.fspath(data_dir))
  expected = sorted(bytes(x["name"]).decode() for x in source)
  # 12 test videos in batches of 8: the last batch is padded, and the padding is not scored.
  assert sorted(scores.names) == expected and len(set(scores.names)) == 12
  assert scores.scores.shape == (12, 12) and scores.classes[0] == "disk_left"
  for name, label in zip(scores.names, scores.labels):
    assert name.startswith(scores.classes[label] + "/")
  saved = json.loads((tmp_path / evaluate.EVAL_FILE).read_text())
  assert saved["step"] == 4 and saved["num_videos"] == 12 and saved == json.loads(json.dumps(report))
  assert np.asarray(saved["confusion_matrix"]).sum() == 12
  assert 0 <= saved["mean_class_accuracy"] <= 1 and len(saved["per_class_accuracy"]) == 12


def test_window_mean_scores_average_the_real_windows_softmax():
  class Linear:  # a stand-in network: the logits of a window are the mean of its frames' first 3 values
    @staticmethod
    def apply(variables, windows, train=False):  # windows [N, 1, tau, H, W, C]
      del variables, train
      return windows.mean(axis=(1, 2, 3, 4))[:, :3]

  rng = np.random.default_rng(0)
  frames = jnp.asarray(rng.normal(size=(2, 3 * 2, 1, 1, 4)), jnp.float32)  # 2 videos, 3 windows of 2
  windows = jnp.asarray([3, 2])  # the second video has 2 real windows (its third is padding)
  got = np.asarray(evaluate.window_mean_scores(Linear(), {}, frames.reshape(2, 3, 2, 1, 1, 4), windows))
  logits = np.asarray(frames).reshape(2, 3, 2, 4).mean(axis=2)[..., :3]
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  want = np.log(np.stack([p[0].mean(0), p[1, :2].mean(0)]))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def _final_state(workdir: Path) -> dict:
  step = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  with ocp.PyTreeCheckpointer() as checkpointer:
    state = checkpointer.restore(workdir / "checkpoints" / str(step) / "state")
  return step, state


def _command(workdir: Path, data_dir: Path) -> list[str]:
  return [sys.executable, "-m", "arp_jax.train", f"--config={CONFIG_FILE}:stream=di,runlocal",
          f"--workdir={workdir}", f"--config.dataset.data_dir={data_dir}", "--config.max_steps=6"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_state(data_dir, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  whole, killed = tmp_path / "whole", tmp_path / "killed"
  subprocess.run(_command(whole, data_dir), check=True, capture_output=True, env=env, timeout=600, cwd=ROOT)

  process = subprocess.Popen(_command(killed, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env, cwd=ROOT)
  try:
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "2").is_dir():  # the first checkpoint, complete (renamed into place)
      assert process.poll() is None, process.stderr.read().decode()[-3000:]
      assert time.monotonic() < deadline, "no checkpoint after 300 s"
      time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
  finally:
    process.wait(timeout=60)
    process.stderr.close()
  _, state = _final_state(killed)
  assert int(state["step"]) < 6  # it was killed before the end

  resumed = subprocess.run(_command(killed, data_dir), capture_output=True, text=True, env=env, timeout=600,
                           cwd=ROOT)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert json.loads(resumed.stdout.strip().splitlines()[-1])["step"] == 6
  (step_a, a), (step_b, b) = _final_state(whole), _final_state(killed)
  assert step_a == step_b == 6
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
  # The metrics file has each logged step once, as the uninterrupted run's.
  assert [r["step"] for r in read_metrics(killed)] == [r["step"] for r in read_metrics(whole)] == [2, 4, 6]


@pytest.mark.parametrize("field, value, message", [
    ("input.modality", "depth", "config.input.modality is 'depth'"),
    ("input.batch_size", 0, "config.input.batch_size is 0"),
    ("eval.aggregate", "vote", "config.eval.aggregate is 'vote'"),
    ("optim.optimizer", "adam", "config.optim.optimizer is 'adam'"),
    ("model.dtype", "float16", "config.model.dtype is 'float16'"),
    ("max_steps", -1, "config.max_steps is -1"),
    ("input.convention", "imagenet", "config.input.convention is 'imagenet'"),
    ("input.symmetries", {"rotate": [0, 1]}, r"config.input.symmetries has \['rotate'\]"),
])
def test_bad_config_is_a_clear_error(tmp_path, field, value, message):
  config = _config("si", tmp_path)
  with config.unlocked():
    node = config
    *parents, last = field.split(".")
    for parent in parents:
      node = node[parent]
    node[last] = value
  with pytest.raises(ValueError, match=message):
    config_lib.check_config(config)


def test_symmetries_of_another_number_of_classes_are_refused_before_training(data_dir, tmp_path):
  config = _config("si", data_dir)
  config.input.symmetries = {"hflip": [1, 0]}
  with pytest.raises(ValueError, match="symmetries map 2 classes; the dataset has 12"):
    train.train(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_a_cache_of_decoded_videos_larger_than_half_the_memory_is_refused_before_training(
    data_dir, tmp_path, monkeypatch):
  config = _config("di", data_dir)
  assert config.input.cache_decoded  # the synthetic benchmark's training videos are kept decoded
  assert isinstance(builders.source(config, data_dir, train=True), input_lib.DecodedSource)
  assert not isinstance(builders.source(config, data_dir, train=False), input_lib.DecodedSource)
  monkeypatch.setattr(input_memory, "physical_memory_bytes", lambda: 2**20)
  with pytest.raises(ValueError, match=r"^config.input.cache_decoded is True, but this host's share of the "
                                       r"training split decodes to about 0.00 GiB, more than half of its "
                                       r"0.00 GiB of memory; expected False for a dataset this large$"):
    train.train(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()
  config.input.cache_decoded = False
  assert not isinstance(builders.source(config, data_dir, train=True), input_lib.DecodedSource)


def test_workdir_of_another_config_and_missing_checkpoint(data_dir, tmp_path):
  config = _config("si", data_dir)
  run_config.save_run_config(config, tmp_path)
  run_config.check_run_config(config, tmp_path)  # the same config again (a resumption) is fine
  other = _config("di", data_dir)
  with pytest.raises(ValueError, match="another config .*: input.stride: 1 in the run, 6 here"):
    train.train(other, tmp_path)
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    evaluate.evaluate(config, tmp_path)
  assert not (tmp_path / "checkpoints").exists()


def test_missing_dataset_is_a_clear_error(tmp_path):
  config = config_lib.base_config()
  config.dataset.data_dir = os.fspath(tmp_path)
  with pytest.raises(FileNotFoundError, match="not prepared") as error:
    builders.dataset_info(config, tmp_path)
  assert os.fspath(tmp_path) in str(error.value) and "arp-jax build" in str(error.value)
  config.dataset.update(name="synthetic_motion/tiny", data_dir="")
  with pytest.raises(FileNotFoundError, match="arp-jax synthetic-data --data-dir .*data --variant tiny"):
    builders.dataset_info(config, tmp_path)
  # A name pinned to a version (the synthetic benchmark's configs): an older version left in the folder is
  # not read, and the command that prepares the dataset carries no version.
  config.dataset.name = "synthetic_motion/tiny:9.9.9"
  with pytest.raises(FileNotFoundError, match=r"\(no version 9.9.9 folder .*\); prepare it with `arp-jax "
                                              r"synthetic-data --data-dir \S*data --variant tiny`$"):
    builders.dataset_info(config, tmp_path)


def test_init_from_converted_weights_keeps_a_new_classifier(tmp_path):
  from arp_jax import weights  # pylint: disable=import-outside-toplevel
  from arp_jax.models import ARCHS  # pylint: disable=import-outside-toplevel
  # What `arp-jax convert` writes for an ImageNet backbone: 1000 classes.
  pretrained = ARCHS["resnext_tiny"](num_classes=1000).init(jax.random.key(7), jnp.zeros((1, 32, 32, 3)))
  weights.save(pretrained, tmp_path / "converted")
  config = _config("di", tmp_path, init_from=os.fspath(tmp_path / "converted"))
  network = builders.model(config.model, 12, 3)
  fresh = builders.initial_variables(_config("di", tmp_path), network)
  loaded = builders.initial_variables(config, network)
  for collection, first in (("params", "conv1"), ("batch_stats", "bn1")):
    got, want = loaded[collection]["backbone"], pretrained[collection]
    for path in (first, "layer4_0"):
      for a, b in zip(jax.tree.leaves(got[path]), jax.tree.leaves(want[path])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The 12-class classifier is new (the reference's fresh fc), not ImageNet's 1000-class one.
  for a, b in zip(jax.tree.leaves(loaded["params"]["backbone"]["fc"]),
                  jax.tree.leaves(fresh["params"]["backbone"]["fc"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  flow = _config("of", tmp_path, init_from=os.fspath(tmp_path / "converted"))  # 2 input channels
  with pytest.raises(ValueError, match="conv1/kernel is \\(7, 7, 3, 16\\), the model needs \\(7, 7, 2, 16\\)"):
    builders.initial_variables(flow, builders.model(flow.model, 12, 2))


def test_input_convention_follows_the_checkpoint_of_init_from(tmp_path, monkeypatch):
  from arp_jax import input as input_lib, normalization, weights  # pylint: disable=import-outside-toplevel
  from arp_jax.models import ARCHS  # pylint: disable=import-outside-toplevel
  # From scratch: "auto" is the reference's 0..255 minus the mean; a name is taken as it is.
  config = _config("di", tmp_path)
  assert config.input.convention == "auto"
  assert builders.input_convention(config) == normalization.convention("reference")
  assert builders.input_convention(_config("dof", tmp_path, **{"input.convention": "torchvision"})) \
      == normalization.convention("torchvision", "flow")
  # From converted weights: the convention their checkpoint records.
  pretrained = ARCHS["resnext_tiny"](num_classes=1000).init(jax.random.key(7), jnp.zeros((1, 32, 32, 3)))
  weights.save(pretrained, tmp_path / "converted", convention="torchvision")
  init_from = os.fspath(tmp_path / "converted")
  for name in ("auto", "torchvision"):
    config = _config("di", tmp_path, init_from=init_from, **{"input.convention": name})
    assert builders.input_convention(config) == normalization.convention("torchvision")
  with pytest.raises(ValueError, match="is 'reference', but init_from's weights expect 'torchvision'"):
    builders.input_convention(_config("di", tmp_path, init_from=init_from,
                                        **{"input.convention": "reference"}))
  with pytest.raises(ValueError, match="init_from's weights take rgb input"):
    builders.input_convention(_config("dof", tmp_path, init_from=init_from))
  # CaffeNet's dynamic image is scaled to 0..255 sizes (L2 norm 6000, clip 128): not for divided input.
  caffe = _config("di", tmp_path, **{"model.backbone": "caffenet", "model.pool_at": "conv1",
                                     "input.convention": "torchvision"})
  with pytest.raises(ValueError, match="L2 norm 6000"):
    builders.input_convention(caffe)
  caffe.input.convention = "caffe"
  assert builders.input_convention(caffe) == normalization.convention("caffe")

  # The pipelines get it.
  seen = {}
  for offline, make in ((False, "make_dataset"), (True, "make_dynamic_image_dataset")):
    monkeypatch.setattr(input_lib, make,
                        lambda source, **kwargs: seen.update(kwargs) or types.SimpleNamespace())
    config = _config("di", tmp_path, init_from=init_from, **{"input.offline": offline})
    builders.input_pipeline(config.input, [{}], train=True, batch_size=8, seed=0,
                            convention=builders.input_convention(config))
    assert seen.pop("convention") == normalization.convention("torchvision")


def test_parse_arg_big_vision_style():
  defaults = {"dataset": "ucf101", "split": 1, "runlocal": False, "lr": 0.1}
  assert config_lib.parse_arg("dataset=hmdb51, split=2,runlocal", defaults) == {
      "dataset": "hmdb51", "split": 2, "runlocal": True, "lr": 0.1}
  assert config_lib.parse_arg(None, defaults) == defaults
  assert config_lib.parse_arg("runlocal=false,lr=0.5", defaults)["lr"] == 0.5
  for arg, message in (("depth=conv3", "unknown config argument 'depth'"), ("split=two", "expected a value of type int"),
                       ("split", "needs a value"), ("runlocal=maybe", "expected true or false")):
    with pytest.raises(ValueError, match=message):
      config_lib.parse_arg(arg, defaults)


@pytest.mark.slow
def test_offline_dynamic_images_and_frames_of_real_clips_train_and_evaluate(tmp_path):
  """The UCF101 datasets of data_prep (a miniature of real clips) through both pipelines: precomputed
  dynamic images (the offline path) and frames with ARP at the input, each two steps then evaluation."""
  from data_prep.mini import build_mini  # pylint: disable=import-outside-toplevel
  build_mini("ucf101", tmp_path / "data", ("rgb_w10s6",))
  for name, offline in (("ucf101_dynamic_images/split1_rgb_w10s6", True), ("ucf101_frames/split1", False)):
    config = config_lib.base_config()
    config.dataset.update(name=name, data_dir=os.fspath(tmp_path / "data"))
    config.input.update(offline=offline, size=48, scales=(64, 48), short_side=0, batch_size=2, repeat=1,
                        num_workers=0, train_windows=2, test_windows=3)
    config.model.backbone = "resnext_tiny"
    config.optim.accumulation_steps = 1
    config.eval.batch_size = 2
    config.max_steps = 2
    workdir = tmp_path / name.replace("/", "_")
    assert train.train(config, workdir)["step"] == 2
    report = evaluate.evaluate(config, workdir)
    assert report["num_videos"] == 2 and len(report["per_class_accuracy"]) == 101
    assert sorted(load_scores(workdir / evaluate.SCORES_FILE).names) == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyLipstick/v_ApplyLipstick_g01_c01.avi"]


@pytest.mark.slow
def test_stop_request_saves_and_the_same_command_resumes(data_dir, tmp_path, monkeypatch):
  config = _config("si", data_dir)
  original = train._StopRequest.__enter__  # pylint: disable=protected-access

  def requested_at_once(self):  # as if Ctrl-C came during the first step
    original(self)
    self.requested = True
    return self

  monkeypatch.setattr(train._StopRequest, "__enter__", requested_at_once)  # pylint: disable=protected-access
  result = train.train(config, tmp_path)
  assert result["stopped"] and result["step"] == 1
  assert (tmp_path / "checkpoints" / "1").is_dir()  # saved although 1 is not a multiple of checkpoint_every
  monkeypatch.undo()
  result = train.train(config, tmp_path)
  assert not result["stopped"] and result["step"] == config.max_steps
  assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 4]
