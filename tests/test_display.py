"""Tests for arp_jax.display: to_image (min-max to uint8, rounded) and grid."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arp_jax import display


def test_to_image_known_values():
  x = np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32)
  # (x + 1) * 255 / 4 = [0, 63.75, 127.5, 255] -> rounded [0, 64, 128, 255]
  out = display.to_image(x)
  assert isinstance(out, jax.Array) and out.dtype == jnp.uint8 and out.shape == (2, 2)
  np.testing.assert_array_equal(np.asarray(out), [[0, 64], [128, 255]])


def test_to_image_rounds_half_up_not_truncates_or_to_even():
  # span 510: scale exactly 0.5, so values x map to x / 2 exactly.
  x = np.array([0, 1, 3, 5, 7, 8, 510], np.float32)
  np.testing.assert_array_equal(np.asarray(display.to_image(x)), [0, 1, 2, 3, 4, 4, 255])
  # span 2: the middle is exactly 127.5 -> 128 (truncation would give 127).
  np.testing.assert_array_equal(np.asarray(display.to_image(np.array([0.0, 1.0, 2.0]))), [0, 128, 255])


def test_to_image_scales_all_channels_together():
  x = np.zeros((1, 2, 3), np.float32)
  x[..., 0] = [0, 10]  # red spans 0..10
  x[..., 1] = [0, 5]   # green spans only half of it: per-channel scaling would stretch it to 255
  out = np.asarray(display.to_image(x))
  np.testing.assert_array_equal(out[0, 1], [255, 128, 0])
  np.testing.assert_array_equal(out[0, 0], [0, 0, 0])


def test_to_image_constant_input_is_zero():
  for x in (np.full((3, 4, 3), 7.5, np.float32), np.zeros((2, 2), np.uint8), np.float32(3.0)):
    out = np.asarray(display.to_image(x))
    assert out.shape == np.shape(x) and out.dtype == np.uint8 and not out.any()


def test_to_image_numpy_and_jax_inputs_agree_and_integer_dtypes():
  x = np.random.default_rng(0).normal(size=(5, 6, 3)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(display.to_image(x)), np.asarray(display.to_image(jnp.asarray(x))))
  frames = np.arange(256, dtype=np.uint8).reshape(4, 4, 16)
  np.testing.assert_array_equal(np.asarray(display.to_image(frames)), frames)


def test_to_image_under_jit():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 8, 3)), jnp.float32)
  jitted = jax.jit(display.to_image)(x)
  assert jitted.dtype == jnp.uint8
  np.testing.assert_array_equal(np.asarray(jitted), np.asarray(display.to_image(x)))
  assert int(jitted.min()) == 0 and int(jitted.max()) == 255
  np.testing.assert_array_equal(np.asarray(jax.jit(display.to_image)(jnp.ones((2, 3)))), 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_to_image_non_finite_raises(bad):
  x = np.array([0.0, 1.0, bad], np.float32)
  with pytest.raises(ValueError, match="NaN or infinity"):
    display.to_image(x)
  with pytest.raises(ValueError, match="NaN or infinity"):
    display.to_image(jnp.asarray(x))


def test_to_image_rejects_empty_and_non_real():
  with pytest.raises(ValueError, match="empty"):
    display.to_image(np.zeros((0, 3), np.float32))
  with pytest.raises(TypeError, match="dtype bool"):
    display.to_image(np.zeros((2, 2), bool))
  with pytest.raises(TypeError, match="array"):
    display.to_image([1.0, 2.0])


def _stack(S, H=2, W=3, C=3):
  # Image s is filled with s + 1, so blank (black) cells are told apart from image 0.
  return np.broadcast_to(np.arange(1, S + 1, dtype=np.uint8)[:, None, None, None], (S, H, W, C)).copy()


def test_grid_near_square_with_black_blank_cells():
  out = np.asarray(display.grid(_stack(5)))
  assert out.dtype == np.uint8 and out.shape == (2 * 2, 3 * 3, 3)  # 5 images -> 3 columns, 2 rows
  cells = out.reshape(2, 2, 3, 3, 3)[:, 0, :, 0, 0]  # value of each cell's top-left pixel, [rows, cols]
  np.testing.assert_array_equal(cells, [[1, 2, 3], [4, 5, 0]])


def test_grid_explicit_columns_and_exact_tiling():
  images = np.random.default_rng(2).integers(0, 256, (6, 2, 3, 1), dtype=np.uint8)
  out = np.asarray(display.grid(images, columns=2))
  assert out.shape == (3 * 2, 2 * 3, 1)
  for s in range(6):
    r, c = divmod(s, 2)
    np.testing.assert_array_equal(out[r * 2:(r + 1) * 2, c * 3:(c + 1) * 3], images[s])
  assert np.asarray(display.grid(images[:1])).shape == (2, 3, 1)
  assert np.asarray(display.grid(images[:4])).shape == (4, 6, 1)  # 4 -> 2 x 2


def test_grid_errors():
  with pytest.raises(ValueError, match="3 dimensions"):
    display.grid(np.zeros((2, 3, 3), np.uint8))
  with pytest.raises(ValueError, match="no images"):
    display.grid(np.zeros((0, 2, 2, 3), np.uint8))
  with pytest.raises(TypeError, match="uint8"):
    display.grid(np.zeros((2, 2, 2, 3), np.float32))
  with pytest.raises(ValueError, match="columns"):
    display.grid(_stack(2), columns=0)
