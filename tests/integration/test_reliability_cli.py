"""Issue 15 ("Nothing silent, nothing lost"), video and command-line points: a truncated video is never
passed off as a shorter one, and user mistakes on the command line give one line and status 2."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from arp_jax import video
from arp_jax.scores import Scores, load_scores, save_scores
from data_prep.build import prepare_all
from data_prep.cache import VideoCache
from data_prep.process import ProcessOptions
from cli_helpers import assert_usage_error as _assert_usage_error, run as _run

from paths import REPO
CLIPS = REPO / "tests" / "data" / "clips"
UCF_CLIP = CLIPS / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
SHIPPED_CLIPS = sorted(CLIPS.glob("*/*.avi"))


# Root writes into read-only folders; without these capabilities it meets their permissions like anyone.
_AS_UNPRIVILEGED_ROOT = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                         "--inh-caps=-dac_override,-dac_read_search"]


def _subprocess(*argv, prefix=()):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
  return subprocess.run([*prefix, sys.executable, *map(str, argv)], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300)


def _assert_one_line_error(result, *fragments):
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  for fragment in fragments:
    assert fragment in result.stderr


@pytest.fixture(scope="module")
def truncated_clip(tmp_path_factory):
  """The first 30 % of the bytes of the 164-frame UCF101 clip: it decodes to 44 frames, without an error."""
  path = tmp_path_factory.mktemp("truncated") / "v_ApplyEyeMakeup_g01_c01.avi"
  data = UCF_CLIP.read_bytes()
  path.write_bytes(data[: int(len(data) * 0.3)])
  return path


# arp_jax.video --------------------------------------------------------------------------------------------


def test_a_truncated_video_raises_truncated_video_error_with_both_frame_counts(truncated_clip):
  with pytest.raises(video.TruncatedVideoError, match=r"v_ApplyEyeMakeup_g01_c01\.avi.*44 of the 164") as info:
    video.decode(truncated_clip)
  assert isinstance(info.value, ValueError)  # every `except ValueError` for a corrupt video still applies
  assert (info.value.decoded, info.value.declared) == (44, 164)
  with pytest.raises(video.TruncatedVideoError):
    video.read_frames(truncated_clip)
  with pytest.raises(video.TruncatedVideoError):
    video.read_video(truncated_clip)


def test_not_strict_decode_keeps_the_decoded_frames_and_says_why(truncated_clip):
  decoded = video.decode(truncated_clip, strict=False)
  assert decoded.frames.shape == (44, 240, 320, 3)
  assert "44 of the 164" in decoded.truncated
  # The last frame was cut part-way through its data: only those before it are the clip's.
  np.testing.assert_array_equal(decoded.frames[:43], video.decode(UCF_CLIP).frames[:43])


@pytest.mark.parametrize("path", SHIPPED_CLIPS, ids=lambda p: p.parent.name + "/" + p.name[:24])
def test_every_shipped_clip_is_complete_despite_the_hmdb51_off_by_one(path):
  assert len(SHIPPED_CLIPS) == 4
  decoded = video.decode(path, strict=False)
  assert decoded.truncated == ""
  assert len(video.decode(path).frames) == len(decoded.frames)


def test_max_frames_decodes_only_the_start_and_a_cut_file_is_whole_there(truncated_clip):
  # The first 20 frames of the cut file are intact: nothing to report.
  first = video.decode(truncated_clip, max_frames=20)
  np.testing.assert_array_equal(first.frames, video.decode(UCF_CLIP).frames[:20])
  with pytest.raises(video.TruncatedVideoError):
    video.decode(truncated_clip, max_frames=100)
  with pytest.raises(ValueError, match="max_frames is 0; expected a positive int"):
    video.decode(UCF_CLIP, max_frames=0)


class _FailingStream:
  """A container whose decoder fails after `good` frames, as FFmpeg does on a damaged packet."""

  def __init__(self, good: int):
    self.good = good
    self.streams = type("Streams", (), {"video": [object()]})()

  def decode(self, _):
    for _ in range(self.good):
      yield "frame"
    raise av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input")


def test_a_decoder_error_part_way_is_truncation_and_at_the_start_is_corruption():
  frames = video._decoded_frames(_FailingStream(3), Path("cut.avi"))  # pylint: disable=protected-access
  assert [next(frames) for _ in range(3)] == ["frame"] * 3
  with pytest.raises(video.TruncatedVideoError, match=r"'cut\.avi'.*after 3 frames.*Invalid data"):
    next(frames)
  with pytest.raises(ValueError, match=r"cannot decode 'cut\.avi' after 0 frames") as info:
    list(video._decoded_frames(_FailingStream(0), Path("cut.avi")))  # pylint: disable=protected-access
  assert not isinstance(info.value, video.TruncatedVideoError)


# The build ------------------------------------------------------------------------------------------------


def test_the_build_skips_a_truncated_video_and_reports_why(truncated_clip, tmp_path):
  root = tmp_path / "videos"
  (root / "ApplyEyeMakeup").mkdir(parents=True)
  (root / "ApplyEyeMakeup" / "cut.avi").write_bytes(truncated_clip.read_bytes())
  (root / "ApplyEyeMakeup" / "whole.avi").write_bytes(UCF_CLIP.read_bytes())
  cache = VideoCache(tmp_path / "cache")
  outcomes = prepare_all(["ApplyEyeMakeup/cut.avi", "ApplyEyeMakeup/whole.avi"], root, cache,
                         ProcessOptions(flow="none"), workers=1)
  cut, whole = outcomes
  assert (cut.status, whole.status) == ("failed", "done")
  assert cut.detail.startswith("TruncatedVideoError:") and "44 of the 164" in cut.detail
  assert cache.failure("ApplyEyeMakeup/cut.avi") == cut.detail  # kept for the report of a resumed build
  assert cache.load("ApplyEyeMakeup/whole.avi").num_frames == 164


# arp-jax pool / figure --------------------------------------------------------------------------------------


def test_pool_warns_about_a_truncated_video_on_one_line_and_goes_on(truncated_clip, tmp_path, capsys):
  out = tmp_path / "di.png"
  status, stdout, err = _run(["pool", truncated_clip, "-o", out], capsys)
  assert status == 0, err
  assert out.is_file() and "read 44 frames" in stdout
  assert len(err.strip().splitlines()) == 1, err
  assert err.startswith("arp-jax pool: warning:") and "truncated" in err and "44 of the 164" in err


def test_pool_says_nothing_about_a_complete_video(tmp_path, capsys):
  status, _, err = _run(["pool", UCF_CLIP, "-o", tmp_path / "di.png"], capsys)
  assert (status, err) == (0, "")


def test_figure_warns_about_a_truncated_video_only_when_it_reads_past_the_cut(truncated_clip, tmp_path, capsys):
  status, stdout, err = _run(["figure", truncated_clip, "-o", tmp_path / "a.png", "--max-frames", 60], capsys)
  assert status == 0, err
  assert "44 frames" in stdout
  assert len(err.strip().splitlines()) == 1 and err.startswith("arp-jax figure: warning:") and "44 of the 164" in err
  status, stdout, err = _run(["figure", truncated_clip, "-o", tmp_path / "b.png", "--max-frames", 8], capsys)
  assert (status, err) == (0, "") and "8 frames" in stdout


@pytest.mark.parametrize("command, option", [
    ("pool", "--window"), ("pool", "--stride"), ("figure", "--max-frames"), ("convert", "--num-classes")])
def test_negative_counts_are_called_not_positive(command, option, tmp_path, capsys):
  inputs = {"pool": [UCF_CLIP, "-o", tmp_path / "x.png", "--window", "2"],
            "figure": [UCF_CLIP, "-o", tmp_path / "x.png"],
            "convert": ["--arch", "caffenet", tmp_path / "in.npz", tmp_path / "out"]}[command]
  status, _, err = _run([command, *inputs, option, "-3"], capsys)
  _assert_usage_error(status, err, option, "expected a positive integer, got '-3'")
  assert "non-negative" not in err


def test_a_negative_start_is_called_not_non_negative(tmp_path, capsys):
  status, _, err = _run(["pool", UCF_CLIP, "-o", tmp_path / "x.png", "--start", "-1"], capsys)
  _assert_usage_error(status, err, "--start", "expected a non-negative integer, got '-1'")


# python -m arp_jax.fuse -------------------------------------------------------------------------------------


@pytest.fixture
def two_streams(tmp_path):
  scores = Scores(["a/1.avi", "b/2.avi"], [0, 1], [[2.0, 0.0], [0.0, 2.0]])
  return [save_scores(tmp_path / "SI.npz", scores), save_scores(tmp_path / "DI.npz", scores)]


def _unwritable_folder(kind: str, tmp_path) -> tuple[Path, list[str]]:
  """A folder where no file can be created, and the command prefix that makes it so."""
  if kind == "read-only folder":
    prefix = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
      if shutil.which("setpriv") is None:
        pytest.skip("root may write into a read-only folder, and setpriv is not there to prevent it")
      prefix = _AS_UNPRIVILEGED_ROOT
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder, prefix
  if not Path("/proc/self").is_dir():
    pytest.skip("needs Linux /proc, where no file can be created")
  return Path("/proc"), []


@pytest.mark.parametrize("kind", ["read-only folder", "/proc"])
def test_fuse_output_into_an_unwritable_folder_fails_before_the_table(kind, two_streams, tmp_path):
  folder, prefix = _unwritable_folder(kind, tmp_path)
  try:
    result = _subprocess("-m", "arp_jax.fuse", *two_streams, "--output", folder / "fused.npz", prefix=prefix)
  finally:
    if folder != Path("/proc"):
      folder.chmod(0o755)
  _assert_one_line_error(result, "--output", "cannot write", str(folder))
  assert result.stdout == ""  # checked before the work, not after the table
  assert not (folder / "fused.npz").exists()


@pytest.mark.parametrize("where", ["missing folder", "a file as folder", "an existing folder"])
def test_fuse_output_in_a_wrong_place_fails_before_the_table(where, two_streams, tmp_path):
  output = {"missing folder": tmp_path / "missing" / "fused.npz",
            "a file as folder": two_streams[0] / "fused.npz",
            "an existing folder": tmp_path}[where]
  result = _subprocess("-m", "arp_jax.fuse", *two_streams, "--output", output)
  _assert_one_line_error(result, "--output", str(output))
  assert result.stdout == ""


def test_fuse_given_a_folder_says_it_is_a_folder(two_streams, tmp_path):
  result = _subprocess("-m", "arp_jax.fuse", two_streams[0], tmp_path)
  _assert_one_line_error(result, repr(str(tmp_path)), "is a folder", "expected a scores file")
  assert "does not exist" not in result.stderr
  with pytest.raises(ValueError, match="is a folder; expected a scores file"):
    load_scores(tmp_path)
