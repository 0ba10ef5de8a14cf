"""The input pipeline: the reference's window sampling, crops and flips, decoding, Grain batching and resuming.

The pipelines run on a tiny synthetic_motion build (12 classes x 1 video per split, 16 frames of 32 x 32)
with 0 workers and small outputs, so the file takes a few seconds on 2 CPU cores and compiles nothing.
"""

import json

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import arp_jax
from arp_jax import input_pipeline as ip
from arp_jax import normalization
from data_prep import synthetic
from data_prep.dynamic import dynamic_images, to_uint8
from data_prep.jpeg import encode_jpeg

NAME = "synthetic_motion/pipeline_test"
T, FRAME = 16, 32  # frames per video, frame side


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  synthetic.build(path, synthetic.SyntheticMotionConfig(
      name="pipeline_test", num_per_class_train=1, num_per_class_test=1, num_frames=T, size=FRAME))
  return path


@pytest.fixture(scope="module")
def train_source(data_dir):
  return ip.data_source(NAME, "train", data_dir=data_dir)


@pytest.fixture(scope="module")
def test_source(data_dir):
  return ip.data_source(NAME, "test", data_dir=data_dir)


def _train(source, **overrides):
  options = dict(train=True, modality="rgb", window=10, stride=6, max_windows=3, size=16, batch_size=4,
                 seed=0, num_epochs=None, short_side=None)
  options.update(overrides)
  return ip.make_dataset(source, **options)


def _eval(source, **overrides):
  options = dict(train=False, modality="rgb", window=10, stride=6, max_windows=4, size=16, batch_size=5,
                 seed=0, num_epochs=None, short_side=None)
  options.update(overrides)
  return ip.make_dataset(source, **options)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


# --------------------------------------------------------------------------------------------------------
# sample_windows


def test_reference_windows_of_a_20_frame_video():
  rng = np.random.default_rng(0)
  train = ip.sample_windows(20, 10, 6, True, rng, 10)
  np.testing.assert_array_equal(train[:, 0], [2, 8, 14])  # frame 3 (1-based) onwards
  np.testing.assert_array_equal(train[0], np.arange(2, 12))
  np.testing.assert_array_equal(train[-1], [14, 15, 16, 17, 18, 19, 19, 19, 19, 19])  # padded
  test = ip.sample_windows(20, 10, 6, False, rng, 20)
  np.testing.assert_array_equal(test[:, 0], [0, 6, 12])  # frame 1 onwards
  np.testing.assert_array_equal(test[-1], [12, 13, 14, 15, 16, 17, 18, 19, 19, 19])
  assert train.dtype == test.dtype == np.int32


def test_long_videos_keep_a_random_subset_in_temporal_order():
  rng = np.random.default_rng(1)
  train = ip.sample_windows(300, 10, 6, True, rng, 10)  # 49 windows: keep min(10, 25) = 10
  assert train.shape == (10, 10)
  assert (np.diff(train[:, 0]) > 0).all() and ((train[:, 0] - 2) % 6 == 0).all()
  np.testing.assert_array_equal(train - train[:, :1], np.tile(np.arange(10), (10, 1)))
  # 13 windows (> 10): the reference keeps ceil(13 / 2) = 7, not 10.
  assert ip.sample_windows(80, 10, 6, True, rng, 10).shape == (7, 10)
  assert ip.sample_windows(62, 10, 6, True, rng, 10).shape == (10, 10)  # exactly 10 windows: all
  test = ip.sample_windows(300, 10, 6, False, rng, 20)  # 50 windows: 20 at random
  assert test.shape == (20, 10) and (np.diff(test[:, 0]) > 0).all() and (test[:, 0] % 6 == 0).all()
  assert ip.sample_windows(100, 10, 6, False, rng, 20).shape == (16, 10)  # 16 <= 20: all


def test_sampling_is_deterministic_for_a_seed():
  first = ip.sample_windows(300, 10, 6, True, np.random.default_rng(7), 10)
  np.testing.assert_array_equal(first, ip.sample_windows(300, 10, 6, True, np.random.default_rng(7), 10))
  assert not np.array_equal(first, ip.sample_windows(300, 10, 6, True, np.random.default_rng(8), 10))


def test_short_videos_and_single_frames():
  rng = np.random.default_rng(0)
  np.testing.assert_array_equal(ip.sample_windows(2, 4, 3, True, rng, 10), [[0, 1, 1, 1]])  # < 3 frames
  # Starting at frame 3 would leave one real frame in the window (and ARP's residue): start at frame 1.
  np.testing.assert_array_equal(ip.sample_windows(3, 4, 3, True, rng, 10), [[0, 1, 2, 2]])
  np.testing.assert_array_equal(ip.sample_windows(4, 4, 3, True, rng, 10), [[2, 3, 3, 3]])
  np.testing.assert_array_equal(ip.sample_windows(3, 1, 1, True, rng, 10), [[2]])
  np.testing.assert_array_equal(ip.sample_windows(1, 10, 6, False, rng, 20), [[0] * 10])
  # window 1: frames. Training samples max_windows random frames from frame 3 on, in order.
  frames = ip.sample_windows(30, 1, 1, True, rng, 10)
  assert frames.shape == (10, 1) and (np.diff(frames[:, 0]) > 0).all() and frames.min() >= 2
  np.testing.assert_array_equal(ip.sample_windows(5, 1, 1, True, rng, 10)[:, 0], [2, 3, 4])
  assert ip.sample_windows(30, 1, 1, False, rng, 20).shape == (20, 1)
  np.testing.assert_array_equal(ip.sample_windows(8, 1, 1, False, rng, 20)[:, 0], np.arange(8))


@pytest.mark.parametrize("args, match", [
    ((0, 10, 6, True, 10), "num_frames is 0"),
    ((20, 0, 6, True, 10), "window is 0"),
    ((20, 10, 0, True, 10), "stride is 0"),
    ((20, 10, 6, True, 0), "max_windows is 0"),
    ((20, 10.0, 6, True, 10), "window is 10.0; expected an int"),
    ((20, 10, 6, "yes", 10), "train is 'yes'"),
])
def test_sample_windows_errors(args, match):
  T_, window, stride, train, max_windows = args
  with pytest.raises(ValueError, match=match):
    ip.sample_windows(T_, window, stride, train, np.random.default_rng(0), max_windows)
  with pytest.raises(ValueError, match="expected a np.random.Generator"):
    ip.sample_windows(20, 10, 6, True, 0, 10)


# --------------------------------------------------------------------------------------------------------
# crop_params and augment


def test_training_crops_come_from_the_scales_at_five_positions():
  rng = np.random.default_rng(0)
  height, width = 256, 340
  positions, flips = set(), set()
  for _ in range(300):
    top, left, crop_h, crop_w, flip = ip.crop_params(height, width, rng, True)
    assert crop_h in ip.SCALES and crop_w in ip.SCALES
    assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width
    corners = {(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w)}
    centre = ((height - crop_h) // 2, (width - crop_w) // 2)
    assert (top, left) in corners | {centre}
    positions.add("centre" if (top, left) == centre and centre not in corners else (top == 0, left == 0))
    flips.add(flip)
  assert len(positions) == 5 and flips == {True, False}
  # With short_side=None the scales are stored pixels: frames smaller than a scale clip it.
  heights = {ip.crop_params(240, 320, rng, True, short_side=None)[2] for _ in range(100)}
  assert heights == {240, 224, 192, 168}


def test_test_crop_is_the_centre_square_without_flip():
  assert ip.crop_params(256, 340, None, False) == (16, 58, 224, 224, False)
  # size above the short side: the largest centred square, of the stored frame or of the resized one.
  assert ip.crop_params(32, 48, None, False, size=224, short_side=None) == (0, 8, 32, 32, False)
  assert ip.crop_params(32, 48, None, False, size=300, short_side=256) == (0, 8, 32, 32, False)
  rng = np.random.default_rng(0)
  assert ip.crop_params(256, 340, rng, False) == ip.crop_params(256, 340, rng, False)


def _exact_boxes(height, width, short_side, scales, size):
  """{(what, position): (top, left, bottom, right)}: the reference's crops of a frame resized to
  `short_side`, in fractional stored pixels (float64), computed directly from the resized frame."""
  ratio = min(height, width) / short_side  # stored pixels per resized pixel
  resized_h, resized_w = height / ratio, width / ratio
  boxes = {}
  for ch in scales:
    for cw in scales:
      ch_, cw_ = min(ch, resized_h), min(cw, resized_w)
      tops = (0, 0, resized_h - ch_, resized_h - ch_, (resized_h - ch_) / 2)
      lefts = (0, resized_w - cw_, 0, resized_w - cw_, (resized_w - cw_) / 2)
      for position, (top, left) in enumerate(zip(tops, lefts)):
        boxes[(ch, cw), position] = np.array([top, left, top + ch_, left + cw_]) * ratio
  side = min(size, short_side)
  top, left = (resized_h - side) / 2, (resized_w - side) / 2
  boxes["test", 4] = np.array([top, left, top + side, left + side]) * ratio
  return boxes


def _matches(params, boxes):
  """The keys of `boxes` whose every edge lies within half a stored pixel of the crop `params`."""
  top, left, crop_h, crop_w, _ = params
  edges = np.array([top, left, top + crop_h, left + crop_w])
  return {key for key, box in boxes.items() if np.abs(edges - box).max() <= 0.5 + 1e-9}  # float64 error


def test_crops_are_drawn_in_the_frame_resized_to_short_side_256():
  """UCF101's 320 x 240 frames: each scale covers scale / 256 of the short side (256: all of it), at the 5
  positions of the 256-short-side frame, every edge within half a stored pixel."""
  rng = np.random.default_rng(0)
  for height, width in ((240, 320), (320, 240), (257, 300)):
    boxes = _exact_boxes(height, width, 256, ip.SCALES, ip.SIZE)
    seen = set()
    for _ in range(2000):
      params = ip.crop_params(height, width, rng, True)  # short_side=256, the reference, by default
      found = _matches(params, boxes)
      assert found, (height, width, params)
      seen |= found
    assert seen >= {key for key in boxes if key[0] != "test"}  # every scale pair at every position
  # The whole short side for 256, 210 = 224 * 240 / 256 stored pixels for 224, and so on.
  sides = {ip.crop_params(240, 320, rng, True)[2] for _ in range(200)}
  assert sides == {240, 210, 180, 157, 158}  # 168 * 240 / 256 = 157.5: 157 at the top, else 158
  top, _, crop_h, crop_w, _ = ip.crop_params(240, 320, rng, True, scales=(256,))
  assert (top, crop_h, crop_w) == (0, 240, 240)


def test_the_test_crop_covers_224_of_256_of_the_short_side():
  """The reference's centre crop of 224 of the 256-short-side frame: 210 stored pixels of UCF101's 240."""
  assert ip.crop_params(240, 320, None, False) == (15, 55, 210, 210, False)
  assert ip.crop_params(320, 240, None, False) == (55, 15, 210, 210, False)
  assert ip.crop_params(480, 640, None, False) == (30, 110, 420, 420, False)
  for height, width in ((240, 320), (240, 352), (257, 300), (31, 45)):
    params = ip.crop_params(height, width, None, False)
    assert "test" in {key[0] for key in _matches(params, _exact_boxes(height, width, 256, (256,), 224))}


@pytest.mark.parametrize("height, width, short_side, scales", [
    (256, 340, 256, ip.SCALES), (256, 341, 256, ip.SCALES), (301, 256, 256, ip.SCALES),
    (256, 256, 256, ip.SCALES), (64, 85, 64, (64, 56)), (85, 64, 64, (64, 56))])
def test_frames_whose_short_side_is_short_side_crop_as_with_short_side_none(height, width, short_side,
                                                                            scales):
  for train in (True, False):
    for seed in range(200 if train else 1):
      draw = dict(height=height, width=width, train=train, scales=scales)
      assert (ip.crop_params(rng=np.random.default_rng(seed), short_side=short_side, **draw)
              == ip.crop_params(rng=np.random.default_rng(seed), short_side=None, **draw))


def test_the_pipelines_crop_in_the_frame_resized_to_short_side(test_source):
  """make_dataset and make_dynamic_image_dataset pass short_side to the crops: the test crop of 16 of the
  32 x 32 frames resized to short side 64 is their centred 8 x 8."""
  example = test_source[0]
  frames = ip.decode_video(example, "rgb")[:10]  # the first test window
  expected = ip.augment(frames, (12, 12, 8, 8, False), 16, "rgb")
  batch = next(iter(_eval([example], batch_size=1, short_side=64)))  # every window kept, in order
  np.testing.assert_array_equal(batch["frames"][0, :10], expected)
  stored = next(iter(_eval([example], batch_size=1)))  # short_side=None: the centred 16 x 16
  expected = ip.augment(frames, (8, 8, 16, 16, False), 16, "rgb")
  np.testing.assert_array_equal(stored["frames"][0, :10], expected)
  dynamic, _, _, _ = _dynamic_example(example, "rgb", 0)
  images = _stored_images(dynamic, "rgb")[:1].astype(np.uint8)
  batch = next(iter(ip.make_dynamic_image_dataset([dynamic], train=False, modality="rgb", max_windows=4,
                                                  size=16, batch_size=1, seed=0, num_epochs=1,
                                                  short_side=64)))
  np.testing.assert_array_equal(batch["images"][0, :1], ip.augment(images, (12, 12, 8, 8, False), 16, "rgb"))


def test_crop_params_errors():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="height is 0"):
    ip.crop_params(0, 10, rng, True)
  with pytest.raises(ValueError, match="scales is"):
    ip.crop_params(10, 10, rng, True, scales=())
  with pytest.raises(ValueError, match="size is -1"):
    ip.crop_params(10, 10, rng, False, size=-1)
  for short_side in (0, True, 25.6):
    with pytest.raises(ValueError, match=f"short_side is {short_side}"):
      ip.crop_params(10, 10, rng, True, short_side=short_side)


def test_flow_flip_negates_the_horizontal_displacement():
  frames = np.empty((2, 8, 8, 2), np.uint8)
  frames[..., 0], frames[..., 1] = 200, 77
  flipped = ip.augment(frames, (0, 0, 8, 8, True), 8, "flow")
  np.testing.assert_array_equal(flipped[..., 0], 55 - 128.0)  # u -> 255 - u, minus the mean 128
  np.testing.assert_array_equal(flipped[..., 1], 77 - 128.0)  # v unchanged
  kept = ip.augment(frames, (0, 0, 8, 8, False), 8, "flow")
  np.testing.assert_array_equal(kept[..., 0], 200 - 128.0)
  assert flipped.dtype == np.float32 and flipped.shape == (2, 8, 8, 2)


def test_rgb_crop_flip_and_mean_subtraction():
  frames = np.zeros((3, 6, 8, 3), np.uint8)
  frames[..., 0] = np.arange(8) * 10  # red grows to the right
  frames[..., 1], frames[..., 2] = 200, 50
  out = ip.augment(frames, (1, 2, 4, 4, True), 4, "rgb")  # columns 2..5, mirrored, same size
  np.testing.assert_allclose(out[0, 0, :, 0], np.array([50, 40, 30, 20]) - 123.675, rtol=1e-6)
  np.testing.assert_allclose(out[..., 1], 200 - 116.28, rtol=1e-6)
  np.testing.assert_allclose(out[..., 2], 50 - 103.53, rtol=1e-6)
  resized = ip.augment(frames, (0, 0, 6, 8, False), 16, "rgb")
  assert resized.shape == (3, 16, 16, 3)
  np.testing.assert_allclose(resized[..., 1], 200 - 116.28, rtol=1e-6)  # constant stays constant


def test_augment_errors():
  frames = np.zeros((2, 8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match=r"expected uint8 \[tau, H, W, 2\] \(flow\)"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "flow")
  with pytest.raises(ValueError, match="runs past the 8 x 8 frames"):
    ip.augment(frames, (4, 0, 8, 8, False), 8, "rgb")
  with pytest.raises(ValueError, match="expected \\(top, left, crop_h, crop_w, flip\\)"):
    ip.augment(frames, (0, 0, 8), 8, "rgb")
  with pytest.raises(ValueError, match="modality is 'depth'"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "depth")
  with pytest.raises(ValueError, match="convention is 'imagenet'"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "rgb", convention="imagenet")
  with pytest.raises(ValueError, match="the input convention is for flow"):
    ip.augment(frames, (0, 0, 8, 8, False), 8, "rgb", convention=normalization.convention("caffe", "flow"))


# --------------------------------------------------------------------------------------------------------
# Input conventions


def test_the_default_convention_is_the_reference_mean_subtraction_bit_for_bit():
  rng = np.random.default_rng(0)
  for modality, mean in (("rgb", ip.RGB_MEAN), ("flow", ip.FLOW_MEAN)):
    frames = rng.integers(0, 256, (2, 20, 24, ip.CHANNELS[modality]), dtype=np.uint8)
    resized = np.stack([cv2.resize(frame[1:13, 2:19], (9, 9), interpolation=cv2.INTER_LINEAR)[:, ::-1]
                        for frame in frames])
    if modality == "flow":
      resized[..., 0] = 255 - resized[..., 0]
    expected = resized.astype(np.float32) - np.float32(mean)
    for convention in ({}, {"convention": "reference"}):
      np.testing.assert_array_equal(ip.augment(frames, (1, 2, 12, 17, True), 9, modality, **convention),
                                    expected)
    np.testing.assert_array_equal(arp_jax.normalize(frames), frames.astype(np.float32) - np.float32(mean))


def test_pipelines_apply_the_convention_affine_map(test_source):
  """The convention changes only the map from 0..255 values, (x - offset) * gain: the same crops."""
  for modality in ("rgb", "flow"):
    batches = {name: next(iter(_eval(test_source, modality=modality, **convention)))["frames"]
               for name, convention in (("default", {}), ("reference", {"convention": "reference"}),
                                        ("torchvision", {"convention": "torchvision"}))}
    np.testing.assert_array_equal(batches["default"], batches["reference"])
    tv = normalization.convention("torchvision", modality)
    reference = normalization.convention("reference", modality)
    np.testing.assert_allclose(batches["torchvision"],
                               (batches["reference"] + reference.offset - tv.offset) * tv.gain, atol=2e-6)

    example = _dynamic_example(test_source[0], modality, 0)[0]
    for values, zero_sum in (("image", False), ("restored", True)):
      images = {name: next(iter(ip.make_dynamic_image_dataset(
          [example] * 2, train=False, modality=modality, max_windows=2, size=FRAME, batch_size=2, seed=0,
          num_epochs=1, values=values, convention=name)))["images"] for name in ("reference", "torchvision")}
      shift = 0 if zero_sum else reference.offset - tv.offset  # the offset cancels in zero-sum ARP weights
      np.testing.assert_allclose(images["torchvision"], (images["reference"] + shift) * tv.gain,
                                 rtol=1e-5, atol=2e-6)


def test_normalize_follows_each_convention():
  x = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(arp_jax.normalize(x, "torchvision"), (x / 255 - mean) / std, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(arp_jax.normalize(x, "caffe"),
                             x - np.array([104.00698793, 116.66876762, 122.67891434])[::-1], atol=1e-4)
  assert arp_jax.normalize(x, "torchvision").dtype == np.float32
  # Flow: centred on 128; the stds of the RGB filters the flow conv1 came from (R, G or their mean).
  uv = x[..., :2]
  np.testing.assert_allclose(arp_jax.normalize(uv, "torchvision"), (uv / 255 - 128 / 255) / std[:2],
                             rtol=1e-5, atol=1e-5)
  flow_mean = normalization.convention("torchvision", "flow", flow_init="mean")
  np.testing.assert_allclose(arp_jax.normalize(uv, flow_mean), (uv - 128.0) / (255 * std.mean()),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(arp_jax.normalize(uv, "caffe"), uv - np.float32(128))
  # A restored dynamic image (zero-sum weights) gets the gain only.
  di = np.random.default_rng(2).normal(0, 300, (4, 5, 3)).astype(np.float32)
  np.testing.assert_allclose(arp_jax.normalize(di, "torchvision", zero_sum=True), di / (255 * std),
                             rtol=1e-5)
  convention = normalization.convention("torchvision")
  assert normalization.Convention.from_dict(convention.to_dict()) == convention
  with pytest.raises(ValueError, match="expected \\[..., 3\\] \\(RGB\\) or \\[..., 2\\]"):
    arp_jax.normalize(np.zeros((4, 5, 4)))
  with pytest.raises(ValueError, match="convention is 'imagenet'"):
    arp_jax.normalize(x, "imagenet")
  with pytest.raises(ValueError, match="flow_init is 'average'"):
    normalization.convention("torchvision", "flow", flow_init="average")


# --------------------------------------------------------------------------------------------------------
# Decoding


def test_decoding_selected_frames_from_bytes_equals_tfds_decoding(data_dir, train_source):
  decoded = tfds.data_source(NAME, split="train", data_dir=data_dir)[3]
  raw = train_source[3]
  assert isinstance(raw["frames"][0], bytes)  # the JPEGs stayed undecoded
  frames = ip.decode_video(decoded, "rgb")
  assert frames.shape == (T, FRAME, FRAME, 3) and frames.dtype == np.uint8
  np.testing.assert_array_equal(ip.decode_video(raw, "rgb"), frames)
  np.testing.assert_array_equal(ip.decode_video(raw, "rgb", [5, 2, 5]), frames[[5, 2, 5]])
  flow = ip.decode_video(raw, "flow")
  assert flow.shape == (T - 1, FRAME, FRAME, 2)
  np.testing.assert_array_equal(flow[..., 0], np.stack(decoded["flow_x"])[..., 0])
  np.testing.assert_array_equal(flow[..., 1], np.stack(decoded["flow_y"])[..., 0])


def test_decode_errors(train_source):
  with pytest.raises(ValueError, match="expected a dataset example with \\('images',\\)"):
    ip.decode_dynamic_images(train_source[0], "rgb")
  with pytest.raises(ValueError, match=f"expected a non-empty 1-D array of ints in 0..{T - 1}"):
    ip.decode_video(train_source[0], "rgb", [T])
  with pytest.raises(ValueError, match="name is ''"):
    ip.data_source("", "train")


# --------------------------------------------------------------------------------------------------------
# Pipelines


@pytest.mark.parametrize("modality, channels, frames", [("rgb", 3, T), ("flow", 2, T - 1)])
def test_training_batches(train_source, modality, channels, frames):
  batch = next(iter(_train(train_source, modality=modality)))
  assert batch["frames"].shape == (4, 3 * 10, 16, 16, channels) and batch["frames"].dtype == np.float32
  assert batch["length"].dtype == batch["label"].dtype == np.int32 and set(batch) == {"frames", "length",
                                                                                    "label"}
  # From frame 3, tau 10, stride 6: 2 windows of T (or T - 1) frames, the third slot repeats the second.
  assert arp_jax.num_windows(frames, 10, 6, 2) == 2
  np.testing.assert_array_equal(batch["length"], 20)
  np.testing.assert_array_equal(batch["frames"][:, 20:], batch["frames"][:, 10:20])
  assert set(batch["label"]) <= set(range(12))
  assert np.abs(batch["frames"]).max() <= 255 and np.abs(batch["frames"].mean()) < 64  # mean removed


def test_same_seed_same_batches_and_other_seeds_differ(train_source):
  first = _take(iter(_train(train_source)), 4)  # past the first epoch of 3 batches
  _assert_same_batches(first, _take(iter(_train(train_source)), 4))
  other = _take(iter(_train(train_source, seed=1)), 4)
  assert not np.array_equal(first[0]["label"], other[0]["label"])
  assert not np.array_equal(first[0]["frames"], other[0]["frames"])
  # A new epoch is a new order and new crops.
  second_epoch = _take(iter(_train(train_source, batch_size=12)), 2)
  assert sorted(second_epoch[0]["label"]) == sorted(second_epoch[1]["label"]) == list(range(12))
  assert not np.array_equal(second_epoch[0]["label"], second_epoch[1]["label"])


def test_finite_epochs_and_the_remainder(train_source):
  kept = list(_train(train_source, batch_size=5, num_epochs=1))
  assert [len(b["label"]) for b in kept] == [5, 5]
  everything = list(_train(train_source, batch_size=5, num_epochs=1, drop_remainder=False))
  assert [len(b["label"]) for b in everything] == [5, 5, 2]
  assert sorted(np.concatenate([b["label"] for b in everything])) == list(range(12))


def test_a_resumed_iterator_continues_with_the_same_batches(train_source):
  dataset = _train(train_source)
  iterator = iter(dataset)
  _take(iterator, 2)
  state = ip.iterator_state(iterator)
  assert json.loads(state) == iterator.get_state()
  expected = _take(iterator, 3)  # crosses into the second epoch
  _assert_same_batches(_take(ip.restore_iterator(_train(train_source), state), 3), expected)
  _assert_same_batches(_take(ip.restore_iterator(dataset, json.loads(state)), 3), expected)


def test_eval_covers_every_video_once_and_pads_the_last_batch(test_source):
  batches = list(_eval(test_source))
  assert [b["frames"].shape for b in batches] == [(5, 40, 16, 16, 3)] * 3
  valid = np.concatenate([b["valid"] for b in batches])
  np.testing.assert_array_equal(valid, [True] * 12 + [False] * 3)
  index = np.concatenate([b["index"] for b in batches])
  np.testing.assert_array_equal(index[valid], np.arange(12))
  labels = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(labels[valid], [test_source[i]["label"] for i in range(12)])
  names = ip.decode_names(np.concatenate([b["name"] for b in batches])[valid])
  assert names == [bytes(test_source[i]["name"]).decode() for i in range(12)] and all(names)
  # Test windows from frame 1 of 16: 2 windows of 10 (the second padded), of the 4 slots.
  np.testing.assert_array_equal(np.concatenate([b["length"] for b in batches]), 20)
  # Centre crops, no randomness left: a second pass is identical.
  _assert_same_batches(batches, list(_eval(test_source)))


def test_video_names_as_fixed_width_arrays():
  codes = np.stack([ip.encode_name(b"v_Punch_g01_c01.avi"), ip.encode_name("punch/été.avi"), ip.encode_name("")])
  assert codes.shape == (3, ip.NAME_BYTES) and codes.dtype == np.uint8
  assert ip.decode_names(codes) == ["v_Punch_g01_c01.avi", "punch/été.avi", ""]
  with pytest.raises(ValueError, match="at most 256"):
    ip.encode_name("x" * 257)


def test_eval_shards_give_every_host_the_same_number_of_batches(test_source):
  hosts = [list(_eval(test_source, batch_size=3, shard_index=i, shard_count=5)) for i in range(5)]
  assert {len(batches) for batches in hosts} == {1}  # ceil(12 / 5) = 3 videos each, padding included
  seen = np.concatenate([b["index"][b["valid"]] for batches in hosts for b in batches])
  np.testing.assert_array_equal(np.sort(seen), np.arange(12))


def test_sharded_training_reads_disjoint_shares(train_source):
  labels = [np.concatenate([b["label"] for b in _train(train_source, batch_size=2, num_epochs=1,
                                                       shard_index=i, shard_count=3)]) for i in range(3)]
  assert [len(x) for x in labels] == [4, 4, 4]
  assert sorted(np.concatenate(labels)) == list(range(12))


@pytest.mark.parametrize("overrides, match", [
    (dict(modality="depth"), "modality is 'depth'"),
    (dict(shard_index=3, shard_count=3), "shard_index is 3; expected 0..2"),
    (dict(batch_size=0), "batch_size is 0"),
    (dict(num_epochs=0), "num_epochs is 0"),
    (dict(seed=-1), "seed is -1"),
    (dict(window=0), "window is 0"),
    (dict(num_workers=-1), "num_workers is -1"),
    (dict(read_options=4), "expected grain.ReadOptions"),
])
def test_make_dataset_errors(train_source, overrides, match):
  with pytest.raises(ValueError, match=match):
    _train(train_source, **overrides)


def test_more_make_dataset_errors(train_source):
  with pytest.raises(ValueError, match="num_epochs is 2 in eval mode"):
    _eval(train_source, num_epochs=2)
  with pytest.raises(ValueError, match="expected a non-empty random-access source"):
    _train([])
  with pytest.raises(ValueError, match="host 2 of 3 has no video"):
    _train([train_source[0], train_source[1]], shard_index=2, shard_count=3)
  with pytest.raises(ValueError, match="expected iter\\(make_dataset"):
    ip.iterator_state([1, 2])
  with pytest.raises(ValueError, match="state is not JSON"):
    ip.restore_iterator(_train(train_source), "{")
  with pytest.raises(ValueError, match="expected the grain.IterDataset"):
    ip.restore_iterator([1, 2], "{}")


# --------------------------------------------------------------------------------------------------------
# Precomputed dynamic images


def _dynamic_example(example, modality, start):
  """A `*_dynamic_images/..._w10s6` example made as `_DynamicImagesBuilder` makes it (a 16-frame video)."""
  frames = ip.decode_video(example, modality)
  images, low, high = to_uint8(dynamic_images(frames, 10, 6, start))
  if modality == "rgb":
    encoded = {"images": [encode_jpeg(image) for image in images]}
  else:
    encoded = {"images_x": [encode_jpeg(image[..., 0]) for image in images],
               "images_y": [encode_jpeg(image[..., 1]) for image in images]}
  return dict(name=example["name"], label=example["label"], low=low, high=high, **encoded), images, low, high


def _stored_images(example, modality) -> np.ndarray:
  """The 8-bit images of a dynamic-images example as float32 [S, H, W, C]."""
  keys = ip.DYNAMIC_IMAGE_KEYS[modality]
  return ip._decode_sequences(ip._sequences(example, keys), keys, None).astype(np.float32)  # pylint: disable=protected-access


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_dynamic_images_restore_the_float_range(test_source, modality):
  example, q, low, high = _dynamic_example(test_source[0], modality, 0)
  restored = ip.decode_dynamic_images(example, modality)
  expected = low[:, None, None, None] + q.astype(np.float32) / 255 * (high - low)[:, None, None, None]
  step = (high - low).max() / 255
  assert restored.shape == q.shape and restored.dtype == np.float32
  # JPEG error, in 8-bit steps: 4:2:0 chroma blurs the saturated colour streaks of the synthetic shapes.
  assert np.abs(restored - expected).mean() < 3 * step

  source = [example] * 3
  stored = _stored_images(example, modality)
  mean = np.asarray(ip.RGB_MEAN if modality == "rgb" else ip.FLOW_MEAN, np.float32)
  for values, expected in (("restored", restored), ("image", stored - mean)):
    batch = next(iter(ip.make_dynamic_image_dataset(source, train=False, modality=modality, max_windows=4,
                                                    size=FRAME, batch_size=2, seed=0, num_epochs=1,
                                                    values=values, short_side=None)))
    assert batch["images"].shape == (2, 4, FRAME, FRAME, q.shape[-1]) and batch["images"].dtype == np.float32
    np.testing.assert_array_equal(batch["length"], len(q))  # 2 windows from frame 1
    np.testing.assert_allclose(batch["images"][0, :len(q)], expected, atol=1e-3)  # full-frame centre crop
    for pad in batch["images"][0, len(q):]:  # padding repeats the last image
      np.testing.assert_array_equal(pad, batch["images"][0, len(q) - 1])
    np.testing.assert_array_equal(batch["index"], [0, 1])
  with pytest.raises(ValueError, match="values is 'raw'"):
    ip.make_dynamic_image_dataset(source, train=False, modality=modality, max_windows=4, size=FRAME,
                                  batch_size=2, seed=0, num_epochs=1, values="raw")


@pytest.mark.parametrize("values", ["restored", "image"])
def test_dynamic_flow_flip_negates_u(test_source, values):
  example, _, _, _ = _dynamic_example(test_source[1], "flow", 2)
  if values == "restored":
    restored = ip.decode_dynamic_images(example, "flow")
  else:  # the 8-bit images minus 128: negating u is the code 255 - q, i.e. 127 - (q - 128)
    restored = _stored_images(example, "flow") - 128
  # Crops of the whole image: only the flip is random.
  ds = ip.make_dynamic_image_dataset([example] * 8, train=True, modality="flow", max_windows=2, size=FRAME,
                                     batch_size=8, seed=0, num_epochs=1, scales=(FRAME,), values=values,
                                     short_side=None)
  batch = next(iter(ds))
  assert batch["images"].shape == (8, 2, FRAME, FRAME, 2) and set(batch) == {"images", "length", "label"}
  np.testing.assert_array_equal(batch["length"], 2)
  u = -restored[..., ::-1, 0] - (1 if values == "image" else 0)
  flipped = np.stack([u, restored[..., ::-1, 1]], -1)
  kinds = set()
  for images in batch["images"]:
    for image, original, mirrored in zip(images, restored, flipped):
      if np.allclose(image, original, atol=1e-3):
        kinds.add("kept")
      else:
        np.testing.assert_allclose(image, mirrored, atol=1e-3)
        kinds.add("flipped")
  assert kinds == {"kept", "flipped"}
