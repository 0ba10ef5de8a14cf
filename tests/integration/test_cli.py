"""Tests for the `arp-jax` command line (arp_jax.cli), in-process through `main` and once as a module."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import arp_jax
from arp_jax import cli, display, video

from cli_helpers import assert_usage_error as _assert_usage_error, png as _png, run as _run
from paths import REPO, UCF_CLIP


@pytest.fixture(scope="module")
def ucf_frames():
  return video.read_frames(UCF_CLIP)


@pytest.fixture
def frame_dir(tmp_path):
  """Six random 8x10 RGB frames named frame_1.png .. frame_6.png."""
  folder = tmp_path / "frames"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for n in range(1, 7):
    Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(folder / f"frame_{n}.png")
  return folder


def test_pool_whole_clip_matches_library(ucf_frames, tmp_path, capsys):
  out = tmp_path / "di.png"
  status, stdout, err = _run(["pool", UCF_CLIP, "-o", out], capsys)
  assert status == 0, err
  expected = np.asarray(display.to_image(arp_jax.pool(ucf_frames, method="arp")))
  np.testing.assert_array_equal(_png(out), expected)
  assert _png(out).shape == (240, 320, 3)
  lines = stdout.strip().splitlines()
  assert lines[0] == f"wrote {out}"
  assert len(lines) == 2
  assert "164 frames" in lines[-1] and "method arp" in lines[-1] and "1 dynamic image" in lines[-1]


@pytest.mark.parametrize("method", ["mean", "max"])
def test_pool_other_methods_on_frame_dir(method, frame_dir, tmp_path, capsys):
  out = tmp_path / f"{method}.png"
  status, stdout, err = _run(["pool", frame_dir, "-o", out, "--method", method], capsys)
  assert status == 0, err
  expected = display.to_image(arp_jax.pool(video.read_frame_dir(frame_dir), method=method))
  np.testing.assert_array_equal(_png(out), np.asarray(expected))
  assert f"method {method}" in stdout and "6 frames" in stdout


def test_pool_frame_dir_arp(frame_dir, tmp_path, capsys):
  out = tmp_path / "dir.png"
  status, _, err = _run(["pool", frame_dir, "-o", out], capsys)
  assert status == 0, err
  expected = display.to_image(arp_jax.pool(video.read_frame_dir(frame_dir), method="arp"))
  np.testing.assert_array_equal(_png(out), np.asarray(expected))


@pytest.mark.parametrize("tail, windows", [("pad", 5), ("drop", 4)])
def test_pool_windows_write_one_png_per_window_and_grid(tail, windows, ucf_frames, tmp_path, capsys):
  # 164 frames, window 40, stride 40: starts 0, 40, 80, 120 (+ 160, padded, with tail=pad).
  out = tmp_path / "mdi.png"
  status, stdout, err = _run(
      ["pool", UCF_CLIP, "-o", out, "--window", 40, "--stride", 40, "--tail", tail], capsys)
  assert status == 0, err
  files = sorted(tmp_path.glob("mdi_*.png"))
  assert [f.name for f in files] == [f"mdi_{i:03d}.png" for i in range(windows)]
  pooled = arp_jax.pool(ucf_frames, method="arp", window=40, stride=40, start=0, tail=tail)
  images = np.stack([np.asarray(display.to_image(w)) for w in pooled])
  for f, image in zip(files, images):
    np.testing.assert_array_equal(_png(f), image)
  rows, columns = (2, 3) if windows == 5 else (2, 2)
  grid = _png(out)
  assert grid.shape == (rows * 240, columns * 320, 3)
  np.testing.assert_array_equal(grid, np.asarray(display.grid(images)))
  lines = stdout.strip().splitlines()
  assert len(lines) == windows + 2  # one per window file, the grid, the summary
  assert lines[windows].startswith(f"wrote {out}")
  assert f"{windows} dynamic image(s)" in stdout


def test_pool_window_start(frame_dir, tmp_path, capsys):
  out = tmp_path / "w.png"
  status, _, err = _run(["pool", frame_dir, "-o", out, "--window", 2, "--stride", 2, "--start", 1], capsys)
  assert status == 0, err
  pooled = arp_jax.pool(video.read_frame_dir(frame_dir), window=2, stride=2, start=1, tail="pad")
  files = sorted(tmp_path.glob("w_*.png"))
  assert len(files) == len(pooled)
  np.testing.assert_array_equal(_png(files[0]), np.asarray(display.to_image(pooled[0])))


def test_missing_input_exits_2(tmp_path, capsys):
  status, _, err = _run(["pool", tmp_path / "missing.avi", "-o", tmp_path / "x.png"], capsys)
  _assert_usage_error(status, err, "missing.avi")
  assert not (tmp_path / "x.png").exists()


def test_corrupt_input_exits_2(tmp_path, capsys):
  corrupt = tmp_path / "corrupt.avi"
  corrupt.write_bytes(np.random.default_rng(1).bytes(2048))
  status, _, err = _run(["pool", corrupt, "-o", tmp_path / "x.png"], capsys)
  _assert_usage_error(status, err, "corrupt.avi")


def test_window_longer_than_video_with_drop_exits_2(frame_dir, tmp_path, capsys):
  status, _, err = _run(["pool", frame_dir, "-o", tmp_path / "x.png", "--window", 10, "--tail", "drop"], capsys)
  _assert_usage_error(status, err)


@pytest.mark.parametrize("args, fragment", [
    (["--method", "median"], "invalid choice"),
    (["--window", "0"], "positive integer"),
    (["--window", "ten"], "expected an integer"),
    (["--start", "-1"], "non-negative"),
    (["--stride", "3"], "--stride needs --window"),
    (["--tail", "wrap"], "invalid choice"),
])
def test_bad_arguments_exit_2(args, fragment, frame_dir, tmp_path, capsys):
  status, _, err = _run(["pool", frame_dir, "-o", tmp_path / "x.png", *args], capsys)
  _assert_usage_error(status, err, fragment)


def test_usage_errors_exit_2(frame_dir, tmp_path, capsys):
  _assert_usage_error(*_run([], capsys)[::2], "COMMAND")
  _assert_usage_error(*_run(["pool", frame_dir], capsys)[::2], "--output")
  _assert_usage_error(*_run(["pool", frame_dir, "-o", tmp_path / "x.jpg"], capsys)[::2], ".png")
  _assert_usage_error(*_run(["unknown"], capsys)[::2], "invalid choice")
  _assert_usage_error(*_run(["pool", frame_dir, "-o", tmp_path / "no" / "x.png"], capsys)[::2], "does not exist")


def test_help_exits_0(capsys):
  status, out, _ = _run(["pool", "--help"], capsys)
  assert status == 0 and "--window" in out


def test_module_entry_point(frame_dir, tmp_path):
  out = tmp_path / "sub.png"
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
  result = subprocess.run(
      [sys.executable, "-m", "arp_jax.cli", "pool", str(frame_dir), "-o", str(out), "--method", "mean"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert f"wrote {out}" in result.stdout
  expected = display.to_image(arp_jax.pool(video.read_frame_dir(frame_dir), method="mean"))
  np.testing.assert_array_equal(_png(out), np.asarray(expected))
  failed = subprocess.run(
      [sys.executable, "-m", "arp_jax.cli", "pool", str(tmp_path / "missing"), "-o", str(out)],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert failed.returncode == 2 and "missing" in failed.stderr and "Traceback" not in failed.stderr


# The dispatcher ------------------------------------------------------------------------------------------


def test_help_lists_every_subcommand_without_importing_the_tools():
  code = ("import sys\nfrom arp_jax import cli\nstatus = cli.main(['--help'])\n"
          "heavy = {'tensorflow_datasets', 'grain', 'flax', 'optax', 'orbax', 'cv2', 'av', 'matplotlib'}\n"
          "print('imported:', sorted(path for path, _ in cli.COMMANDS.values() if path in sys.modules)\n"
          "      + sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
          "sys.exit(status)")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  for name, (_, summary) in cli.COMMANDS.items():
    assert name in result.stdout and summary[:30] in result.stdout
  assert result.stdout.strip().splitlines()[-1] == "imported: []"


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_subcommand_has_help(name, capsys):
  status, out, err = _run([name, "--help"], capsys)
  assert status == 0, err
  assert out.startswith(f"usage: arp-jax {name}") and "--help" in out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_subcommand_refuses_a_bad_command_line_in_one_line(name, capsys):
  # Missing required arguments or the unknown option, whichever argparse reports first.
  status, _, err = _run([name, "--no-such-option"], capsys)
  _assert_usage_error(status, err, f"arp-jax {name}: error:")


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_tool_runs_as_a_module(name):
  # `python -m <module>` goes through the same dispatcher (test_module_entry_point runs one).
  path = REPO.joinpath(*cli.COMMANDS[name][0].split(".")).with_suffix(".py")
  assert f'sys.exit(cli.main(["{name}", *sys.argv[1:]]))' in path.read_text()


def test_usage_errors_from_a_tool_are_one_line_and_bugs_keep_their_traceback(capsys):
  with cli.usage_errors(OSError):
    pass
  with pytest.raises(cli.UsageError, match="^no such file$"):
    with cli.usage_errors(OSError):
      raise FileNotFoundError("no such file\nsecond line")
  with pytest.raises(KeyError):
    with cli.usage_errors(OSError):
      raise KeyError("a bug")
