"""Tests for arp_jax.flow: quantisation, `compute_flow` by each method, and the TSN/denseflow JPEG layout.

The reference sample tests/data/flow/mmaction2_v_ApplyEyeMakeup_g01_c01 is described in
tests/data/SOURCES.md.
"""


import cv2
import numpy as np
import pytest
from PIL import Image

from arp_jax import flow, video
from arp_jax.flow.layout import read_flow_jpegs, write_flow_jpegs
from arp_jax.flow.opencv import OPENCV_METHODS

from paths import DATA
UCF_CLIP = DATA / "clips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
SAMPLE = DATA / "flow" / "mmaction2_v_ApplyEyeMakeup_g01_c01"


@pytest.fixture(scope="module")
def clip_frames():
  return video.read_frames(UCF_CLIP)


def _textured_pair(shift_x: int, size=(96, 128)):
  """Smooth random texture and the same texture moved `shift_x` pixels to the right (true u = shift_x)."""
  rng = np.random.default_rng(0)
  height, width = size
  noise = rng.uniform(0, 255, (height, width + shift_x)).astype(np.float32)
  texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
  texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
  texture = texture.astype(np.uint8)
  first = texture[:, shift_x:]
  second = texture[:, :width]  # second[y, x] = first[y, x - shift_x]
  return np.stack([first, second])[..., None].repeat(3, axis=-1)


# ---------------------------------------------------------------- quantisation


def test_quantize_zero_is_128_and_ends():
  q = flow.quantize(np.array([0.0, -20.0, 20.0, -100.0, 100.0], np.float32))
  assert q.dtype == np.uint8
  assert q.tolist() == [128, 0, 255, 0, 255]


def test_quantize_rounds_half_up():
  # With bound 127.5 the scale is 1: v + 127.5 lands exactly on .5 for integer v.
  q = flow.quantize(np.array([-127.0, -126.0, 0.0, 1.0]), bound=127.5)
  assert q.tolist() == [1, 2, 128, 129]


def test_quantize_dequantize_round_trip():
  bound = 20.0
  values = np.linspace(-bound, bound, 4001, dtype=np.float64)
  back = flow.dequantize(flow.quantize(values, bound), bound)
  assert back.dtype == np.float32
  # Half a quantisation step, 2 * bound / 255 / 2, plus float32 slack.
  assert np.abs(back - values).max() <= bound / 255 + 1e-5
  codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
  np.testing.assert_array_equal(flow.quantize(flow.dequantize(codes, 7.0), 7.0), codes)


def test_quantize_clips_outside_bound():
  back = flow.dequantize(flow.quantize(np.array([-35.0, 50.0, 1e9]), 20.0), 20.0)
  np.testing.assert_allclose(back, [-20.0, 20.0, 20.0], atol=1e-5)


def test_quantize_keeps_shape():
  assert flow.quantize(np.zeros((3, 4, 5, 2), np.float32)).shape == (3, 4, 5, 2)


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan"), float("inf")])
def test_quantize_rejects_bad_bound(bound):
  with pytest.raises(ValueError, match="bound"):
    flow.quantize(np.zeros(3, np.float32), bound)
  with pytest.raises(ValueError, match="bound"):
    flow.dequantize(np.zeros(3, np.uint8), bound)


def test_quantize_dequantize_reject_bad_dtype():
  with pytest.raises(ValueError, match="dtype"):
    flow.quantize(np.zeros(3, np.uint8))
  with pytest.raises(ValueError, match="dtype"):
    flow.dequantize(np.zeros(3, np.float32))


# ---------------------------------------------------------------- the mmaction2 sample


def test_read_flow_jpegs_matches_pil_on_sample():
  sample = read_flow_jpegs(SAMPLE)
  assert sample.shape == (5, 240, 320, 2) and sample.dtype == np.uint8
  for k in range(5):
    for channel, prefix in enumerate("xy"):
      expected = np.asarray(Image.open(SAMPLE / f"{prefix}_{k + 1:05d}.jpg"))
      np.testing.assert_array_equal(sample[k, ..., channel], expected)
  # Centred near zero motion (127.5) overall: measured means 121.8 (u) and 130.7 (v). Single pairs are
  # not: pair 5 has a median u of 104 (a global shift of about -3.7 px).
  assert np.all(np.abs(sample.mean(axis=(0, 1, 2)) - 127.5) < 8)
  # Pairs 2 and 4 (0-based 1, 3) are near-duplicate frames: every code within 4 of zero motion (measured range 125..132).
  assert np.abs(sample[[1, 3]].astype(int) - 128).max() <= 4


def test_sample_frames_are_decoded_frames_1_to_10(clip_frames):
  """img_0000k.jpg is decoded frame k (0-based), i.e. frames 1..10, not 0..9 as the source notes say."""
  imgs = np.stack([np.asarray(Image.open(SAMPLE / f"img_{k:05d}.jpg").convert("RGB")) for k in range(1, 11)])
  diff = np.abs(imgs[:, None].astype(np.float32) - clip_frames[None, :12].astype(np.float32)).mean(axis=(2, 3, 4))
  # JPEG noise gives about 0.8; the closest decoded frame of img k is frame k (frames 0 and 1 are near
  # duplicates, which is why img_00001 alone would be ambiguous).
  assert diff.argmin(axis=1).tolist() == list(range(1, 11))
  assert diff.min(axis=1).max() < 1.0


def test_tvl1_against_mmaction2_sample(clip_frames):
  """Loose regression check of TV-L1 against the sample's quantised flow.

  Measured (OpenCV 5.0.0 TV-L1 defaults, bound 20, frames 1..6): mean |ours - sample| = 6.44 codes for u
  and 3.70 for v (1 code = 40/255 = 0.157 px), i.e. about 1.0 px and 0.6 px. Pixel-wise the two do not
  agree (correlation about 0): the source does not document its algorithm, parameters or frames, and the
  sample's large motions are not where TV-L1 finds them on these frames. What does agree, and is asserted
  tightly: the near-duplicate pairs (1, 3) are zero motion in both (mean difference about 0.5 code).
  The overall bounds (7.5 and 4.5 codes) only catch gross breakage: wrong sign convention, wrong
  bound, swapped u/v or a constant offset would exceed them.
  """
  ours = flow.quantize(flow.compute_flow(clip_frames[1:7], "tvl1_opencv"), bound=20.0)
  sample = read_flow_jpegs(SAMPLE)
  difference = np.abs(ours.astype(np.float32) - sample.astype(np.float32))
  mad_u, mad_v = difference[..., 0].mean(), difference[..., 1].mean()
  assert mad_u < 7.5 and mad_v < 4.5, (mad_u, mad_v)
  assert difference[[1, 3]].mean() < 0.8


# ---------------------------------------------------------------- compute_flow


def test_compute_flow_tvl1_is_the_jax_op_pair_by_pair(clip_frames):
  """compute_flow's "tvl1" is `flow.tvl1` of each pair (k, k + 1), in order, on RGB and grey frames alike.

  Against `tvl1` of the same pairs as one batch: the same compiled program as compute_flow's, so one
  compilation; that a batch equals its pairs one at a time is tests/flow/test_tvl1.py's.
  """
  frames = clip_frames[40:46, ::4, ::4]  # 5 pairs of 60x80 real frames
  result = flow.compute_flow(frames, "tvl1")
  assert result.shape == (5, 60, 80, 2) and result.dtype == np.float32
  np.testing.assert_allclose(result, np.asarray(flow.tvl1(frames[:-1], frames[1:])), atol=1e-5)
  # Grey frames rounded to uint8 are not the op's float grey of RGB frames: close, not equal.
  grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])
  assert np.abs(flow.compute_flow(grey, "tvl1") - result).mean() < 0.02
  assert np.abs(result).max() > 0.5  # the make-up brush moves


@pytest.mark.parametrize("method", OPENCV_METHODS)  # the JAX op: the test above and tests/flow/test_tvl1.py
def test_compute_flow_on_clip(clip_frames, method):
  result = flow.compute_flow(clip_frames[:6], method)
  assert result.shape == (5, 240, 320, 2) and result.dtype == np.float32
  assert np.all(np.isfinite(result))
  # A mostly static make-up video: median motion well below one pixel, some motion somewhere.
  assert np.all(np.abs(np.median(result, axis=(1, 2))) < 0.5)
  assert np.abs(result).max() > 1.0


@pytest.mark.parametrize("method", OPENCV_METHODS)
def test_compute_flow_recovers_shift(method):
  result = flow.compute_flow(_textured_pair(2), method)
  assert result.shape == (1, 96, 128, 2)
  # Away from the borders, where the moved-in columns have no match.
  centre = result[0, 16:-16, 16:-16]
  assert np.median(centre[..., 0]) == pytest.approx(2.0, abs=0.2)
  assert np.median(centre[..., 1]) == pytest.approx(0.0, abs=0.2)


def test_compute_flow_accepts_grey_frames():
  pair = _textured_pair(2)
  grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in pair])
  np.testing.assert_array_equal(flow.compute_flow(grey, "dis"), flow.compute_flow(pair, "dis"))


def test_compute_flow_errors():
  frames = np.zeros((3, 8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="at least 2"):
    flow.compute_flow(frames[:1])
  with pytest.raises(ValueError, match="shape"):
    flow.compute_flow(np.zeros((3, 8, 8, 4), np.uint8))
  with pytest.raises(ValueError, match="shape"):
    flow.compute_flow(np.zeros((8, 8), np.uint8))
  with pytest.raises(ValueError, match="dtype"):
    flow.compute_flow(frames.astype(np.float32))
  with pytest.raises(ValueError, match="unknown flow method 'lk'.*'tvl1', 'tvl1_opencv', 'farneback', 'dis'"):
    flow.compute_flow(frames, "lk")
  with pytest.raises(ValueError, match="too small"):  # the JAX op's pyramid needs larger frames
    flow.compute_flow(frames, "tvl1")


# ---------------------------------------------------------------- JPEG layout


def test_write_read_flow_jpegs_round_trip(tmp_path):
  rng = np.random.default_rng(3)
  # Smooth codes, as real flow is: JPEG keeps them within a few levels.
  smooth = cv2.GaussianBlur(rng.uniform(0, 255, (3, 40, 56, 2)).astype(np.float32).reshape(3, 40, 112),
                            (0, 0), 3.0).reshape(3, 40, 56, 2)
  codes = np.clip(smooth * 3 - 255, 0, 255).astype(np.uint8)
  paths = write_flow_jpegs(codes, tmp_path / "out")
  assert [p.name for p in paths] == [
      "x_00001.jpg", "y_00001.jpg", "x_00002.jpg", "y_00002.jpg", "x_00003.jpg", "y_00003.jpg"]
  back = read_flow_jpegs(tmp_path / "out")
  assert back.shape == codes.shape and back.dtype == np.uint8
  assert np.abs(back.astype(int) - codes).mean() < 1.0
  assert np.abs(back.astype(int) - codes).max() <= 8


def test_write_read_constant_is_exact_and_start(tmp_path):
  codes = np.zeros((2, 16, 24, 2), np.uint8)
  codes[..., 0], codes[..., 1] = 128, 37
  paths = write_flow_jpegs(codes, tmp_path, start=9)
  assert [p.name for p in paths] == ["x_00009.jpg", "y_00009.jpg", "x_00010.jpg", "y_00010.jpg"]
  (tmp_path / "img_00001.jpg").write_bytes(b"ignored")
  np.testing.assert_array_equal(read_flow_jpegs(tmp_path), codes)


def test_read_flow_jpegs_natural_order(tmp_path):
  for k in (1, 2, 10):
    for prefix in "xy":
      Image.fromarray(np.full((4, 4), k * 10, np.uint8)).save(tmp_path / f"{prefix}_{k}.jpg")
  assert read_flow_jpegs(tmp_path)[:, 0, 0, 0].tolist() == [10, 20, 100]


def test_read_flow_jpegs_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing"):
    read_flow_jpegs(tmp_path / "missing")
  with pytest.raises(ValueError, match="no flow images"):
    read_flow_jpegs(tmp_path)
  codes = np.full((2, 4, 4, 2), 128, np.uint8)
  write_flow_jpegs(codes, tmp_path)
  (tmp_path / "y_00002.jpg").unlink()
  with pytest.raises(ValueError, match="x_00002.jpg"):
    read_flow_jpegs(tmp_path)
  Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "y_00002.jpg")
  with pytest.raises(ValueError, match="y_00002.jpg"):
    read_flow_jpegs(tmp_path)
  with pytest.raises(ValueError, match="not a folder"):
    read_flow_jpegs(tmp_path / "x_00001.jpg")


def test_write_flow_jpegs_rejects_bad_input(tmp_path):
  with pytest.raises(ValueError, match="quantize"):
    write_flow_jpegs(np.zeros((2, 4, 4, 2), np.float32), tmp_path)
  with pytest.raises(ValueError, match="quantize"):
    write_flow_jpegs(np.zeros((2, 4, 4), np.uint8), tmp_path)
  with pytest.raises(ValueError, match="start"):
    write_flow_jpegs(np.zeros((1, 4, 4, 2), np.uint8), tmp_path, start=-1)
