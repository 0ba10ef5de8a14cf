"""Decoding an example's frames, flow and dynamic images, and the dynamic-image pipeline's values."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from arp_jax import input as ip
from pipeline_helpers import FRAME, NAME, T, dynamic_example, stored_images


def test_decoding_selected_frames_from_bytes_equals_tfds_decoding(data_dir, train_source):
  decoded = tfds.builder_from_directory(ip.dataset_folder(NAME, data_dir)).as_data_source("train")[3]
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


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_dynamic_images_restore_the_float_range(test_source, modality):
  example, q, low, high = dynamic_example(test_source[0], modality, 0)
  restored = ip.decode_dynamic_images(example, modality)
  expected = low[:, None, None, None] + q.astype(np.float32) / 255 * (high - low)[:, None, None, None]
  step = (high - low).max() / 255
  assert restored.shape == q.shape and restored.dtype == np.float32
  # JPEG error, in 8-bit steps: 4:2:0 chroma blurs the saturated colour streaks of the synthetic shapes.
  assert np.abs(restored - expected).mean() < 3 * step

  source = [example] * 3
  stored = stored_images(example, modality)
  mean = np.asarray(ip.RGB_MEAN if modality == "rgb" else ip.FLOW_MEAN, np.float32)
  for values, expected in (("restored", restored), ("image", stored - mean)):
    batch = next(iter(ip.make_dynamic_image_dataset(source, train=False, modality=modality, max_windows=4,
                                                    size=FRAME, batch_size=2, seed=0, num_epochs=1,
                                                    values=values, short_side=None)))
    images = batch["frames"][:, :, 0]  # windows of one image
    assert batch["frames"].shape == (2, 4, 1, FRAME, FRAME, q.shape[-1]) and images.dtype == np.float32
    np.testing.assert_array_equal(batch["windows"], len(q))  # 2 windows from frame 1
    np.testing.assert_allclose(images[0, :len(q)], expected, atol=1e-3)  # full-frame centre crop
    for pad in images[0, len(q):]:  # padding repeats the last image
      np.testing.assert_array_equal(pad, images[0, len(q) - 1])
    np.testing.assert_array_equal(batch["index"], [0, 1])
  with pytest.raises(ValueError, match="values is 'raw'"):
    ip.make_dynamic_image_dataset(source, train=False, modality=modality, max_windows=4, size=FRAME,
                                  batch_size=2, seed=0, num_epochs=1, values="raw")
