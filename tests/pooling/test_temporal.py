"""`arp_jax.pool` against float64 NumPy computations on real clips: whole videos, windows, padded
batches and packed segments; plus jit/vmap/grad, dtypes, NaN behaviour and errors."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import arp_jax
from arp_jax.pooling import arp_weights

FOLDED = ("arp", "arp_linear", "mean", "max", "mhi")


def reference(frames, method, threshold=32.0, duration=None):
  """Float64 NumPy pooling of one clip [T, ...] (channels last for the MHI), written from the
  definitions: weighted sums for ARP (eqs. 3, 5), and the MHI by its recursion (Bobick and Davis):
  H_t = duration where the pixel moved at t, else max(0, H_{t-1} - 1)."""
  x = np.asarray(frames, np.float64)
  T = len(x)
  if method in ("arp", "arp_linear"):
    weights = arp_weights(T, "linear" if method == "arp_linear" else "harmonic").astype(np.float64)
    if T > 1 and method == "arp":  # recompute in float64 from eq. (3), independently of the library
      t = np.arange(1, T + 1)
      harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])
      weights = 2 * (T - t + 1) - (T + 1) * (harmonic[T] - harmonic[t - 1])
    return np.tensordot(weights, x, axes=1)
  if method == "mean":
    return x.mean(0)
  if method == "max":
    return x.max(0)
  duration = T if duration is None else duration
  history = np.zeros(x.shape[1:-1])
  for t in range(1, T):
    moved = np.abs(x[t] - x[t - 1]).mean(-1) > threshold
    history = np.where(moved, duration, np.maximum(history - 1, 0))
  return np.repeat((history / duration)[..., None], x.shape[-1], axis=-1)


def scale(frames, method):
  """The float32 error scale of pooling `frames`: sum_t |alpha_t| max|x| (1 for the MHI)."""
  if method == "mhi":
    return 1.0
  T = len(frames)
  weights = (np.abs(arp_weights(T, "linear" if method == "arp_linear" else "harmonic")).sum()
             if method.startswith("arp") else 1.0)
  return weights * max(np.abs(np.asarray(frames, np.float64)).max(), 1.0)


def assert_pooled(actual, expected, frames, method):
  actual = np.asarray(actual)
  assert actual.dtype == np.float32 and actual.shape == expected.shape
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2e-6 * scale(frames, method))


@pytest.mark.parametrize("method", FOLDED)
def test_whole_real_video(small_clips, method):
  clip = small_clips[0]
  assert_pooled(arp_jax.pool(clip, method), reference(clip, method), clip, method)


def test_full_resolution_dynamic_image(ucf_frames):
  assert_pooled(arp_jax.pool(ucf_frames), reference(ucf_frames, "arp"), ucf_frames, "arp")


@pytest.mark.parametrize("method", FOLDED)
@pytest.mark.parametrize("window, stride, start, tail", [
    (10, 6, 0, "pad"), (10, 6, 2, "pad"), (10, 6, 0, "drop"), (5, 3, 0, "pad"), (20, 12, 2, "drop")])
def test_windows_of_a_real_video(small_clips, method, window, stride, start, tail):
  clip = small_clips[0][:47]
  indices = arp_jax.window_indices(len(clip), window, stride, start, tail)
  out = arp_jax.pool(clip, method, window=window, stride=stride, start=start, tail=tail)
  expected = np.stack([reference(clip[i], method) for i in indices])
  assert_pooled(out, expected, clip[:window], method)


def test_short_last_window_repeats_the_last_frame(small_clips):
  clip = small_clips[0][:23]
  out = arp_jax.pool(clip, window=10, stride=6)
  assert out.shape == (4,) + clip.shape[1:]
  padded = np.concatenate([clip[18:], np.repeat(clip[-1:], 5, axis=0)])
  assert_pooled(out[-1], reference(padded, "arp"), padded, "arp")


@pytest.mark.parametrize("method", FOLDED + ("rp",))
def test_a_window_of_one_real_frame_is_that_frame_pooled_alone(small_clips, method):
  # T mod window = 1 with stride = window: the last window starts at the last frame and the tail rule
  # pads it with 9 copies. ARP would pool it to float32 residue that to_image stretches into noise.
  clip = small_clips[0][:21, :16, :16]
  alone = np.asarray(arp_jax.pool(clip[-1:], method))
  windows = np.asarray(arp_jax.pool(clip, method, window=10))
  assert windows.shape == (3,) + clip.shape[1:]
  np.testing.assert_array_equal(windows[-1], alone)
  np.testing.assert_array_equal(np.asarray(arp_jax.pool(clip[:1], method, window=10))[0],
                                np.asarray(arp_jax.pool(clip[:1], method)))
  if method == "arp":
    np.testing.assert_array_equal(windows[-1], clip[-1])  # the reference's T = 1 rule
    assert len(np.unique(np.asarray(arp_jax.to_image(windows[-1])))) > 100  # a picture, not a flat field
  if method != "rp":  # windows of two or more real frames keep the reference's padding
    padded = np.concatenate([clip[10:12], np.repeat(clip[11:12], 8, axis=0)])
    assert_pooled(arp_jax.pool(clip[:12], method, window=10)[-1], reference(padded, method), padded, method)
  # Padded batches (traced lengths under jit) follow the same rule, video by video.
  batch = padded_batch([clip, clip[:11]], 21)
  pooled = np.asarray(jax.jit(lambda x, n: arp_jax.pool(x, method, axis=1, window=10, lengths=n))(
      batch, np.array([21, 11])))
  np.testing.assert_allclose(pooled[0, 2], alone, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(pooled[1, 1], np.asarray(arp_jax.pool(clip[10:11], method)), rtol=1e-6,
                             atol=1e-6)
  np.testing.assert_array_equal(pooled[1, 2], 0.0)  # past the video's own windows


def test_whole_clip_window_equals_whole_video(small_clips):
  clip = small_clips[0]
  np.testing.assert_array_equal(arp_jax.pool(clip, window=len(clip)), arp_jax.pool(clip)[None])


def padded_batch(clips, T):
  batch = np.zeros((len(clips), T) + clips[0].shape[1:], np.float32)
  for b, clip in enumerate(clips):
    batch[b, :len(clip)] = clip
    batch[b, len(clip):] = np.nan  # padding must never be read
  return batch


@pytest.mark.parametrize("method", FOLDED)
def test_padded_batch_equals_each_video_alone(small_clips, method):
  clips = [small_clips[0][:70], small_clips[1][:41], small_clips[0][100:101]]
  batch = padded_batch(clips, 70)
  out = arp_jax.pool(batch, method, axis=1, lengths=np.array([70, 41, 1]))
  for b, clip in enumerate(clips):
    assert_pooled(out[b], reference(clip, method), clip, method)


@pytest.mark.parametrize("method", FOLDED)
def test_padded_batch_with_windows(small_clips, method):
  clips = [small_clips[0][:47], small_clips[1][:12]]
  out = arp_jax.pool(padded_batch(clips, 47), method, axis=1, lengths=np.array([47, 12]), window=10,
                     stride=6)
  assert out.shape == (2, arp_jax.num_windows(47, 10, 6)) + clips[0].shape[1:]
  for b, clip in enumerate(clips):
    count = arp_jax.num_windows(len(clip), 10, 6)
    expected = np.stack([reference(clip[i], method) for i in arp_jax.window_indices(len(clip), 10, 6)])
    assert_pooled(out[b, :count], expected, clip[:10], method)
    np.testing.assert_array_equal(out[b, count:], 0.0)


def test_long_padded_video_uses_the_blocked_loop(small_clips):
  clip = small_clips[0]  # 164 frames: more than the unrolled limit
  batch = padded_batch([clip, clip[:150]], 164)
  out = arp_jax.pool(batch, axis=1, lengths=np.array([164, 150]))
  assert_pooled(out[0], reference(clip, "arp"), clip, "arp")
  assert_pooled(out[1], reference(clip[:150], "arp"), clip, "arp")
  mhi = arp_jax.pool(batch, "mhi", axis=1, lengths=np.array([164, 150]))
  assert_pooled(mhi[1], reference(clip[:150], "mhi"), clip, "mhi")


@pytest.mark.parametrize("method", FOLDED)
def test_segment_ids_equal_each_video_alone(small_clips, method):
  a, b = small_clips[0][:30], small_clips[1][:17]
  # Interleaved on purpose: a video's frames keep their order of appearance.
  packed = np.concatenate([a[:10], b[:5], a[10:], b[5:]])
  ids = np.array([0] * 10 + [2] * 5 + [0] * 20 + [2] * 12)
  out = arp_jax.pool(packed, method, segment_ids=ids)
  assert out.shape == (3,) + a.shape[1:]
  assert_pooled(out[0], reference(a, method), a, method)
  assert_pooled(out[2], reference(b, method), b, method)
  np.testing.assert_array_equal(out[1], 0.0)  # a video id without frames


def test_segment_ids_with_windows_under_jit(small_clips):
  a, b = small_clips[0][:30], small_clips[1][:17]
  packed, ids = np.concatenate([a, b]), np.array([0] * 30 + [1] * 17)
  pooled = jax.jit(lambda f, s: arp_jax.pool(f, segment_ids=s, num_segments=2, max_length=30, window=10,
                                             stride=6))(packed, ids)
  assert pooled.shape == (2, 5) + a.shape[1:]  # windows start at 0, 6, 12, 18, 24
  assert arp_jax.num_windows(17, 10, 6) == 3
  assert_pooled(pooled[1, :3], np.asarray(arp_jax.pool(b, window=10, stride=6)), b[:10], "arp")
  np.testing.assert_array_equal(pooled[1, 3:], 0.0)


def test_jit_vmap_and_batch_axis_agree(small_clips):
  clips = np.stack([small_clips[0][:40], small_clips[1][:40]])
  batched = arp_jax.pool(clips, axis=1)
  mapped = jax.vmap(arp_jax.pool)(clips)
  jitted = jax.jit(lambda x: arp_jax.pool(x, axis=1))(clips)
  for b in range(2):
    assert_pooled(batched[b], reference(clips[b], "arp"), clips[b], "arp")
  np.testing.assert_allclose(mapped, batched, rtol=1e-6, atol=1e-6 * scale(clips[0], "arp"))
  np.testing.assert_allclose(jitted, batched, rtol=1e-6, atol=1e-6 * scale(clips[0], "arp"))


def test_time_axis_anywhere():
  x = np.random.default_rng(1).normal(size=(4, 9, 5, 3)).astype(np.float32)  # time at axis 1
  out = arp_jax.pool(x, axis=1)
  assert out.shape == (4, 5, 3)
  for b in range(4):
    assert_pooled(out[b], reference(x[b], "arp"), x[b], "arp")
  vectors = x.reshape(4, 9 * 5 * 3)[0].reshape(9, 15)
  assert_pooled(arp_jax.pool(vectors, axis=-2), reference(vectors, "arp"), vectors, "arp")


@pytest.mark.parametrize("method", ["arp", "arp_linear", "mean"])
def test_gradient_is_alpha_times_the_incoming_gradient(method):
  rng = np.random.default_rng(2)
  frames = rng.normal(size=(11, 4, 5, 3)).astype(np.float32)
  upstream = rng.normal(size=(4, 5, 3)).astype(np.float32)
  grad = jax.grad(lambda f: jnp.sum(arp_jax.pool(f, method) * upstream))(frames)
  alpha = (np.full(11, 1 / 11) if method == "mean" else
           arp_weights(11, "linear" if method == "arp_linear" else "harmonic"))
  np.testing.assert_allclose(grad, alpha[:, None, None, None] * upstream, rtol=1e-6, atol=1e-6)


def test_gradient_through_windows_and_lengths():
  frames = np.random.default_rng(3).normal(size=(2, 12, 3)).astype(np.float32)
  grad = jax.grad(lambda f: arp_jax.pool(f, axis=1, lengths=np.array([12, 5]), window=4).sum())(frames)
  # Video 1 has 5 frames: windows [0..3] and [4] (one real frame: the frame itself, weight 1); the
  # padding frames get no gradient.
  alpha = arp_weights(4)
  np.testing.assert_allclose(grad[1, :4, 0], alpha, rtol=1e-6)
  np.testing.assert_array_equal(grad[1, 4], 1.0)
  np.testing.assert_array_equal(grad[1, 5:], 0.0)
  np.testing.assert_allclose(grad[0, :, 0], np.tile(alpha, 3), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, ml_dtypes.bfloat16, np.float32, np.int16,
                                   np.float64])
def test_input_dtypes_accumulate_in_float32(small_clips, dtype):
  clip = small_clips[0][:25].astype(dtype)
  for array in (clip, jnp.asarray(clip)):
    out = arp_jax.pool(array)
    assert_pooled(out, reference(clip.astype(np.float64), "arp"), clip, "arp")


def test_uint8_needs_no_float_copy_of_the_video():
  # The dtype conversion is fused into the reduction: the compiled program holds no f32 [T, ...] buffer.
  frames = jnp.zeros((10, 64, 64, 3), jnp.uint8)
  hlo = jax.jit(arp_jax.pool).lower(frames).compile().as_text()
  assert "f32[10,64,64,3]" not in hlo


@pytest.mark.parametrize("method", ["arp", "mean", "max"])
def test_nan_frames_propagate_where_they_are_read(method):
  frames = np.random.default_rng(4).normal(size=(6, 3, 3)).astype(np.float32)
  frames[2, 1, 1] = np.nan
  out = np.asarray(arp_jax.pool(frames, method))
  assert np.isnan(out[1, 1]) and np.isfinite(np.delete(out.ravel(), 4)).all()


def test_nan_moves_the_whole_mhi_pixel():
  frames = np.zeros((5, 2, 2, 3), np.float32)
  frames[3, 0, 1, 2] = np.nan
  out = np.asarray(arp_jax.pool(frames, "mhi"))
  assert np.isnan(out[0, 1]).all() and np.isfinite(out[1]).all() and np.isfinite(out[0, 0]).all()


def test_nan_policy_raise_names_the_frame():
  frames = np.zeros((6, 2, 2, 3), np.float32)
  frames[4, 1, 0, 0] = np.inf
  with pytest.raises(ValueError, match="index 4 of axis 0"):
    arp_jax.pool(frames, nan_policy="raise")
  with pytest.raises(ValueError, match="traced"):
    jax.jit(lambda f: arp_jax.pool(f, nan_policy="raise"))(frames)


def test_motion_history_of_a_moving_square():
  frames = np.zeros((8, 10, 10, 3), np.uint8)
  for t in range(8):
    frames[t, 2:4, t:t + 2] = 255  # a square moving right by one pixel per frame
  out = np.asarray(arp_jax.pool(frames, "mhi"))
  # Frame f (1-based) covers columns f - 1 and f: column c is entered at frame c and left at frame
  # c + 2, so it last changed at frame c + 2, except columns 7 and 8, still covered at the end, which
  # last changed when they were entered (frames 7 and 8).
  np.testing.assert_allclose(out[2, :7, 0], (np.arange(7) + 2) / 8)
  assert out[2, 7, 0] == pytest.approx(7 / 8) and out[2, 8, 0] == pytest.approx(8 / 8)
  assert out[2, 9, 0] == 0
  assert (out[5:] == 0).all() and (out[..., 0] == out[..., 2]).all()
  np.testing.assert_allclose(out, reference(frames, "mhi"), atol=1e-6)
  short = np.asarray(arp_jax.pool(frames, "mhi", mhi_duration=3.0))
  np.testing.assert_allclose(short, reference(frames, "mhi", duration=3.0), atol=1e-6)


def test_one_frame_video_is_returned():
  frame = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
  for method in ("arp", "arp_linear", "mean", "max"):
    np.testing.assert_array_equal(arp_jax.pool(frame, method), frame[0])
  np.testing.assert_array_equal(arp_jax.pool(frame, "mhi"), 0.0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: arp_jax.pool(np.zeros((0, 4, 4, 3))), ValueError, "no frames"),
    (lambda: arp_jax.pool(np.float32(3.0)), ValueError, "scalar"),
    (lambda: arp_jax.pool(np.zeros((4, 2), "U1")), TypeError, "expected real numbers"),
    (lambda: arp_jax.pool(np.zeros((4, 2), bool)), TypeError, "dtype bool"),
    (lambda: arp_jax.pool(np.zeros((4, 2), complex)), TypeError, "complex"),
    (lambda: arp_jax.pool([[1.0, 2.0]]), TypeError, "NumPy or JAX array"),
    (lambda: arp_jax.pool(np.zeros((4, 2)), "median"), ValueError, "unknown pooling method"),
    (lambda: arp_jax.pool(np.zeros((4, 2)), axis=2), ValueError, "axis 2 is out of range"),
    (lambda: arp_jax.pool(np.zeros((5, 2)), window=10, tail="drop"), ValueError, "longer than the 5"),
    (lambda: arp_jax.pool(np.zeros((5, 2)), window=2, start=5), ValueError, "past the last frame"),
    (lambda: arp_jax.pool(np.zeros((5, 2)), stride=2), ValueError, "need window"),
    (lambda: arp_jax.pool(np.zeros((2, 5, 2)), axis=1, lengths=np.array([5])), ValueError,
     r"lengths has shape \(1,\); expected \(2,\)"),
    (lambda: arp_jax.pool(np.zeros((2, 5, 2)), axis=1, lengths=np.array([5, 6])), ValueError,
     r"lengths\[1\] = 6"),
    (lambda: arp_jax.pool(np.zeros((2, 5, 2)), axis=1, lengths=np.array([5, 0])), ValueError,
     r"lengths\[1\] = 0"),
    (lambda: arp_jax.pool(np.zeros((2, 5, 2)), axis=1, lengths=np.array([5.0, 2.0])), TypeError,
     "lengths has dtype float64"),
    (lambda: arp_jax.pool(np.zeros((2, 5, 2)), axis=1, lengths=np.array([5, 3]), window=4, tail="drop"),
     ValueError, "video 1 .length 3.: window=4 is longer"),
    (lambda: arp_jax.pool(np.zeros((5, 2)), segment_ids=np.array([0, 0, 1])), ValueError,
     r"segment_ids has shape \(3,\); expected \(5,\)"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), segment_ids=np.array([0, -1, 1])), ValueError, "must be >= 0"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), segment_ids=np.array([0, 3, 1]), num_segments=2), ValueError,
     "num_segments=2"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), segment_ids=np.array([0, 0, 1]), max_length=1), ValueError,
     "max_length=1"),
    (lambda: jax.jit(lambda f, s: arp_jax.pool(f, segment_ids=s))(np.zeros((3, 2)), np.array([0, 0, 1])),
     ValueError, "pass num_segments and max_length"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), lengths=np.int32(2), segment_ids=np.array([0, 0, 1])),
     ValueError, "not both"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), "mhi", mhi_channel_axis=0), ValueError, "after the time axis"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), rp_options={"C": 10}), ValueError, "for method='rp'"),
    (lambda: arp_jax.pool(np.zeros((3, 2)), nan_policy="omit"), ValueError, "unknown nan_policy"),
])
def test_bad_input_is_named(call, error, message):
  with pytest.raises(error, match=message):
    call()


def test_exact_rank_pooling_through_pool(small_clips):
  clip = small_clips[0][:23, ::4, ::4]  # [23, 15, 20, 3]
  flat = clip.reshape(23, -1)
  whole = arp_jax.pool(clip, "rp", rp_options={"C": 10.0})
  np.testing.assert_allclose(whole, np.asarray(arp_jax.rank_pool(flat, C=10.0)).reshape(clip.shape[1:]),
                             rtol=1e-6, atol=1e-7)
  windows = arp_jax.pool(clip, "rp", window=10, stride=6)
  for k, frames in enumerate(arp_jax.window_indices(23, 10, 6)):
    np.testing.assert_allclose(windows[k].ravel(), arp_jax.rank_pool(flat[frames]), rtol=1e-4, atol=1e-6)
  batch = padded_batch([clip, clip[:9]], 23)
  padded = arp_jax.pool(batch, "rp", axis=1, lengths=np.array([23, 9]))
  np.testing.assert_allclose(padded[1].ravel(), arp_jax.rank_pool(flat[:9]), rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match="forward_backward"):
    arp_jax.pool(clip, "rp", rp_options={"forward_backward": True})
