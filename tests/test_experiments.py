"""Every config file of experiments/ runs in `runlocal` mode (a few steps on the miniature real-clip or
tiny synthetic dataset), so that none of them rots; and the paper's stream configs carry the reference's
settings."""

import os
from pathlib import Path

import pytest

from arp_jax import evaluate, paper_configs, sweep, train

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(p for p in (ROOT / "experiments").glob("*.py"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
  """One folder for the datasets every config prepares (the miniature and the synthetic ones)."""
  return tmp_path_factory.mktemp("experiments")


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_config_runs_locally(path, shared):
  module = sweep.load_config_file(path)
  point = sweep.points(module)[0]
  config = sweep.point_config(module, "runlocal", point)
  assert config.max_steps and config.max_steps <= 4, "runlocal must shrink the run"
  name = config.dataset.name.split("/")[0]
  config.dataset.data_dir = os.fspath(shared / ("mini_data" if config.dataset.mini else "data"))
  workdir = shared / path.stem
  assert train.train(config, workdir)["step"] == config.max_steps
  report = evaluate.evaluate(config, workdir)
  assert report["num_videos"] >= 1 and 0 <= report["mean_class_accuracy"] <= 1, name


def test_stream_configs_follow_the_reference():
  di = paper_configs.stream_config("hmdb51", 2, "di")
  assert di.dataset.name == "hmdb51_frames/split2" and di.model.pool_at == "stem"
  assert (di.input.window, di.input.stride, di.input.train_windows, di.input.test_windows) == (10, 6, 10, 20)
  assert list(di.optim.learning_rates) == [1e-2] * 2 + [1e-3] * 8 and di.model.dropout_rate == 0.5
  assert di.input.batch_size * di.optim.accumulation_steps == 128 and di.input.repeat == 5
  of = paper_configs.stream_config("ucf101", 1, "of")
  assert of.input.modality == "flow" and of.input.window == 1 and of.eval.aggregate == "mean"
  assert list(of.optim.learning_rates) == [1e-2, 1e-2, 1e-3, 1e-3] and of.model.dropout_rate == 0.8
  caffenet = paper_configs.stream_config("ucf101", 1, "si", backbone="caffenet")
  assert caffenet.input.size == 227 and list(caffenet.optim.learning_rates) == [1e-3, 1e-3, 1e-4, 1e-4]
  local = paper_configs.stream_config("ucf101", 3, "dof", runlocal=True)
  assert local.dataset.name == "ucf101_frames/split1" and local.dataset.mini
  assert local.model.backbone == "resnext_tiny" and local.max_steps == 2
  for arg, message in (("dataset=kinetics", "dataset is 'kinetics'"), ("split=4", "split is 4")):
    with pytest.raises(ValueError, match=message):
      paper_configs.arguments(arg)
  with pytest.raises(ValueError, match="stream is 'rgb'"):
    paper_configs.stream_config("ucf101", 1, "rgb")


def test_table8_paper_results():
  module = sweep.load_config_file(ROOT / "experiments" / "table8_four_stream.py")
  assert len(sweep.points(module)) == 12
  assert module.paper_result({"stream": "di"}) == 86.6
  assert module.paper_result({"stream": "dof", "dataset": "hmdb51"}) == 58.9
  assert module.get_config("dataset=hmdb51,split=3,stream=of").dataset.name == "hmdb51_frames/split3"
