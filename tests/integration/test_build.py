"""The data_prep pipeline end to end on a miniature UCF101 of real clips: decode -> flow -> JPEG -> TFDS.

Builds use DIS flow at a 64-pixel short side so that CI stays fast, and TV-L1 by the JAX op, which has a
path of its own (videos decoded by threads, flow in batches across videos: data_prep.batched_flow), once.
"""

import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

import arp_jax
from arp_jax import cli, flow
from arp_jax.video import decode
from data_prep import build, datasets
from data_prep.dynamic import dynamic_images, to_uint8
from data_prep.process import ProcessOptions, flow_jpegs
from data_prep.mini import UCF101_CORRUPT, UCF101_VIDEOS, make_mini_hmdb51, make_mini_ucf101

OPTIONS = ProcessOptions(flow="dis", short_side=64)
TVL1 = ProcessOptions(flow="tvl1", short_side=64)
ARGS = ["--dataset", "ucf101", "--flow", "dis", "--short_side", "64", "--workers", "1"]


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory) -> Path:
  return make_mini_ucf101(tmp_path_factory.mktemp("ucf101"), corrupt=True)


@pytest.fixture(scope="module")
def built(manual_dir, tmp_path_factory):
  """(data_dir, report) of one uninterrupted build with two dynamic-image sets."""
  data_dir = tmp_path_factory.mktemp("data")
  report = build.build_datasets("ucf101", 1, manual_dir, data_dir, OPTIONS, ("rgb_w10s6", "flow_single"))
  return data_dir, report


def _examples(data_dir, name: str) -> dict:
  """{video name: example} of both splits of a built dataset, read with tfds.data_source."""
  sources = tfds.data_source(name, data_dir=os.fspath(data_dir))
  return {bytes(x["name"]).decode(): x for split in ("train", "test") for x in sources[split]}


def test_report_names_every_video(built):
  _, report = built
  assert sorted(report["prepared_now"]) == sorted(UCF101_VIDEOS) and report["reused"] == 0
  assert list(report["failed"]) == [UCF101_CORRUPT]
  assert "cannot open" in report["failed"][UCF101_CORRUPT]
  assert len(report["missing"]) == 13320 - len(UCF101_VIDEOS) - 1
  assert report["datasets"]["ucf101_frames/split1"] == {"train": 2, "test": 2}
  assert Path(report["report_path"]).is_file()


def test_frames_dataset_holds_the_decoded_frames_and_flow(built, manual_dir):
  data_dir, _ = built
  examples = _examples(data_dir, "ucf101_frames/split1")
  assert sorted(examples) == sorted(UCF101_VIDEOS)
  info = tfds.builder("ucf101_frames/split1", data_dir=os.fspath(data_dir)).info
  assert info.features["label"].names[:2] == ["ApplyEyeMakeup", "ApplyLipstick"]
  assert info.metadata["flow"] == "dis" and info.metadata["short_side"] == 64
  name = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
  x = examples[name]
  video = decode(manual_dir / "UCF-101" / name, short_side=64)
  assert (x["label"], x["fps"], x["num_frames"]) == (0, 25.0, 164) == (0, video.fps, len(video.frames))
  frames = np.stack(x["frames"])
  assert frames.shape == (164, 64, 85, 3)
  assert np.abs(frames.astype(int) - video.frames).mean() < 2.0  # JPEG quality 95
  codes = flow.quantize(flow.compute_flow(video.frames, "dis"))
  stored = np.concatenate([np.stack(x["flow_x"]), np.stack(x["flow_y"])], axis=-1)
  assert stored.shape == codes.shape == (163, 64, 85, 2)
  assert np.abs(stored.astype(int) - codes).mean() < 1.0


def test_dynamic_image_datasets(built, manual_dir):
  data_dir, _ = built
  examples = _examples(data_dir, "ucf101_dynamic_images/split1_rgb_w10s6")
  for name, start in (("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),  # test: windows from frame 1
                      ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 2)):  # train: from frame 3
    frames = decode(manual_dir / "UCF-101" / name, short_side=64).frames
    expected, low, high = to_uint8(dynamic_images(frames, 10, 6, start))
    x = examples[name]
    assert len(x["images"]) == arp_jax.num_windows(len(frames), 10, 6, start)
    np.testing.assert_allclose(x["low"], low, rtol=1e-6)
    np.testing.assert_allclose(x["high"], high, rtol=1e-6)
    assert np.abs(np.stack(x["images"]).astype(int) - expected).mean() < 2.5
  flows = _examples(data_dir, "ucf101_dynamic_images/split1_flow_single")
  x = flows["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"]
  assert len(x["images_x"]) == len(x["images_y"]) == 1 and x["images_x"][0].shape == (64, 85, 1)
  assert x["num_frames"] == 164


def test_build_again_changes_nothing(built, manual_dir):
  data_dir, _ = built
  records = sorted(Path(data_dir).rglob("*.array_record*"))
  stamps = [p.stat().st_mtime_ns for p in records]
  report = build.build_datasets("ucf101", 1, manual_dir, data_dir, OPTIONS, ("rgb_w10s6", "flow_single"))
  assert report["prepared_now"] == [] and report["reused"] == len(UCF101_VIDEOS)
  assert list(report["failed"]) == [UCF101_CORRUPT]
  assert [p.stat().st_mtime_ns for p in records] == stamps


def test_killed_build_resumes_without_redoing_videos(built, manual_dir, tmp_path):
  """SIGKILL the command once the first video is cached, run it again: same datasets, no video twice."""
  data_dir = tmp_path / "data"
  command = [sys.executable, "-m", "data_prep.build", *ARGS, "--manual_dir", str(manual_dir), "--data_dir",
             str(data_dir)]
  cache = datasets.cache_for(data_dir, "ucf101", OPTIONS)
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while not list(cache.root.rglob("*.npz")) and time.monotonic() < deadline and process.poll() is None:
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  done_before = {str(p.relative_to(cache.root))[:-len(".npz")] for p in cache.root.rglob("*.npz")}
  assert 1 <= len(done_before) < len(UCF101_VIDEOS), "the build was not interrupted midway"
  assert not (data_dir / "ucf101_frames" / "split1" / "1.0.0").exists()

  result = subprocess.run(command, capture_output=True, text=True, check=True)
  assert "prepared now" in result.stdout
  resumed = json.loads((data_dir / build.REPORT_FOLDER / "ucf101_split1.json").read_text())
  assert not done_before & set(resumed["prepared_now"])  # nothing done before the kill was done again
  assert done_before | set(resumed["prepared_now"]) == set(UCF101_VIDEOS)
  assert list(resumed["failed"]) == [UCF101_CORRUPT]
  uninterrupted = _examples(built[0], "ucf101_frames/split1")
  for name, x in _examples(data_dir, "ucf101_frames/split1").items():
    for key in ("label", "fps", "num_frames"):
      assert x[key] == uninterrupted[name][key]
    for key in ("frames", "flow_x", "flow_y"):
      np.testing.assert_array_equal(np.stack(x[key]), np.stack(uninterrupted[name][key]))


def test_apache_beam_build_equals_local_build(built, manual_dir, tmp_path):
  """The same builders under TFDS's Beam support (DirectRunner) write the same examples."""
  report = build.build_datasets("ucf101", 1, manual_dir, tmp_path, OPTIONS,
                                beam_options="runner=DirectRunner,direct_num_workers=1")
  assert report["datasets"]["ucf101_frames/split1"] == {"train": 2, "test": 2}
  assert list(report["failed"]) == [UCF101_CORRUPT]  # the Beam workers recorded it in the cache
  local = _examples(built[0], "ucf101_frames/split1")
  beam = _examples(tmp_path, "ucf101_frames/split1")
  assert sorted(beam) == sorted(local)
  for name, x in beam.items():
    assert x["label"] == local[name]["label"]
    for key in ("frames", "flow_x", "flow_y"):
      np.testing.assert_array_equal(np.stack(x[key]), np.stack(local[name][key]))


def test_layouts_and_bad_input(tmp_path, manual_dir, capsys):
  hmdb = make_mini_hmdb51(tmp_path / "hmdb51")
  assert datasets.dataset_layout("hmdb51", hmdb) == (hmdb, hmdb / "testTrainMulti_7030_splits")
  assert datasets.dataset_layout("ucf101", manual_dir) == (manual_dir / "UCF-101", manual_dir / "ucfTrainTestlist")
  with pytest.raises(FileNotFoundError, match="manual_dir .* does not exist"):
    datasets.dataset_layout("ucf101", tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="no split folder"):
    datasets.dataset_layout("ucf101", hmdb)
  with pytest.raises(FileNotFoundError, match="videos of the split are missing"):
    build.build_datasets("ucf101", 1, manual_dir, tmp_path / "data", OPTIONS, require_all=True)
  with pytest.raises(ValueError, match="unknown"):
    build.build_datasets("ucf101", 1, manual_dir, tmp_path / "data", OPTIONS, ("rgb_w9",))
  with pytest.raises(ValueError, match="needs flow"):
    build.build_datasets("ucf101", 1, manual_dir, tmp_path / "data", ProcessOptions(flow="none"), ("flow_single",))
  assert cli.main(["build", "--dataset", "hmdb51", "--manual_dir", str(tmp_path / "nowhere"), "--data_dir",
                   str(tmp_path)]) == 2
  assert "does not exist" in capsys.readouterr().err


def test_other_options_are_refused_on_an_existing_dataset(built, manual_dir):
  with pytest.raises(ValueError, match="built with other options"):
    build.build_datasets("ucf101", 1, manual_dir, built[0], ProcessOptions(flow="farneback", short_side=64))


def _refuse_work(*args, **kwargs):
  raise AssertionError("videos were prepared before the dataset was refused")


def test_opencv_tvl1_data_of_the_old_name_is_never_taken_for_the_jax_ops(built, manual_dir, tmp_path,
                                                                          monkeypatch):
  # "tvl1" named OpenCV's DualTVL1 before the JAX op took the name: its cache folder and dataset metadata
  # say "tvl1". They stay OpenCV's; the JAX op's data has an identity of its own.
  assert ProcessOptions(flow="tvl1_opencv", short_side=64).tag == "flow-tvl1_bound-20_side-64_q95"
  assert TVL1.tag == "flow-tvl1-jax_bound-20_side-64_q95"
  data_dir = tmp_path / "data"
  shutil.copytree(built[0], data_dir)
  metadata = data_dir / "ucf101_frames" / "split1" / "1.0.0" / "metadata.json"
  metadata.write_text(json.dumps(dict(json.loads(metadata.read_text()), flow="tvl1")))  # an old dataset
  monkeypatch.setattr(build, "prepare_all", _refuse_work)
  with pytest.raises(ValueError, match=r"built with other options .*'flow': \('tvl1', 'tvl1-jax'\)"):
    build.build_datasets("ucf101", 1, manual_dir, data_dir, TVL1)
  opencv = ProcessOptions(flow="tvl1_opencv", short_side=64)
  builder = datasets.BUILDERS["ucf101", "frames"](config="split1", data_dir=os.fspath(data_dir), options=opencv,
                                                  file_format="array_record")
  build._check_existing(builder, opencv)  # pylint: disable=protected-access  # OpenCV's, and taken as such


@pytest.fixture(scope="module")
def built_tvl1(manual_dir, tmp_path_factory):
  """(data_dir, report) of one build with TV-L1 by the JAX op (two frame sizes: 64x85 and 64x113)."""
  data_dir = tmp_path_factory.mktemp("data_tvl1")
  return data_dir, build.build_datasets("ucf101", 1, manual_dir, data_dir, TVL1)


def test_tvl1_build_stores_the_jax_ops_flow_and_skips_the_corrupt_video(built_tvl1, manual_dir):
  data_dir, report = built_tvl1
  assert sorted(report["prepared_now"]) == sorted(UCF101_VIDEOS)
  assert list(report["failed"]) == [UCF101_CORRUPT] and "cannot open" in report["failed"][UCF101_CORRUPT]
  assert report["datasets"]["ucf101_frames/split1"] == {"train": 2, "test": 2}
  assert tfds.builder("ucf101_frames/split1", data_dir=os.fspath(data_dir)).info.metadata["flow"] == "tvl1-jax"
  cache = datasets.cache_for(data_dir, "ucf101", TVL1)
  for name in {clip: name for name, clip in UCF101_VIDEOS.items()}.values():  # each clip once
    frames = decode(manual_dir / "UCF-101" / name, short_side=64).frames
    record = cache.load(name)
    assert record.num_frames == len(frames) and len(record.flow_x) == len(frames) - 1
    # Byte for byte: the batches across videos give each pair what the op gives it in one video's batch.
    assert (record.flow_x, record.flow_y) == flow_jpegs(flow.compute_flow(frames, "tvl1"), TVL1), name


def test_hmdb51_build_without_flow(tmp_path):
  manual = make_mini_hmdb51(tmp_path / "hmdb51")
  options = ProcessOptions(flow="none", short_side=64)
  report = build.build_datasets("hmdb51", 1, manual, tmp_path / "data", options,
                                ("rgb_single", "rgb_single_max"))
  assert report["datasets"]["hmdb51_frames/split1"] == {"train": 2, "test": 1}
  assert len(report["missing"]) == 51 * 100 - 3
  examples = _examples(tmp_path / "data", "hmdb51_frames/split1")
  punch = examples["punch/AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi"]
  assert punch["label"] == 27 and punch["num_frames"] == len(punch["frames"]) == 172  # HMDB51_CLASSES order
  assert punch["flow_x"] == [] and punch["fps"] == 30.0
  single = _examples(tmp_path / "data", "hmdb51_dynamic_images/split1_rgb_single")
  assert all(len(x["images"]) == 1 for x in single.values())
  # Table 1's max image: stored in the frames' range, 0..255, so its 8-bit image is the max image itself.
  name = "punch/AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi"
  maximum = _examples(tmp_path / "data", "hmdb51_dynamic_images/split1_rgb_single_max")[name]
  assert (list(maximum["low"]), list(maximum["high"])) == ([0.0], [255.0])
  frames = decode(manual / name, short_side=64).frames
  assert np.abs(maximum["images"][0].astype(int) - frames.max(0)).mean() < 2.0  # JPEG error
  # Without a single usable test video there is no test split to write: say so instead of a TFDS error.
  (manual / "punch" / "AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi").unlink()
  with pytest.raises(ValueError, match="no usable test video"):
    build.build_datasets("hmdb51", 1, manual, tmp_path / "other", options)
