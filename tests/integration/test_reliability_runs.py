"""Issue 15, the runs: nothing silent, nothing lost (train, evaluate, sweep on the tiny synthetic dataset).

* evaluation with another config than the run's is refused, naming the fields, before writing anything;
* every train/evaluate/fuse command line of the README's "Training and evaluation" section runs (list
  fields overridable as literals), without library warnings;
* a failed first attempt writes no config.json; paths, logging and cadence may change on resumption;
* a damaged latest checkpoint falls back to the newest one that restores, and is kept aside;
* user mistakes on the command line are one line on stderr and exit status 2.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arp_jax import config as config_lib, evaluate, run_config, train
from arp_jax.scores import Scores, load_scores, save_scores

from paths import REPO as ROOT
from runs import CONFIG_FILE, stream_config as _config, synthetic_four_stream

ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def _run(*args, env=None):
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or ENV, cwd=ROOT,
                        timeout=600)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
  path = tmp_path_factory.mktemp("synthetic")
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  synthetic.build(path, "tiny")
  return path


@pytest.fixture(scope="module")
def di_run(data_dir, tmp_path_factory) -> Path:
  """A DI run of 4 steps with checkpoints at steps 2 and 4 (copy it before changing it)."""
  workdir = tmp_path_factory.mktemp("di_run")
  assert train.train(_config("di", data_dir), workdir)["step"] == 4
  return workdir


def test_evaluation_with_another_config_is_refused_before_writing(data_dir, di_run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(di_run, workdir)
  with pytest.raises(ValueError, match=r"another config .*input\.window: 10 in the run, 1 here"):
    evaluate.evaluate(_config("si", data_dir), workdir)
  assert not (workdir / evaluate.EVAL_FILE).exists() and not (workdir / evaluate.SCORES_FILE).exists()
  # What only training reads (the learning rates, the seed) and evaluation's own choices may differ.
  report = evaluate.evaluate(_config("di", data_dir, seed=3, **{"optim.learning_rates": [0.5],
                                                                "eval.batch_size": 4}), workdir)
  assert report["step"] == 4 and (workdir / evaluate.EVAL_FILE).exists()


def _readme_commands(section: str) -> list[str]:
  """The `python -m arp_jax.*` command lines of the ```bash blocks of a README section."""
  text = (ROOT / "README.md").read_text()
  body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
  lines = []
  for block in re.findall(r"```bash\n(.*?)```", body, re.S):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.split("  #", 1)[0].strip()
      if line.startswith("python -m arp_jax."):
        lines.append(line)
  return lines


@pytest.mark.slow
def test_readme_training_and_evaluation_commands_run_without_warnings(data_dir, tmp_path):
  commands = _readme_commands("Training and evaluation")
  assert [shlex.split(c)[2] for c in commands] == ["arp_jax.train", "arp_jax.evaluate", "arp_jax.fuse"]
  tiny = [f"--config.dataset.data_dir={data_dir}", "--config.max_steps=2"]
  for command in commands:
    args = [a.replace("runs/", f"{tmp_path}/runs/") for a in shlex.split(command)[1:]]
    if args[1] == "arp_jax.fuse":
      # The other streams' scores: the DI stream's, relabelled (training them all would take minutes).
      di = load_scores(tmp_path / "runs" / "di" / evaluate.SCORES_FILE)
      for stream in ("si", "of", "dof"):
        (tmp_path / "runs" / stream).mkdir(exist_ok=True)
        save_scores(tmp_path / "runs" / stream / evaluate.SCORES_FILE,
                    Scores(names=di.names, labels=di.labels, scores=np.roll(di.scores, 1, axis=1),
                           classes=di.classes))
    else:
      args = [a + ",runlocal" if a.startswith("--config=") or a.endswith(":stream=di") else a for a in args]
      args += tiny
    result = _run(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr and "warn" not in result.stderr, result.stderr[-3000:]
  saved = json.loads((tmp_path / "runs" / "di" / train.CONFIG_FILE).read_text())
  assert saved["optim"]["learning_rates"] == [0.05, 0.05, 0.005]


def test_every_sweep_command_of_the_readme_parses_and_lists_its_points(tmp_path):
  # The paper's tables need UCF101/HMDB51 and ImageNet weights to run: `--print` builds and checks every
  # point's config from the command line as written and prints its train and evaluate commands.
  text = (ROOT / "README.md").read_text()
  commands = sorted(set(re.findall(r"`(python -m arp_jax\.sweep experiments/[^`]+)`", text)))
  assert len(commands) >= 8, commands
  for command in commands:
    args = [a.replace("runs/", f"{tmp_path}/runs/") for a in shlex.split(command)[1:]]
    result = _run(*args, "--print")
    assert result.returncode == 0, (command, result.stderr[-2000:])
    printed = result.stdout.splitlines()
    assert printed and all(" -m arp_jax.train " in line or " -m arp_jax.evaluate " in line
                           for line in printed), (command, result.stdout[:500])
  assert not (tmp_path / "runs").exists()  # printing runs nothing


def test_list_fields_are_overridable_as_literals_and_bad_ones_are_one_line(tmp_path):
  result = _run("-m", "arp_jax.train", f"--config={CONFIG_FILE}:stream=di,runlocal",
                f"--workdir={tmp_path / 'w'}", "--config.input.scales=[64, 48]",
                "--config.optim.learning_rates=abc", f"--config.dataset.data_dir={tmp_path / 'd'}")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "arp-jax train: error: flag --config.optim.learning_rates=abc: 'abc' is not a list; expected "
      "a Python literal such as '(0.05, 0.005)'"]
  assert not (tmp_path / "w").exists()


def test_failed_first_attempt_writes_no_config_and_paths_may_change(tmp_path):
  config = config_lib.base_config()  # UCF101, not prepared in tmp_path
  config.dataset.data_dir = os.fspath(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="not prepared"):
    train.train(config, tmp_path / "run")
  assert not (tmp_path / "run" / train.CONFIG_FILE).exists()

  saved = config_lib.to_dict(config)
  moved = config_lib.base_config()
  moved.dataset.data_dir = "/elsewhere"
  moved.input.num_workers = 7
  moved.update(log_every=1, checkpoint_every=5, keep_checkpoints=9, max_steps=3)
  moved.eval.batch_size = 64
  assert run_config.run_config_differences(saved, moved) == []
  moved.input.window = 5
  moved.optim.learning_rates = [0.1]
  assert run_config.run_config_differences(saved, moved) == [
      "input.window: 10 in the run, 5 here", "optim.learning_rates: [0.01, 0.01, 0.001, 0.001, 0.001, 0.001, "
      "0.001, 0.001, 0.001, 0.001] in the run, [0.1] here"]
  assert run_config.run_config_differences(saved, moved, evaluation=True) == [
      "input.window: 10 in the run, 5 here"]


def test_config_json_of_before_input_convention_and_short_side(tmp_path):
  """Runs saved before these fields existed cropped in stored pixels and normalised as the reference."""
  config = synthetic_four_stream.get_config("stream=di")  # short_side 0, convention "auto"
  old = config_lib.to_dict(config)
  del old["input"]["convention"], old["input"]["short_side"]
  assert run_config.run_config_differences(old, config) == []
  base = config_lib.to_dict(config_lib.base_config())
  del base["input"]["short_side"]
  assert run_config.run_config_differences(base, config_lib.base_config()) == [
      "input.short_side: 0 in the run, 256 here"]
  with_init = config_lib.base_config()
  with_init.init_from = "/weights"
  old = config_lib.to_dict(with_init)
  del old["input"]["convention"]
  assert run_config.run_config_differences(old, with_init) == [
      "input.convention: 'reference' in the run, 'auto' here"]


@pytest.mark.slow
def test_a_moved_dataset_resumes(data_dir, di_run, tmp_path):
  workdir, moved = tmp_path / "run", tmp_path / "moved_data"
  shutil.copytree(di_run, workdir)
  shutil.copytree(data_dir, moved)
  result = train.train(_config("di", moved, max_steps=6, log_every=3), workdir)
  assert result["step"] == 6
  assert json.loads((workdir / train.CONFIG_FILE).read_text())["dataset"]["data_dir"] == os.fspath(moved)


@pytest.mark.parametrize("damage", ["state/_METADATA", "data/process_0-of-1.json", "state/d"])
def test_a_damaged_latest_checkpoint_falls_back_and_is_kept(data_dir, di_run, tmp_path, capfd, damage):
  workdir = tmp_path / "run"
  shutil.copytree(di_run, workdir)
  target = workdir / "checkpoints" / "4" / damage
  shutil.rmtree(target) if target.is_dir() else target.unlink()
  # Evaluation reads the newest checkpoint that restores, and changes nothing in checkpoints/.
  # (It reads neither the iterator nor the tree metadata: only lost arrays make it fall back.)
  report = evaluate.evaluate(_config("di", data_dir), workdir)
  assert report["step"] == (2 if damage == "state/d" else 4) and (workdir / "checkpoints" / "4").is_dir()
  result = train.train(_config("di", data_dir, max_steps=6), workdir)
  assert result["step"] == 6
  err = capfd.readouterr().err
  assert re.search(r"checkpoint 4 in \S+ does not restore \(.*\); skipped", err), err
  # Nothing else: no echo of the reads Orbax left running (tracebacks, "exception was never retrieved").
  assert "Traceback" not in err and "never retrieved" not in err, err[-3000:]
  assert f"checkpoint 4 moved to {workdir / 'checkpoints.damaged' / '4'}" in err
  assert (workdir / "checkpoints.damaged" / "4" / "state").is_dir()  # kept, out of Orbax's cleanup
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4, 6]


def _one_line_exit_2(result, *expected: str, tfds_logs: bool = False):
  lines = result.stderr.strip().splitlines()
  if tfds_logs:  # TFDS logs (absl) a warning of its own on a missing dataset; arp_jax's part is the error
    lines = [line for line in lines if not line.startswith("W") or "file_utils.py" not in line]
  assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
  for text in expected:
    assert text in lines[0], lines[0]


@pytest.mark.parametrize("module", ["arp_jax.train", "arp_jax.evaluate"])
def test_user_errors_are_one_line_and_exit_2(data_dir, tmp_path, module):
  workdir = tmp_path / "w"
  spec = f"--config={CONFIG_FILE}:stream=di,runlocal"
  tiny = [f"--workdir={workdir}", f"--config.dataset.data_dir={data_dir}"]
  _one_line_exit_2(_run("-m", module, "--config=experiments/nope.py:stream=di", *tiny),
                   "--config experiments/nope.py: no such file")
  _one_line_exit_2(_run("-m", module, "--config=experiments/nope.py", *tiny, "--config.max_steps=2"),
                   "no such file")
  _one_line_exit_2(_run("-m", module, f"--config={CONFIG_FILE}:stream=xx", *tiny), "stream is 'xx'")
  two_devices = dict(ENV, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  field = "input" if module == "arp_jax.train" else "eval"
  _one_line_exit_2(_run("-m", module, spec, *tiny, f"--config.{field}.batch_size=3", env=two_devices),
                   f"{field}.batch_size is 3; expected a multiple of the 2 devices")
  ucf = f"--config={ROOT / 'experiments' / 'table6_deeper.py'}:dataset=ucf101"
  if module == "arp_jax.train":
    _one_line_exit_2(_run("-m", module, ucf, f"--workdir={workdir}",
                          f"--config.dataset.data_dir={tmp_path / 'nothing'}"), "not prepared",
                     tfds_logs=True)
  else:
    _one_line_exit_2(_run("-m", module, spec, *tiny), "no checkpoint in", "train first")
    assert not (workdir / "checkpoints").exists()
  assert not (workdir / train.CONFIG_FILE).exists()


def test_sweep_user_errors_are_one_line_and_exit_2(tmp_path):
  _one_line_exit_2(_run("-m", "arp_jax.sweep", "experiments/nope.py", f"--workdir={tmp_path}"),
                   "no such config file")
  _one_line_exit_2(_run("-m", "arp_jax.sweep", f"{CONFIG_FILE}:runlocal=maybe", f"--workdir={tmp_path}"),
                   "config argument runlocal='maybe'; expected true or false")
  # The file sweeps the streams: a stream on the command line would be ignored, not run.
  _one_line_exit_2(_run("-m", "arp_jax.sweep", f"{CONFIG_FILE}:stream=xx,runlocal", f"--workdir={tmp_path}"),
                   "sweeps stream itself")
  assert not list(tmp_path.glob("stream=*"))
