"""Tests for arp_jax.figures (Fig. 1/9 panels, Fig. 3 weights) and the `arp-jax figure` subcommand."""

import numpy as np
import pytest
from PIL import Image

import arp_jax
from arp_jax import figures
from arp_jax import flow as flow_lib

# The clip and the CLI helpers (run `arp-jax ...`, read a PNG, check a one-line usage error).
from cli_helpers import assert_usage_error as _assert_usage_error, png as _png, run as _run
from paths import UCF_CLIP


def _hue(rgb) -> float:
  """Hue in degrees of one RGB colour (matplotlib's own conversion, independent of flow_to_rgb)."""
  from matplotlib.colors import rgb_to_hsv
  return float(rgb_to_hsv(np.asarray(rgb, np.float64) / 255.0)[0]) * 360.0


@pytest.fixture(scope="module")
def small_frames(ucf_frames):
  """The first 12 frames of the UCF101 clip at half resolution: uint8 [12, 120, 160, 3]."""
  return np.ascontiguousarray(ucf_frames[:12, ::2, ::2])


# --- flow colour coding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("u, v, hue", [(1, 0, 0), (0, 1, 90), (-1, 0, 180), (0, -1, 270), (1, 1, 45),
                                       (-3, 3, 135)])
def test_flow_to_rgb_maps_directions_to_hues(u, v, hue):
  rgb = figures.flow_to_rgb(np.full((2, 3, 2), (u, v), np.float32))
  assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
  assert np.all(rgb == rgb[0, 0])
  assert rgb[0, 0].max() == 255  # the largest magnitude is full brightness
  assert abs((_hue(rgb[0, 0]) - hue + 180) % 360 - 180) < 1.0


def test_flow_to_rgb_known_colours_and_black_for_zero():
  flow = np.zeros((1, 4, 2), np.float32)
  flow[0, 0] = (2, 0)  # rightward: red
  flow[0, 1] = (-2, 0)  # leftward: cyan, the opposite hue
  flow[0, 2] = (1, 0)  # half the largest magnitude: half-bright red
  rgb = figures.flow_to_rgb(flow)
  np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
  np.testing.assert_array_equal(rgb[0, 1], [0, 255, 255])
  np.testing.assert_array_equal(rgb[0, 2], [128, 0, 0])
  np.testing.assert_array_equal(rgb[0, 3], [0, 0, 0])
  np.testing.assert_array_equal(figures.flow_to_rgb(np.zeros((3, 3, 2))), np.zeros((3, 3, 3), np.uint8))


def test_flow_to_rgb_max_magnitude_clips():
  flow = np.array([[[1.0, 0.0], [10.0, 0.0]]])
  rgb = figures.flow_to_rgb(flow, max_magnitude=2.0)
  np.testing.assert_array_equal(rgb[0, 0], [128, 0, 0])
  np.testing.assert_array_equal(rgb[0, 1], [255, 0, 0])


@pytest.mark.parametrize("flow, fragment", [
    (np.zeros((4, 4)), "[H, W, 2]"),
    (np.zeros((2, 4, 4, 2)), "[H, W, 2]"),
    (np.zeros((4, 4, 3)), "[H, W, 2]"),
    (np.array([[[np.nan, 0.0]]]), "NaN"),
])
def test_flow_to_rgb_rejects_bad_input(flow, fragment):
  with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
    figures.flow_to_rgb(flow)


# --- video figure ---------------------------------------------------------------------------------------

def test_video_panels_match_library(small_frames):
  panels = figures.video_panels(small_frames)
  assert tuple(panels) == figures.PANEL_TITLES
  for image in panels.values():
    assert image.dtype == np.uint8 and image.shape == (120, 160, 3)
  np.testing.assert_array_equal(panels["RGB"], small_frames[6])
  np.testing.assert_array_equal(panels["Dynamic image"],
                                np.asarray(arp_jax.to_image(arp_jax.pool(small_frames, method="arp"))))
  flows = flow_lib.compute_flow(small_frames, method="farneback")
  dynamic_flow = np.asarray(arp_jax.pool(flows, method="arp"))
  for name, field in (("Optical flow", flows[5]), ("Dynamic optical flow", dynamic_flow)):
    scale = np.percentile(np.hypot(field[..., 0], field[..., 1]), figures.FLOW_PERCENTILE)
    np.testing.assert_array_equal(panels[name], figures.flow_to_rgb(field, scale))
    assert panels[name].max() == 255  # scaled to its own range, not left dark


def test_video_panels_window_uses_middle_frames(small_frames):
  panels = figures.video_panels(small_frames, window=4)
  clip = small_frames[4:8]  # 4 frames centred on the middle of 12
  np.testing.assert_array_equal(panels["RGB"], clip[2])
  np.testing.assert_array_equal(panels["Dynamic image"],
                                np.asarray(arp_jax.to_image(arp_jax.pool(clip, method="arp"))))


def test_video_figure_has_four_titled_panels_and_saves_png(small_frames, tmp_path):
  fig = figures.video_figure(small_frames[:6], title="clip", dpi=50)
  assert [ax.get_title() for ax in fig.axes] == list(figures.PANEL_TITLES)
  assert all(len(ax.get_images()) == 1 for ax in fig.axes)
  assert fig._suptitle.get_text() == "clip"
  path = figures.save(fig, tmp_path / "fig.png")
  image = _png(path)
  width, height = fig.get_size_inches() * 50
  assert image.shape[:2] == (round(height), round(width))
  assert width == pytest.approx(4 * 3.2 * 50)


@pytest.mark.parametrize("frames, fragment", [
    (np.zeros((1, 8, 8, 3), np.uint8), "at least 2"),
    (np.zeros((5, 8, 8), np.uint8), "[T, H, W, 3]"),
    (np.zeros((5, 8, 8, 4), np.uint8), "[T, H, W, 3]"),
    (np.full((3, 8, 8, 3), np.nan, np.float32), "NaN"),
])
def test_video_figure_rejects_bad_frames(frames, fragment):
  with pytest.raises(ValueError) as error:
    figures.video_figure(frames)
  assert fragment in str(error.value)


def test_video_figure_rejects_unknown_flow_method_and_bad_window(small_frames):
  with pytest.raises(ValueError, match="unknown flow method"):
    figures.video_figure(small_frames[:3], flow_method="magic")
  with pytest.raises(ValueError, match="window"):
    figures.video_figure(small_frames[:3], window=1)


def test_save_rejects_bad_paths(tmp_path):
  fig = figures.weights_figure((3,))
  with pytest.raises(ValueError, match=r"\.png"):
    figures.save(fig, tmp_path / "fig.jpg")
  with pytest.raises(FileNotFoundError):
    figures.save(fig, tmp_path / "missing" / "fig.png")


# --- weights figure (Fig. 3) ----------------------------------------------------------------------------

def test_weights_figure_lines_are_arp_weights(tmp_path):
  lengths = (5, 10, 20)
  fig = figures.weights_figure(lengths)
  (ax,) = fig.axes
  lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
  assert len(lines) == 2 * len(lengths)
  for T in lengths:
    for variant, equation in (("harmonic", "eq. (3)"), ("linear", "eq. (5)")):
      x, y = lines[f"{equation}, T = {T}"].get_data()
      np.testing.assert_array_equal(x, np.arange(1, T + 1))
      np.testing.assert_array_equal(y, arp_jax.arp_weights(T, variant))
  # The paper's T = 10 values (REFERENCE.md).
  np.testing.assert_allclose(lines["eq. (3), T = 10"].get_ydata()[[0, 5, 9]], [-12.2187, 2.8980, 0.9000],
                             atol=1e-4)
  image = _png(figures.save(fig, tmp_path / "weights.png"))
  assert image.shape[:2] == (400, 640)


def test_weights_figure_harmonic_only_and_bad_lengths():
  fig = figures.weights_figure([2, 7], variants=("harmonic",))
  labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
  assert labels == ["eq. (3), T = 2", "eq. (3), T = 7"]
  for lengths in ((), (0,), (5, -1), (2.5,), (True,)):
    with pytest.raises(ValueError, match="lengths"):
      figures.weights_figure(lengths)
  with pytest.raises(ValueError, match="variants"):
    figures.weights_figure((5,), variants=("cubic",))


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_figure_video(tmp_path, capsys):
  out = tmp_path / "fig.png"
  status, stdout, err = _run(["figure", UCF_CLIP, "-o", out, "--max-frames", "8"], capsys)
  assert status == 0, err
  assert f"wrote {out}" in stdout and "8 frames" in stdout and "farneback" in stdout
  image = _png(out)
  assert image.shape[1] == 4 * 320  # four 3.2-inch panels at 100 dpi
  assert image.shape[0] == round((3.2 * 240 / 320 + 0.6) * 100)  # panels + titles + the video's name


def test_cli_figure_frame_dir(tmp_path, capsys):
  folder = tmp_path / "frames"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for n in range(1, 5):
    Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(folder / f"frame_{n}.png")
  status, stdout, err = _run(["figure", folder, "-o", tmp_path / "fig.png", "--flow", "dis",
                              "--max-frames", "3"], capsys)
  assert status == 0, err
  assert "3 frames" in stdout and "flow dis" in stdout
  assert _png(tmp_path / "fig.png").shape[1] == 4 * 320


def test_cli_figure_weights(tmp_path, capsys):
  out = tmp_path / "weights.png"
  status, stdout, err = _run(["figure", "--weights", "-o", out, "--lengths", "10,20,50"], capsys)
  assert status == 0, err
  assert "T = 10, 20, 50" in stdout
  assert _png(out).shape[:2] == (400, 640)
  status, stdout, err = _run(["figure", "--weights", "-o", out], capsys)
  assert status == 0, err
  assert "T = 5, 10, 20" in stdout


@pytest.mark.parametrize("args, fragment", [
    (["figure", "-o", "{tmp}/fig.png"], "exactly one"),
    (["figure", UCF_CLIP, "--weights", "-o", "{tmp}/fig.png"], "exactly one"),
    (["figure", "--weights"], "--output"),
    (["figure", "--weights", "-o", "{tmp}/fig.jpg"], ".png"),
    (["figure", "--weights", "-o", "{tmp}/missing/fig.png"], "does not exist"),
    (["figure", "--weights", "-o", "{tmp}/fig.png", "--lengths", "5,x"], "5,10,20"),
    (["figure", "--weights", "-o", "{tmp}/fig.png", "--lengths", "0"], "--lengths"),
    (["figure", "--weights", "-o", "{tmp}/fig.png", "--flow", "tvl1"], "--flow"),
    (["figure", "--weights", "-o", "{tmp}/fig.png", "--max-frames", "5"], "--max-frames"),
    (["figure", UCF_CLIP, "-o", "{tmp}/fig.png", "--lengths", "5"], "--lengths needs --weights"),
    (["figure", UCF_CLIP, "-o", "{tmp}/fig.png", "--flow", "magic"], "invalid choice"),
    (["figure", UCF_CLIP, "-o", "{tmp}/fig.png", "--max-frames", "0"], "positive"),
])
def test_cli_figure_usage_errors_exit_2(args, fragment, tmp_path, capsys):
  args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
  status, _, err = _run(args, capsys)
  _assert_usage_error(status, err, fragment)
  assert not list(tmp_path.iterdir())


def test_cli_figure_missing_input_and_too_few_frames_exit_2(tmp_path, capsys):
  status, _, err = _run(["figure", tmp_path / "nope.avi", "-o", tmp_path / "fig.png"], capsys)
  _assert_usage_error(status, err, "nope.avi")
  status, _, err = _run(["figure", UCF_CLIP, "-o", tmp_path / "fig.png", "--max-frames", "1"], capsys)
  _assert_usage_error(status, err, "at least 2")
  assert not (tmp_path / "fig.png").exists()
