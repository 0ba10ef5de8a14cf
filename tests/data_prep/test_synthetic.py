"""The synthetic motion benchmark: classes, determinism, motion, time-reversal symmetry and the TFDS build.

Videos here are small (16 frames of 32 x 32) so that the file runs in seconds on 2 CPU cores.
"""

import collections
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import arp_jax
from arp_jax import flow as flow_lib
from data_prep import synthetic
from data_prep.synthetic import CLASSES, make_dataset, make_video

T, SIZE = 16, 32
_draw = synthetic._draw  # pylint: disable=protected-access  # make_video with the background and path it drew
AXIS = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}  # (0: x, 1: y), sign


def _label(name: str) -> int:
  return CLASSES.index(name)


def _direction(name: str) -> str:
  """The direction of a class or video name: "right" for "disk_right" and "disk_right/video_0001"."""
  return name.split("/")[0].split("_")[1]


def _foreground(drawn) -> np.ndarray:
  """float32 [T, H, W]: |frame - background| summed over colours, 0 below 30 (the pixel noise)."""
  fg = np.abs(drawn.frames.astype(np.float32) - drawn.background).sum(-1)
  return fg * (fg > 30)


def _centroid(weights: np.ndarray) -> np.ndarray:
  """(x, y) centroid of non-negative `float [H, W]` weights."""
  ys, xs = np.mgrid[:weights.shape[0], :weights.shape[1]]
  return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def test_classes_are_shape_times_direction():
  assert len(CLASSES) == len(set(CLASSES)) == 12
  assert CLASSES[:4] == ("disk_left", "disk_right", "disk_up", "disk_down") and CLASSES[-1] == "triangle_down"
  assert [synthetic.class_name(i) for i in range(12)] == list(CLASSES)


def test_dataset_is_balanced_and_labelled():
  videos = list(make_dataset(2, seed=3, num_frames=4, size=SIZE))
  assert collections.Counter(label for _, label, _ in videos) == {label: 2 for label in range(12)}
  assert [name for name, _, _ in videos[:3]] == ["disk_left/video_0000", "disk_left/video_0001",
                                                  "disk_right/video_0000"]
  for name, label, frames in videos:
    assert name.split("/")[0] == CLASSES[label]
    assert frames.shape == (4, SIZE, SIZE, 3) and frames.dtype == np.uint8


def test_deterministic_for_a_seed_and_different_across_seeds():
  first = make_video(5, np.random.default_rng(7), T, SIZE)
  np.testing.assert_array_equal(first, make_video(5, np.random.default_rng(7), T, SIZE))
  assert np.abs(first.astype(int) - make_video(5, np.random.default_rng(8), T, SIZE)).mean() > 10

  a = [frames for _, _, frames in make_dataset(1, seed=0, num_frames=T, size=SIZE)]
  b = [frames for _, _, frames in make_dataset(1, seed=0, num_frames=T, size=SIZE)]
  c = [frames for _, _, frames in make_dataset(1, seed=1, num_frames=T, size=SIZE)]
  for x, y, z in zip(a, b, c):
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, z)
  # A video does not depend on how many others are drawn: the first of 2 per class is the only one of 1.
  np.testing.assert_array_equal(next(make_dataset(2, 0, T, SIZE))[2], a[0])
  assert synthetic.split_seed(0, "train") != synthetic.split_seed(0, "test")


def test_paths_are_straight_constant_and_inside_the_frame():
  max_speed = synthetic._max_speed(T, SIZE)  # pylint: disable=protected-access
  for label, name in enumerate(CLASSES):
    axis, sign = AXIS[_direction(name)]
    for seed in range(5):
      drawn = _draw(label, np.random.default_rng(seed), T, SIZE)
      steps = np.diff(drawn.centres, axis=0)  # [T - 1, 2]
      np.testing.assert_allclose(steps[:, axis], sign * drawn.speed, atol=1e-9)
      np.testing.assert_allclose(steps[:, 1 - axis], 0.0, atol=1e-9)
      assert 0.5 * max_speed - 1e-9 <= drawn.speed <= max_speed + 1e-9
      assert 0.43 < drawn.speed < 0.87 and SIZE / 6 <= drawn.radius <= SIZE / 4
      assert drawn.centres.min() >= drawn.radius + 1 - 1e-9
      assert drawn.centres.max() <= SIZE - 2 - drawn.radius + 1e-9


def test_frames_show_the_shape_where_it_is_and_nothing_at_the_border():
  for label, name in enumerate(CLASSES):
    drawn = _draw(label, np.random.default_rng(label), T, SIZE, noise=0.0)
    frames = drawn.frames
    assert frames.shape == (T, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # textured, not flat
    # Without noise the border ring is pure background in every frame: the whole path is inside.
    ring = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    assert (ring == ring[:1]).all(), name
    # The shape is drawn centred where the path says: the centroid of the pixels that differ from the
    # background in each frame (a regular polygon's centroid is its centre; unweighted, since the texture
    # under the shape would pull a centroid weighted by |frame - background|) follows the path, so the
    # shape moves the labelled way.
    fg = _foreground(drawn)
    assert fg.max() > 90, name  # seen against the background
    centroids = np.stack([_centroid((f > 0).astype(np.float64)) for f in fg])
    # One polarity, brighter than the background (else a dark shape moving right would have nearly the
    # dynamic image of a bright one moving left).
    grey_difference = (frames.astype(np.float32) - drawn.background) @ np.float32([0.299, 0.587, 0.114])
    assert grey_difference[fg > 0].mean() > 30, name
    np.testing.assert_allclose(centroids, drawn.centres, atol=0.5, err_msg=name)
    axis, sign = AXIS[_direction(name)]
    assert sign * (centroids[-1] - centroids[0])[axis] > 6, name  # 15 frames at 0.43..0.87 px/frame


def test_a_random_frame_does_not_tell_the_axis():
  """The position of the shape in a random frame has the same law for horizontal and vertical motion."""
  # With the same random numbers a vertical path is the horizontal one with x and y swapped ...
  for shape in synthetic.SHAPES:
    right = _draw(_label(f"{shape}_right"), np.random.default_rng(4), T, SIZE)
    down = _draw(_label(f"{shape}_down"), np.random.default_rng(4), T, SIZE)
    np.testing.assert_array_equal(down.centres, right.centres[:, ::-1])
    np.testing.assert_array_equal(down.background, right.background)
  # ... and x and y of a horizontal path are alike in law: along it, a uniform centre plus a uniform step of
  # the path; across it, the same. Without the offset across the path its spread would be ~0.4 of along.
  centres = np.concatenate([_draw(_label("disk_right"), np.random.default_rng(seed), T, SIZE, noise=0.0).centres
                            for seed in range(100)])
  along, across = centres[:, 0], centres[:, 1]
  assert 0.85 < across.std() / along.std() < 1.15, (across.std(), along.std())
  assert abs(across.mean() - along.mean()) < 1.0 and abs(along.mean() - (SIZE - 1) / 2) < 1.0


def test_opposite_directions_are_time_reversals():
  """The same random numbers give the reversed video: the two directions have the same distribution of
  frames and of mean images, so neither a frame nor the mean image tells them apart; the dynamic image does."""
  for positive, negative in (("square_right", "square_left"), ("triangle_down", "triangle_up")):
    forward = _draw(_label(positive), np.random.default_rng(11), T, SIZE)
    backward = _draw(_label(negative), np.random.default_rng(11), T, SIZE)
    np.testing.assert_array_equal(backward.frames, forward.frames[::-1])
    np.testing.assert_array_equal(forward.frames.sum(0, dtype=np.int64),  # the mean images, exactly
                                  backward.frames.sum(0, dtype=np.int64))

    # The ARP weights sum to zero, so the static background cancels and what is left is the motion: the
    # reversed video's dynamic image is another image (uncorrelated for eq. 3's harmonic weights, whose
    # largest magnitudes are on the first frames) and exactly the negative one for eq. 5's linear weights.
    di_forward = np.asarray(arp_jax.pool(forward.frames))
    di_backward = np.asarray(arp_jax.pool(backward.frames))
    assert np.linalg.norm(di_forward - di_backward) > 0.8 * np.linalg.norm(di_forward)
    assert np.corrcoef(di_forward.ravel(), di_backward.ravel())[0, 1] < 0.3
    np.testing.assert_allclose(arp_jax.pool(backward.frames, "arp_linear"),
                               -arp_jax.pool(forward.frames, "arp_linear"), atol=1e-2)
    # The dynamic image of the shape's trace weighs late frames positively and early ones negatively: its
    # positive part lies ahead of its negative part along the motion.
    axis, _ = AXIS[_direction(positive)]
    for drawn, sign in ((forward, 1), (backward, -1)):
      di = np.asarray(arp_jax.pool(_foreground(drawn)[..., None]))[..., 0]
      ahead = _centroid(np.maximum(di, 0)) - _centroid(np.maximum(-di, 0))
      assert sign * ahead[axis] > 3, (positive, sign, ahead)


def test_bad_arguments_are_refused():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="label is 12"):
    make_video(12, rng)
  with pytest.raises(ValueError, match="label is True"):
    make_video(True, rng)
  with pytest.raises(ValueError, match="np.random.Generator"):
    make_video(0, 0)
  with pytest.raises(ValueError, match="num_frames is 1"):
    make_video(0, rng, num_frames=1)
  with pytest.raises(ValueError, match="size is 8"):
    make_video(0, rng, size=8)
  with pytest.raises(ValueError, match="noise is -1"):
    make_video(0, rng, noise=-1.0)
  with pytest.raises(ValueError, match="num_per_class is 0"):
    next(make_dataset(0, 0))
  with pytest.raises(ValueError, match="seed is -1"):
    next(make_dataset(1, -1))
  with pytest.raises(ValueError, match="flow is 'none'.*'tvl1', 'tvl1_opencv', 'farneback', 'dis'"):
    synthetic.SyntheticMotionConfig(name="x", flow="none")
  with pytest.raises(ValueError, match="num_per_class_test is 0"):
    synthetic.SyntheticMotionConfig(name="x", num_per_class_test=0)
  with pytest.raises(ValueError, match="noise is 'a'"):
    synthetic.SyntheticMotionConfig(name="x", noise="a")
  with pytest.raises(ValueError, match="config is 'small'"):
    synthetic.build("/nonexistent", "small")
  with pytest.raises(ValueError, match="split is 'val'"):
    synthetic.split_seed(0, "val")


@pytest.mark.parametrize("method, identity", [("tvl1", "tvl1-jax"), ("tvl1_opencv", "tvl1"), ("dis", "dis")])
def test_the_metadata_names_the_flow_by_its_identity(tmp_path, method, identity):
  # As the UCF101 datasets do (data_prep.process.ProcessOptions.flow_identity): "tvl1" was OpenCV's before
  # the JAX op took the name, so a dataset of either is never read as the other's.
  config = synthetic.SyntheticMotionConfig(name=f"tiny_{method}", flow=method)
  builder = synthetic.SyntheticMotion(config=config, data_dir=os.fspath(tmp_path), file_format="array_record")
  assert builder.info.metadata["flow"] == identity


def test_tfds_build_reads_back_like_ucf101_frames(tmp_path):
  config = synthetic.SyntheticMotion.builder_configs["tiny"]  # the runlocal dataset
  assert (config.num_per_class_train, config.num_per_class_test, config.num_frames, config.size) == (2, 1, T, SIZE)
  builder = synthetic.build(tmp_path, "tiny")
  assert builder.info.splits["train"].num_examples == 24 and builder.info.splits["test"].num_examples == 12
  assert builder.info.metadata["flow"] == "farneback" and builder.info.metadata["flow_bound"] == 20.0

  # The same on-disk features as the UCF101 frames builder, so one training pipeline reads both.
  ucf = tfds.builder("ucf101_frames/split1", data_dir=os.fspath(tmp_path / "ucf")).info.features
  ours = builder.info.features
  assert ours.get_serialized_info() == ucf.get_serialized_info()
  for key in ("frames", "flow_x", "flow_y"):
    assert ours[key].feature.shape == ucf[key].feature.shape
    assert ours[key].feature.encoding_format == "jpeg"
  assert ours["label"].names == list(CLASSES)

  sources = tfds.data_source("synthetic_motion/tiny", data_dir=os.fspath(tmp_path))
  assert (len(sources["train"]), len(sources["test"])) == (24, 12)
  errors, along = [], []  # per video: JPEG error of the frames; mean flow along the motion on the shape
  for split, per_class in (("train", 2), ("test", 1)):
    generated = {name: (label, frames) for name, label, frames in
                 make_dataset(per_class, synthetic.split_seed(0, split), T, SIZE)}
    examples = {bytes(x["name"]).decode(): x for x in sources[split]}
    assert sorted(examples) == sorted(generated)
    for name, x in examples.items():
      label, frames = generated[name]
      assert x["label"] == label and x["fps"] == 25.0 and x["num_frames"] == T
      assert len(x["frames"]) == T and len(x["flow_x"]) == len(x["flow_y"]) == T - 1
      stored = np.stack(x["frames"])
      assert stored.shape == (T, SIZE, SIZE, 3)
      errors.append(np.abs(stored.astype(int) - frames).mean())
      # The flow where the shape is points along the motion (dequantised: bound 20 px, 128 = no motion).
      axis, sign = AXIS[_direction(name)]
      flow = flow_lib.dequantize(np.stack(x["flow_x" if axis == 0 else "flow_y"])[..., 0])
      changed = np.abs(frames[1:].astype(int) - frames[:-1]).sum(-1) > 30  # where the shape came or went
      along.append(sign * flow[changed].mean())
  # JPEG quality 95 with 4:2:0 chroma: coloured shapes on 32 x 32 frames lose a bit more than real video.
  assert np.mean(errors) < 3.5 and max(errors) < 4.5, errors
  # Farneback (on grey frames: hence the shape's least luma contrast) finds most of the motion (0.94 of it on average).
  assert min(along) > 0.3 and np.mean(along) > 0.5, along  # px/frame; the shapes move at 0.43..0.87


def test_four_stream_claims_and_a_missing_dataset(tmp_path, capsys):
  """`arp-jax four-stream` checks the paper's claims, the flow streams against their ceilings, and reads
  a prepared dataset: without one it stops at once with one line naming the command that prepares it."""
  from arp_jax import cli  # pylint: disable=import-outside-toplevel
  from arp_jax.synthetic_benchmark import ceiling, claims, targets  # pylint: disable=import-outside-toplevel
  # 12 classes = 3 shapes x 4 directions: a frame tells the shape, a mean image the axis too.
  assert (ceiling("SI"), ceiling("mean"), ceiling("DI"), ceiling("SI + OF")) == (0.25, 0.5, 1.0, 1.0)
  streams = {"SI": 0.24, "DI": 0.95, "mean": 0.48, "OF": 0.97, "DOF": 0.9}
  results = {"streams": {name: {"mean_class_accuracy": a} for name, a in streams.items()},
             "fusion": [{"streams": "SI + DI + OF + DOF", "mean_class_accuracy": 0.98}]}
  assert claims(results) == {"DI > SI": True, "DI > mean image": True, "SI + DI + OF + DOF >= best single stream": True}
  assert all(targets(results).values()), targets(results)
  results["streams"]["DOF"]["mean_class_accuracy"] = 0.89
  results["fusion"][0]["mean_class_accuracy"] = 0.96
  assert [claim for claim, holds in claims(results).items() if not holds] == ["SI + DI + OF + DOF >= best single stream"]
  assert [target for target, met in targets(results).items() if not met] == ["DOF >= 90 %"]

  assert cli.main(["four-stream", "--workdir", str(tmp_path / "runs"), "--runlocal"]) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and "not prepared" in lines[0], lines
  assert f"arp-jax synthetic-data --data-dir {tmp_path / 'runs' / 'data'} --variant tiny" in lines[0], lines
  assert not (tmp_path / "runs" / "si" / "config.json").exists()


def test_the_dataset_does_not_depend_on_the_number_of_threads_that_prepare_it(tmp_path):
  # Videos are prepared on `workers` threads (`data_prep.threads.map_in_order`), in order.
  built = {}
  for workers in (1, 3):
    synthetic.build(tmp_path / str(workers), "tiny", workers=workers)
    sources = tfds.data_source("synthetic_motion/tiny", data_dir=os.fspath(tmp_path / str(workers)))
    built[workers] = [(bytes(x["name"]), int(x["label"]),
                       *(np.stack(x[key]).tobytes() for key in ("frames", "flow_x", "flow_y")))
                      for split in ("train", "test") for x in sources[split]]
  assert built[1] == built[3]
  with pytest.raises(ValueError, match="workers is 0"):
    synthetic.build(tmp_path / "0", "tiny", workers=0)
