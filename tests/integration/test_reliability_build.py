"""Reliability of `python -m data_prep.build` (issue "Nothing silent, nothing lost"): the dataset follows
the videos on disk, a killed build leaves no process behind, two builds never collide, a user mistake is one
line. Each test failed before its fix. Builds are the miniature UCF101 (tests/integration/test_build.py), DIS flow at
a 64-pixel short side (and once TV-L1 by the JAX op, whose build path is threads and batches, not processes).
"""

import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
import tensorflow_datasets as tfds

from paths import REPO
from arp_jax import cli
from data_prep import build, datasets, synthetic
from data_prep.mini import UCF101_CORRUPT, UCF101_VIDEOS, UCF_CLIP, make_mini_ucf101
from data_prep.process import ProcessOptions

OPTIONS = ProcessOptions(flow="dis", short_side=64)
ARGS = ["--dataset", "ucf101", "--short_side", "64", "--flow", "dis"]
FRAMES = "ucf101_frames/split1"
ADDED = "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi"  # a training video of split 1 that the mini lacks


def _command(manual_dir, data_dir, workers=1, flow="dis"):
  return [sys.executable, "-m", "data_prep.build", *ARGS[:-1], flow, "--workers", str(workers), "--manual_dir",
          str(manual_dir), "--data_dir", str(data_dir)]


def _names(data_dir) -> list[str]:
  sources = tfds.data_source(FRAMES, data_dir=os.fspath(data_dir))
  return sorted(bytes(x["name"]).decode() for split in ("train", "test") for x in sources[split])


def _processes_with(marker: str) -> list[int]:
  """The live processes whose environment holds `marker` (a build and every process it started)."""
  found = []
  for entry in Path("/proc").iterdir():
    try:
      if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
        found.append(int(entry.name))
    except OSError:  # gone meanwhile, or not ours
      pass
  return found


def test_rerun_after_a_video_is_added_or_fixed_rebuilds_the_dataset(tmp_path):
  # Before: the new videos reached the cache ("2 prepared now") but the dataset kept its old videos, and a
  # fixed file stayed "failed" unless --retry_failed.
  manual_dir = make_mini_ucf101(tmp_path / "manual", corrupt=True)
  data_dir = tmp_path / "data"
  build.build_datasets("ucf101", 1, manual_dir, data_dir, OPTIONS)
  assert _names(data_dir) == sorted(UCF101_VIDEOS)
  shutil.copyfile(UCF_CLIP, manual_dir / "UCF-101" / ADDED)  # the download completed
  shutil.copyfile(UCF_CLIP, manual_dir / "UCF-101" / UCF101_CORRUPT)  # the corrupt file replaced

  report = build.build_datasets("ucf101", 1, manual_dir, data_dir, OPTIONS)
  now = sorted([ADDED, UCF101_CORRUPT])
  assert report["prepared_now"] == now and report["reused"] == len(UCF101_VIDEOS)
  assert report["retried"] == [UCF101_CORRUPT] and report["failed"] == {}
  assert report["rebuilt"] == {FRAMES: {"added": now, "removed": []}}
  assert report["datasets"][FRAMES] == {"train": 4, "test": 2}
  assert _names(data_dir) == sorted([*UCF101_VIDEOS, *now])
  report["report_path"] = "report.json"
  printed = _printed(report)
  assert "dataset rebuilt: 2 videos added, 0 removed" in printed

  records = sorted(data_dir.rglob("*.array_record*"))
  stamps = [p.stat().st_mtime_ns for p in records]
  again = build.build_datasets("ucf101", 1, manual_dir, data_dir, OPTIONS)
  assert again["rebuilt"] == {} and again["prepared_now"] == [] and again["retried"] == []
  assert [p.stat().st_mtime_ns for p in records] == stamps


def _printed(report) -> str:
  import io  # pylint: disable=import-outside-toplevel
  out = io.StringIO()
  build.print_report(report, file=out)
  return out.getvalue()


def test_a_video_on_disk_in_no_split_is_reported(tmp_path):
  # Before: such a video was never mentioned, so a misnamed file went unnoticed.
  manual_dir = make_mini_ucf101(tmp_path / "manual")
  stray = manual_dir / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01 (1).avi"
  shutil.copyfile(UCF_CLIP, stray)
  (manual_dir / "UCF-101" / "ApplyEyeMakeup" / "notes.txt").write_text("not a video")
  video_root, split_dir = datasets.dataset_layout("ucf101", manual_dir)
  assert build._not_in_any_split("ucf101", video_root, split_dir, set()) == [  # pylint: disable=protected-access
      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01 (1).avi"]
  report = dict(dataset="ucf101", split=1, videos_in_split=13320, prepared_now=[], reused=4, failed={},
                missing=[], retried=[], not_in_any_split=["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01 (1).avi"],
                datasets={}, rebuilt={}, seconds=0.0, report_path="r.json")
  assert "in no split file (not used): 1: ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01 (1).avi" in _printed(report)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the processes through /proc")
@pytest.mark.parametrize("signum, flow", [(signal.SIGKILL, "dis"), (signal.SIGTERM, "dis"),
                                         (signal.SIGTERM, "tvl1")])
def test_killed_build_leaves_no_worker_behind_and_resumes(tmp_path, signum, flow):
  # Before: after kill -9 or SIGTERM both workers (and the resource tracker) lived on, prepared a few more
  # videos, then waited forever. TV-L1 by the JAX op: decoding threads, stopped with the build.
  manual_dir = make_mini_ucf101(tmp_path / "manual", corrupt=True)
  data_dir = tmp_path / "data"
  cache = datasets.cache_for(data_dir, "ucf101", ProcessOptions(flow=flow, short_side=64))
  marker = f"ARP_TEST_BUILD={uuid.uuid4().hex}"
  env = dict(os.environ, ARP_TEST_BUILD=marker.split("=")[1])
  stderr_path = tmp_path / "stderr.txt"  # a file, not a pipe: a leaked worker would hold a pipe open
  with open(stderr_path, "w") as stderr_file:
    process = subprocess.Popen(_command(manual_dir, data_dir, workers=2, flow=flow), env=env,
                               stdout=subprocess.DEVNULL, stderr=stderr_file)
  try:
    deadline = time.monotonic() + 120
    while not list(cache.root.rglob("*.npz")) and time.monotonic() < deadline and process.poll() is None:
      time.sleep(0.01)
    assert process.poll() is None, "the build ended before it could be interrupted"
    process.send_signal(signum)
    process.wait(timeout=60)
    stderr = stderr_path.read_text()
    if signum == signal.SIGTERM:  # handled as Ctrl-C: one message, no traceback
      assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert _processes_with(marker) == []
  finally:
    for pid in _processes_with(marker):  # what a failing run leaked
      os.kill(pid, signal.SIGKILL)
  done_before = {str(p.relative_to(cache.root))[:-len(".npz")] for p in cache.root.rglob("*.npz")}

  result = subprocess.run(_command(manual_dir, data_dir, flow=flow), capture_output=True, text=True, check=True)
  resumed = json.loads((data_dir / build.REPORT_FOLDER / "ucf101_split1.json").read_text())
  assert not done_before & set(resumed["prepared_now"])
  assert done_before | set(resumed["prepared_now"]) == set(UCF101_VIDEOS)
  assert _names(data_dir) == sorted(UCF101_VIDEOS)
  # Quiet in a log file: no progress bars (cursor codes), no "Downloading ... Unknown size" for a local build.
  assert "\r" not in result.stderr and "\x1b[" not in result.stderr
  assert "Unknown size" not in result.stdout and "Downloading" not in result.stdout


def test_second_build_into_the_same_data_dir_is_refused_in_one_line(tmp_path):
  # Before: both did all the work and one crashed with a 47-line traceback.
  manual_dir = make_mini_ucf101(tmp_path / "manual")
  data_dir = tmp_path / "data"
  lock = data_dir / datasets.CACHE_FOLDER / "ucf101.lock"
  first = subprocess.Popen(_command(manual_dir, data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  try:
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text() == str(first.pid)) and time.monotonic() < deadline:
      time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # holds the lock while the second one starts
    second = subprocess.run(_command(manual_dir, data_dir), capture_output=True, text=True, timeout=120)
  finally:
    first.send_signal(signal.SIGCONT)
  out, err = first.communicate(timeout=120)
  assert second.returncode == 2
  assert second.stderr.strip().count("\n") == 0 and "another build of ucf101" in second.stderr
  assert str(first.pid) in second.stderr
  assert first.returncode == 0, err
  assert "4 prepared now" in out and _names(data_dir) == sorted(UCF101_VIDEOS)


def _refuse_work(*args, **kwargs):
  raise AssertionError("videos were prepared before the mistake was reported")


def test_unwritable_data_dir_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
  # Before: a 77-line traceback after every video had been prepared.
  manual_dir = make_mini_ucf101(tmp_path / "manual")
  monkeypatch.setattr(build, "prepare_all", _refuse_work)
  (tmp_path / "a_file").write_text("")
  places = [tmp_path / "a_file" / "data"]
  if os.geteuid() != 0:  # root writes anywhere
    (tmp_path / "read_only").mkdir(mode=0o555)
    places.append(tmp_path / "read_only")
  for data_dir in places:
    assert cli.main(["build", *ARGS, "--manual_dir", str(manual_dir), "--data_dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arp-jax build: error: data_dir") and "not writable" in err and err.count("\n") == 1


def test_binary_split_file_is_one_line_naming_the_file(tmp_path, capsys):
  # Before: "error: 'utf-8' codec can't decode byte 0x89 in position 0", without the file.
  manual_dir = make_mini_ucf101(tmp_path / "manual")
  (manual_dir / "ucfTrainTestlist" / "trainlist01.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10)
  argv = ["build", *ARGS, "--manual_dir", str(manual_dir), "--data_dir", str(tmp_path / "data")]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert "trainlist01.txt" in err and "not a UTF-8 text file" in err and err.count("\n") == 1


def test_the_processes_of_one_training_run_wait_for_the_lock_instead(tmp_path):
  # build_mini (runlocal) runs in every process of a run: those wait for the first build, then reuse it.
  (tmp_path / datasets.CACHE_FOLDER).mkdir()
  holder = subprocess.Popen([sys.executable, "-c", (
      "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.write('7'); "
      "f.flush(); print('held', flush=True); time.sleep(1.5)"), str(tmp_path / datasets.CACHE_FOLDER / "ucf101.lock")],
      stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline() == "held\n"
  with pytest.raises(build.DataDirBusy, match=r"another build of ucf101 \(pid 7\)"):
    with build._lock(tmp_path, "ucf101", wait=False):  # pylint: disable=protected-access
      pass
  start = time.monotonic()
  with build._lock(tmp_path, "ucf101", wait=True):  # pylint: disable=protected-access
    assert time.monotonic() - start > 0.5  # it waited for the holder to end
  holder.wait()


def test_the_synthetic_build_is_quiet_in_a_log_file(tmp_path):
  # Before: TFDS's "Downloading and preparing dataset Unknown size" and progress bars (carriage returns
  # and cursor codes) in the main job's log.
  code = f"from data_prep import synthetic; synthetic.build({os.fspath(tmp_path)!r}, 'tiny')"
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO)
  assert result.returncode == 0, result.stderr
  output = result.stdout + result.stderr
  assert f"Writing synthetic_motion/tiny/{synthetic.SyntheticMotion.VERSION} into" in result.stdout
  assert "Unknown size" not in output and "\r" not in output and "\x1b[" not in output
