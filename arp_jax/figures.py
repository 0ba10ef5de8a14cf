"""Figures of the paper, rendered with matplotlib (Agg, PNG): the panels of Fig. 1/9 and the curves of Fig. 3.

    from arp_jax import figures
    fig = figures.video_figure(frames)            # RGB | Dynamic image | Optical flow | Dynamic optical flow
    figures.save(fig, "fig.png")
    figures.save(figures.weights_figure((5, 10, 20)), "weights.png")

Every figure is a `matplotlib.figure.Figure` with its own Agg canvas: nothing here touches pyplot's global
state or the interactive backend, so it works headless and in threads.

Optical flow is shown with the usual colour coding (as in the Middlebury benchmark and OpenCV's
tutorial): hue = direction of the displacement (u, v), value = its magnitude, full saturation. Image
coordinates: u is positive to the right and v downwards (`arp_jax.flow`), so rightward motion is red
(hue 0 deg), downward yellow-green (90 deg), leftward cyan (180 deg), upward violet (270 deg), and no
motion black.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from arp_jax.checks import is_int
from arp_jax.display import to_image
from arp_jax.pooling import arp_weights, pool

# Panel titles of `video_figure`, left to right: the paper's SI, DI, OF and DOF (Fig. 9).
PANEL_TITLES = ("RGB", "Dynamic image", "Optical flow", "Dynamic optical flow")

# `video_figure` scales each flow panel so that this percentile of its magnitudes is full brightness:
# a few outlier vectors (Farneback at the borders, say) would otherwise leave the rest of the panel dark.
FLOW_PERCENTILE = 99.0

# Fig. 3 of the paper: T = 5, 10 and 20 frames.
PAPER_LENGTHS = (5, 10, 20)

VARIANT_EQUATIONS = {"harmonic": "eq. (3)", "linear": "eq. (5)"}


def _new_figure(figsize: tuple[float, float], dpi: float) -> Figure:
  """A Figure with its own Agg canvas (no pyplot), laid out by matplotlib's constrained layout."""
  fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def flow_to_rgb(flow, max_magnitude: float | None = None) -> np.ndarray:
  """Colour-codes a flow field: hue = direction, value = magnitude, saturation 1.

  The hue is the angle of (u, v) in image coordinates, `atan2(v, u)` in [0, 360) degrees with v pointing
  down: (1, 0) (rightward) is hue 0 (red), (0, 1) (downward) 90, (-1, 0) (leftward) 180 (cyan), (0, -1)
  (upward) 270. The value is `min(|(u, v)| / max_magnitude, 1)`, so zero motion is black.

  Args:
    flow: `[H, W, 2]` real array of displacements (u, v), e.g. one field of `arp_jax.flow.compute_flow`
      or the dynamic optical flow (ARP of the fields).
    max_magnitude: the magnitude shown at full brightness; larger ones are clipped. None: the largest
      magnitude of `flow`. A field that is zero everywhere (or max_magnitude 0) is black.

  Returns:
    `uint8 [H, W, 3]` RGB.

  Raises:
    ValueError: `flow` is not `[H, W, 2]`, not real, holds NaN or infinity, or max_magnitude is negative
      or not finite.
  """
  flow = np.asarray(flow)
  if flow.ndim != 3 or flow.shape[-1] != 2:
    raise ValueError(f"flow has shape {flow.shape}; expected one flow field [H, W, 2] of (u, v)")
  if not (np.issubdtype(flow.dtype, np.floating) or np.issubdtype(flow.dtype, np.integer)):
    raise ValueError(f"flow has dtype {flow.dtype}; expected real displacements in pixels")
  flow = flow.astype(np.float64)
  if not np.isfinite(flow).all():
    raise ValueError("flow holds NaN or infinity; expected finite displacements")
  u, v = flow[..., 0], flow[..., 1]
  magnitude = np.hypot(u, v)
  if max_magnitude is None:
    max_magnitude = float(magnitude.max()) if magnitude.size else 0.0
  max_magnitude = float(max_magnitude)
  if not np.isfinite(max_magnitude) or max_magnitude < 0:
    raise ValueError(f"max_magnitude is {max_magnitude}; expected a non-negative, finite number of pixels")
  value = np.clip(magnitude / max_magnitude, 0.0, 1.0) if max_magnitude > 0 else np.zeros_like(magnitude)
  hue = np.mod(np.degrees(np.arctan2(v, u)), 360.0)  # [H, W], degrees
  # HSV to RGB with S = 1: channel n (R: 5, G: 3, B: 1) is V * (1 - clip(min(k, 4 - k), 0, 1)),
  # k = (n + H / 60) mod 6.
  rgb = []
  for n in (5.0, 3.0, 1.0):
    k = np.mod(n + hue / 60.0, 6.0)
    rgb.append(value * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)))
  return np.clip(np.floor(np.stack(rgb, axis=-1) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _robust_max(flow: np.ndarray) -> float:
  """The FLOW_PERCENTILE-th percentile of the magnitudes of `flow [H, W, 2]`, or the maximum if that is 0."""
  magnitude = np.hypot(flow[..., 0], flow[..., 1])
  scale = float(np.percentile(magnitude, FLOW_PERCENTILE))
  return scale if scale > 0 else float(magnitude.max())


def _check_frames(frames) -> np.ndarray:
  """`frames` as `[T, H, W, 3]` uint8 or float; ValueError for a wrong rank, channels, T < 2 or NaN."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"frames has shape {frames.shape}; expected RGB frames [T, H, W, 3]")
  if frames.dtype != np.uint8:
    if not (np.issubdtype(frames.dtype, np.floating) or np.issubdtype(frames.dtype, np.integer)):
      raise ValueError(f"frames has dtype {frames.dtype}; expected uint8 (or real 0..255) RGB frames")
    if not np.isfinite(frames).all():
      raise ValueError("frames holds NaN or infinity; expected finite pixel values")
  if frames.shape[0] < 2:
    raise ValueError(
        f"frames holds {frames.shape[0]} frame(s); expected at least 2 to compute optical flow between")
  if frames.shape[1] == 0 or frames.shape[2] == 0:
    raise ValueError(f"frames has shape {frames.shape}; expected frames of at least 1x1 pixels")
  return frames


def _as_uint8(frames: np.ndarray) -> np.ndarray:
  """uint8 frames unchanged; other real frames (0..255 scale) clipped and rounded half up."""
  if frames.dtype == np.uint8:
    return frames
  return np.clip(np.floor(frames.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def _clip(frames: np.ndarray, window: int | None) -> np.ndarray:
  """The `window` consecutive frames centred on the middle of the video (all frames for None)."""
  T = frames.shape[0]
  if window is None:
    return frames
  if not is_int(window) or window < 2:
    raise ValueError(f"window is {window!r}; expected an int >= 2 (frames per clip) or None (all frames)")
  if window >= T:
    return frames
  first = (T - window) // 2
  return frames[first:first + int(window)]


def video_panels(frames, *, flow_method: str = "farneback",
                 window: int | None = None) -> dict[str, np.ndarray]:
  """The four images of `video_figure`, as uint8 RGB arrays keyed by `PANEL_TITLES`.

  With T the number of frames used (all of them, or `window` around the middle) and m = T // 2:
    "RGB": frame m.
    "Dynamic image": `to_image(pool(frames, "arp"))`, ARP (eq. 3) over the T frames, min-max scaled.
    "Optical flow": `flow_to_rgb` of flow field m - 1 (from frame m - 1 to the frame shown).
    "Dynamic optical flow": `flow_to_rgb` of the ARP of the T - 1 flow fields, a 2-channel (u, v) image
      (the paper applies ARP to 10 flow fields: `window=11`).
  Each flow panel is scaled so that the `FLOW_PERCENTILE`-th percentile of its own magnitudes is full
  brightness: the dynamic flow is a weighted sum and has no pixel scale of its own.

  Args:
    frames: `uint8 [T, H, W, 3]` RGB, T >= 2 (or real values on the 0..255 scale; rounded to uint8 for
      the RGB and flow panels, pooled as they are for the dynamic image).
    flow_method: "farneback" (fast, the default), "tvl1" (the paper's TV-L1, by the JAX op
      `arp_jax.flow.tvl1`), "tvl1_opencv" (OpenCV's DualTVL1, slow) or "dis"; see
      `arp_jax.flow.compute_flow`.
    window: frames to use, the `window` consecutive frames centred on the middle of the video; None
      (default) uses every frame, like the dynamic images of Fig. 1.

  Returns:
    `{title: uint8 [H, W, 3]}` in the order of `PANEL_TITLES`.

  Raises:
    ValueError: frames is not `[T, H, W, 3]`, T < 2, holds NaN or infinity, window < 2, or the flow method
      is unknown.
  """
  # Imported here: data_prep pulls in OpenCV, which only the flow panels need.
  from arp_jax.flow import compute_flow

  frames = _clip(_check_frames(frames), window)
  T = frames.shape[0]
  middle = T // 2
  rgb = _as_uint8(frames)
  flow = compute_flow(rgb, method=flow_method)  # float32 [T - 1, H, W, 2]
  dynamic_flow = np.asarray(pool(flow, method="arp"))  # [H, W, 2]
  shown_flow = flow[middle - 1]
  return {
      PANEL_TITLES[0]: rgb[middle],
      PANEL_TITLES[1]: np.asarray(to_image(pool(frames, method="arp"))),
      PANEL_TITLES[2]: flow_to_rgb(shown_flow, _robust_max(shown_flow)),
      PANEL_TITLES[3]: flow_to_rgb(dynamic_flow, _robust_max(dynamic_flow)),
  }


def video_figure(frames, *, flow_method: str = "farneback", window: int | None = None,
                 title: str | None = None, panel_width: float = 3.2, dpi: float = 100.0) -> Figure:
  """The layout of the paper's Fig. 1/9 for one video: RGB frame, dynamic image, optical flow, dynamic flow.

  One row of four panels titled `PANEL_TITLES` (Fig. 9 calls them SI, DI, OF and DOF), axes hidden; the
  images are those of `video_panels`.

  Args:
    frames: `uint8 [T, H, W, 3]` RGB, T >= 2.
    flow_method, window: see `video_panels`.
    title: optional title above the panels (e.g. the video's name).
    panel_width: width of each panel in inches; its height follows the frames' aspect ratio.
    dpi: dots per inch of the figure (and of `save`).

  Returns:
    a Figure of `4 * panel_width` by `panel_width * H / W + 0.3` inches (+ 0.3 with a title), with four
    axes holding one image each.

  Raises:
    ValueError: as `video_panels`, or panel_width / dpi not positive.
  """
  if not panel_width > 0 or not dpi > 0:
    raise ValueError(f"panel_width ({panel_width}) and dpi ({dpi}) must be positive")
  panels = video_panels(frames, flow_method=flow_method, window=window)
  H, W = next(iter(panels.values())).shape[:2]
  height = panel_width * H / W + 0.3 + (0.3 if title else 0.0)
  fig = _new_figure((4 * panel_width, height), dpi)
  axes = fig.subplots(1, 4)
  for ax, (name, image) in zip(axes, panels.items()):
    ax.imshow(image, interpolation="nearest")
    ax.set_title(name)
    ax.set_axis_off()
  if title:
    fig.suptitle(title)
  return fig


def _check_plot_lengths(lengths) -> tuple[int, ...]:
  """The video lengths T of `weights_figure` as ints, or ValueError."""
  lengths = tuple(lengths)
  if not lengths:
    raise ValueError("lengths is empty; expected at least one video length T, e.g. (5, 10, 20)")
  for T in lengths:
    if not is_int(T) or T < 1:
      raise ValueError(f"lengths holds {T!r}; expected positive ints (frames per video), e.g. (5, 10, 20)")
  return tuple(int(T) for T in lengths)


def weights_figure(lengths: Sequence[int] = PAPER_LENGTHS,
                   variants: Sequence[str] = ("harmonic", "linear"), *,
                   figsize: tuple[float, float] = (6.4, 4.0), dpi: float = 100.0) -> Figure:
  """Fig. 3 of the paper: the ARP weighting functions alpha_t against t for a few video lengths T.

  One line per (variant, T), points at t = 1..T: "harmonic" (eq. 3, ranking the time-averaged features
  V_t; solid) and "linear" (eq. 5, `2t - T - 1`, ranking the frames themselves; dashed), the same colour
  for the same T. The y values are exactly `arp_weights(T, variant)`; each line's label is
  `"eq. (3), T = 5"` and so on.

  Args:
    lengths: video lengths T >= 1; the paper's are (5, 10, 20).
    variants: any of "harmonic" and "linear", in drawing order.
    figsize, dpi: size of the figure in inches, and its dots per inch.

  Returns:
    a Figure with one axes (x: t, y: alpha_t) holding `len(variants) * len(lengths)` lines and a legend.

  Raises:
    ValueError: lengths is empty or holds a non-positive or non-int value, variants is empty or holds an
      unknown name.
  """
  lengths = _check_plot_lengths(lengths)
  variants = tuple(variants)
  if not variants or any(variant not in VARIANT_EQUATIONS for variant in variants):
    raise ValueError(
        f"variants is {variants!r}; expected a non-empty selection of {tuple(VARIANT_EQUATIONS)}")
  fig = _new_figure(figsize, dpi)
  ax = fig.add_subplot()
  styles = {"harmonic": dict(linestyle="-", marker="o"), "linear": dict(linestyle="--", marker="x")}
  for variant in variants:
    for index, T in enumerate(lengths):
      t = np.arange(1, T + 1)
      ax.plot(t, arp_weights(T, variant), color=f"C{index}", markersize=4,
              label=f"{VARIANT_EQUATIONS[variant]}, T = {T}", **styles[variant])
  ax.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_xlabel("frame t")
  ax.set_ylabel(r"$\alpha_t$")
  ax.set_title("ARP weighting functions (Fig. 3)")
  ax.legend(fontsize="small", ncols=2 if len(variants) > 1 else 1)
  return fig


def save(fig: Figure, path) -> Path:
  """Writes `fig` as a PNG at its own size and dpi (`figsize * dpi` pixels) with the Agg renderer.

  Raises:
    ValueError: `path` does not end in .png.
    FileNotFoundError: the folder of `path` does not exist.
  """
  path = Path(os.fspath(path))
  if path.suffix.lower() != ".png":
    raise ValueError(f"figures are saved as PNG; expected a path ending in .png, got {str(path)!r}")
  if not path.parent.is_dir():
    raise FileNotFoundError(f"the folder of {str(path)!r} does not exist")
  if not isinstance(fig.canvas, FigureCanvasAgg):
    FigureCanvasAgg(fig)
  fig.savefig(path, format="png", dpi=fig.dpi)
  return path
