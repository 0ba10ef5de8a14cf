"""Tests for arp_jax.flow.tvl1: accuracy against known flows and against OpenCV's DualTVL1, batching, errors.

All accuracy tests run on 96x128 crops of the shipped real clips, in batches of 8 pairs of one shape, so
that the op compiles once for them; the batching tests use a smaller pyramid to compile quickly.
"""

import functools
import importlib

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arp_jax import flow, video
from arp_jax.flow import tvl1

from paths import HMDB_CLIP, UCF_CLIP

SIZE = (96, 128)
BORDER = 10  # pixels left out of the EPE: motion there leaves or enters the frame
tvl1_module = importlib.import_module("arp_jax.flow.tvl1")  # the module (`arp_jax.flow.tvl1` is the op)
SMALL = dict(scales=2, warps=2, inner_iterations=5, outer_iterations=3)  # a quick pyramid for batching


@pytest.fixture(scope="module")
def ucf_frames():
  return video.read_frames(UCF_CLIP)


@pytest.fixture(scope="module")
def hmdb_frames():
  return video.read_frames(HMDB_CLIP)


def _grey(rgb):
  """uint8 RGB `[N, H, W, 3]` -> uint8 grey `[N, H, W]` by OpenCV (what the reference sees)."""
  return np.stack([cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in rgb])


def _opencv_tvl1(grey0, grey1):
  """OpenCV's DualTVL1 with its defaults on uint8 grey pairs `[N, H, W]` -> `[N, H, W, 2]`."""
  solver = cv2.optflow.DualTVL1OpticalFlow_create()
  return np.stack([solver.calc(a, b, None) for a, b in zip(grey0, grey1)])


def _bilinear(image, x, y):
  """`image` `[H, W]` sampled bilinearly at (x, y) with replicated edges (a sampler independent of the op)."""
  height, width = image.shape
  x = np.clip(x, 0, width - 1)
  y = np.clip(y, 0, height - 1)
  x0 = np.minimum(np.floor(x).astype(int), width - 2)
  y0 = np.minimum(np.floor(y).astype(int), height - 2)
  tx, ty = x - x0, y - y0
  return ((1 - ty) * ((1 - tx) * image[y0, x0] + tx * image[y0, x0 + 1])
          + ty * ((1 - tx) * image[y0 + 1, x0] + tx * image[y0 + 1, x0 + 1]))


def _known_flows():
  """Named flows `[H, W, 2]` on the 96x128 grid: translations, a smooth random field, a rotation, a zoom."""
  height, width = SIZE
  y, x = np.mgrid[:height, :width].astype(np.float64)
  flows = {}
  for u, v in ((0.5, -0.5), (-1.5, 2.0), (3.0, -4.0), (-8.0, 6.0), (8.0, 8.0)):
    flows[f"translation {u:+} {v:+}"] = np.stack(np.broadcast_arrays(u, v + 0 * x), -1)
  rng = np.random.default_rng(0)
  coarse = rng.normal(0, 2.5, (4, 5, 2)).astype(np.float32)
  flows["smooth random"] = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float64)
  angle, cy, cx = np.deg2rad(3.0), height / 2, width / 2
  flows["rotation 3 deg"] = np.stack([np.cos(angle) * (x - cx) - np.sin(angle) * (y - cy) + cx - x,
                                      np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy) + cy - y], -1)
  flows["zoom 4 %"] = np.stack([0.04 * (x - cx), 0.04 * (y - cy)], -1)
  return flows


def _epe(a, b, border=BORDER):
  a, b = a[..., border:-border, border:-border, :], b[..., border:-border, border:-border, :]
  return np.sqrt(((a - b)**2).sum(-1)).mean(axis=(-1, -2))


def _crops(frames, starts, corner):
  """Consecutive pairs (k, k+1) for k in `starts`, cropped to SIZE at `corner`: two uint8 `[N, h, w, 3]`."""
  top, left = corner
  window = np.s_[top:top + SIZE[0], left:left + SIZE[1]]
  return (np.stack([frames[k][window] for k in starts]), np.stack([frames[k + 1][window] for k in starts]))


def test_tvl1_is_as_accurate_as_opencv_on_real_frames_warped_by_known_flows(ucf_frames):
  # frame1 is a real frame; frame0(x) = frame1(x + flow(x)), so `flow` is the exact flow from frame0 to
  # frame1 in OpenCV's sense. The crop sits inside the frame so that samples come from real pixels.
  frame1_full = _grey(ucf_frames[40:41])[0].astype(np.float64)
  top, left = 70, 100
  y, x = np.mgrid[:SIZE[0], :SIZE[1]].astype(np.float64)
  flows = _known_flows()
  frame1 = frame1_full[top:top + SIZE[0], left:left + SIZE[1]]
  frame0s, truths = [], []
  for truth in flows.values():
    frame0s.append(_bilinear(frame1_full, left + x + truth[..., 0], top + y + truth[..., 1]))
    truths.append(truth)
  frame0s = np.round(np.stack(frame0s)).astype(np.uint8)  # both methods see the same 8-bit frames
  frame1s = np.broadcast_to(np.round(frame1).astype(np.uint8), frame0s.shape)
  truths = np.stack(truths)
  ours = np.asarray(tvl1(frame0s, frame1s))
  opencv = _opencv_tvl1(frame0s, np.ascontiguousarray(frame1s))
  ours_epe, opencv_epe = _epe(ours, truths), _epe(opencv, truths)
  report = {name: (round(float(a), 3), round(float(b), 3)) for name, a, b in zip(flows, ours_epe, opencv_epe)}
  assert (ours_epe <= 1.05 * opencv_epe).all(), report


def test_tvl1_agrees_with_opencv_on_consecutive_real_frames(ucf_frames, hmdb_frames):
  ucf = _crops(ucf_frames, (20, 60, 100, 140), (60, 100))
  hmdb = _crops(hmdb_frames, (5, 25, 45, 65), (60, 100))
  frame0 = np.concatenate([ucf[0], hmdb[0]])
  frame1 = np.concatenate([ucf[1], hmdb[1]])
  ours = np.asarray(tvl1(frame0, frame1))
  opencv = _opencv_tvl1(_grey(frame0), _grey(frame1))
  epe = np.sqrt(((ours - opencv)**2).sum(-1))
  assert epe.mean() <= 0.3, epe.mean(axis=(1, 2))
  code_difference = np.abs(flow.quantize(ours, 20).astype(int) - flow.quantize(opencv, 20).astype(int))
  assert (code_difference <= 2).mean() >= 0.95, (code_difference <= 2).mean()


@pytest.fixture(scope="module")
def small_pairs(hmdb_frames):
  return _crops(hmdb_frames, (10, 11, 30), (50, 80))


def test_a_batch_equals_its_pairs_one_by_one(small_pairs):
  frame0, frame1 = small_pairs
  batch = np.asarray(tvl1(frame0, frame1, **SMALL))
  for k in range(len(frame0)):
    alone = np.asarray(tvl1(frame0[k:k + 1], frame1[k:k + 1], **SMALL))[0]
    np.testing.assert_allclose(batch[k], alone, atol=1e-3)


def test_the_batched_formulation_of_accelerators_equals_the_cpu_one(small_pairs):
  # On this CPU `tvl1` solves the pairs one at a time (arp_jax.xla_cpu.tvl1); accelerators run the vmapped
  # solver, whose while loops step every pair until the slowest has converged: it must give the same flow.
  frame0, frame1 = (jnp.asarray(f, jnp.float32) @ jnp.array([0.299, 0.587, 0.114]) for f in small_pairs)
  params = tvl1_module._params(**SMALL)  # pylint: disable=protected-access
  pair_flow = functools.partial(tvl1_module._tvl1_pair, params=params)
  vmapped = jax.jit(lambda a, b: tvl1_module._vmapped(a, b, pair_flow=pair_flow))(frame0, frame1)
  np.testing.assert_allclose(np.asarray(vmapped), np.asarray(tvl1(*small_pairs, **SMALL)), atol=1e-3)


def test_tvl1_runs_under_jit_and_vmap_with_any_leading_shape(small_pairs):
  frame0, frame1 = small_pairs
  expected = np.asarray(tvl1(frame0, frame1, **SMALL))
  jitted = jax.jit(lambda a, b: tvl1(a, b, **SMALL))(frame0, frame1)
  np.testing.assert_allclose(np.asarray(jitted), expected, atol=1e-3)
  mapped = jax.vmap(lambda a, b: tvl1(a, b, **SMALL))(frame0[:, None], frame1[:, None])
  assert mapped.shape == (3, 1, *SIZE, 2)
  np.testing.assert_allclose(np.asarray(mapped)[:, 0], expected, atol=1e-3)


def test_grey_rgb_uint8_and_float_inputs_give_the_same_flow(small_pairs):
  frame0, frame1 = small_pairs
  expected = np.asarray(tvl1(frame0, frame1, **SMALL))
  as_float = np.asarray(tvl1(frame0.astype(np.float32), jnp.asarray(frame1, jnp.float32), **SMALL))
  np.testing.assert_allclose(as_float, expected, atol=1e-5)
  weights = np.array([0.299, 0.587, 0.114], np.float32)
  grey = np.asarray(tvl1(frame0 @ weights, frame1 @ weights, **SMALL))
  np.testing.assert_allclose(grey, expected, atol=1e-3)
  assert grey.dtype == np.float32 and grey.shape == (3, *SIZE, 2)


@pytest.mark.parametrize("frame0, frame1, params, error, match", [
    (np.zeros((96, 128)), np.zeros((96, 120)), {}, ValueError, "same shape"),
    (np.zeros(5), np.zeros(5), {}, ValueError, "expected"),
    (np.zeros((12, 16)), np.zeros((12, 16)), {}, ValueError, "too small"),
    (np.full((96, 128), np.nan), np.zeros((96, 128)), {}, ValueError, "NaN"),
    (np.zeros((96, 128), bool), np.zeros((96, 128), bool), {}, TypeError, "dtype"),
    (np.zeros((96, 128)), np.zeros((96, 128)), {"scale_step": 1.5}, ValueError, "scale_step"),
    (np.zeros((96, 128)), np.zeros((96, 128)), {"median_filtering": 4}, ValueError, "odd"),
    (np.zeros((96, 128)), np.zeros((96, 128)), {"warps": 2.0}, TypeError, "warps"),
    (np.zeros((96, 128)), np.zeros((96, 128)), {"interpolation": "nearest"}, ValueError, "interpolation"),
])
def test_bad_input_gets_a_clear_error(frame0, frame1, params, error, match):
  with pytest.raises(error, match=match):
    tvl1(frame0, frame1, **params)
