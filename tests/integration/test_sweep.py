"""The sweep runner: hyper-parameter points, their configs and commands, running, skipping, results.md."""

import os
import textwrap

import pytest

from arp_jax import cli, sweep

from paths import REPO as ROOT
SYNTHETIC = ROOT / "experiments" / "synthetic_four_stream.py"


def test_hyper_helpers():
  h = sweep.HYPER
  assert h.sweep("split", [1, 2]) == [{"split": 1}, {"split": 2}]
  assert h.product([h.sweep("a", [1, 2]), h.sweep("b", "xy")]) == [
      {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
  assert h.chainit([h.sweep("a", [1]), h.sweep("b", [2])]) == [{"a": 1}, {"b": 2}]
  with pytest.raises(ValueError, match="no values"):
    h.sweep("a", [])


def test_points_configs_and_commands(tmp_path):
  module = sweep.load_config_file(SYNTHETIC)
  points = sweep.points(module)
  assert points == [{"stream": s} for s in ("si", "di", "mean", "of", "dof")]
  point = {"stream": "of", "config.optim.learning_rates": [0.1, 0.01]}
  assert sweep.merged_arg("runlocal,stream=di", point) == "runlocal,stream=of"
  assert sweep.point_name(point) == "stream=of,learning_rates=[0.1, 0.01]"
  config = sweep.point_config(module, "runlocal", point)
  assert config.input.modality == "flow" and list(config.optim.learning_rates) == [0.1, 0.01]
  assert config.dataset.name.partition(":")[0] == "synthetic_motion/tiny"
  train, evaluate = sweep.commands(os.fspath(SYNTHETIC), "runlocal", point, tmp_path)
  assert " -m arp_jax.train " in train and " -m arp_jax.evaluate " in evaluate
  assert f"--config={SYNTHETIC}:runlocal,stream=of" in train
  assert "'--config.optim.learning_rates=[0.1, 0.01]'" in train
  for key in ("config.optim.lr", "config.optimizer.lr", "config.seed.value"):
    with pytest.raises(ValueError, match="names no config field"):
      sweep.point_config(module, None, {key: 0.1})
  assert cli.main(["sweep", os.fspath(tmp_path / "none.py"), "--workdir", os.fspath(tmp_path)]) == 2


@pytest.mark.slow
def test_run_skips_finished_points_and_writes_results(tmp_path, capsys):
  config_file = tmp_path / "two_streams.py"
  config_file.write_text(textwrap.dedent(f"""
      import importlib.util
      spec = importlib.util.spec_from_file_location("synthetic", {os.fspath(SYNTHETIC)!r})
      synthetic = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(synthetic)

      def get_config(arg=None):
        config = synthetic.get_config(arg)
        config.max_steps = 2
        return config

      def get_hyper(h):
        return h.sweep("stream", ["si", "of"])

      def paper_result(point):
        return {{"si": 71.0}}.get(point.get("stream"))
  """))
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  synthetic.build(tmp_path / "runs" / "data", "tiny")  # arp-jax synthetic-data: read by both points
  assert cli.main(["sweep", f"{config_file}:runlocal", "--workdir", os.fspath(tmp_path / "runs")]) == 0
  table = (tmp_path / "runs" / sweep.RESULTS_FILE).read_text()
  rows = [line for line in table.splitlines() if line.startswith("| stream=")]
  assert len(rows) == 2 and rows[0].endswith("| 1 | 71.0 |") and rows[1].endswith("| 1 |  |")
  assert (tmp_path / "runs" / "data" / "synthetic_motion" / "tiny").is_dir()  # one dataset for both
  capsys.readouterr()
  assert cli.main(["sweep", f"{config_file}:runlocal", "--workdir", os.fspath(tmp_path / "runs")]) == 0
  assert capsys.readouterr().err.count("done, skipped") == 2
