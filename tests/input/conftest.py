"""A tiny prepared synthetic_motion dataset (12 classes x 1 video per split, 16 frames of 32 x 32) for the
input tests, built once per test process."""

import pytest

from arp_jax import input as ip
from data_prep import synthetic
from pipeline_helpers import FRAME, NAME, T


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  synthetic.build(path, synthetic.SyntheticMotionConfig(
      name="pipeline_test", num_per_class_train=1, num_per_class_test=1, num_frames=T, size=FRAME))
  return path


@pytest.fixture(scope="session")
def train_source(data_dir):
  return ip.data_source(NAME, "train", data_dir=data_dir)


@pytest.fixture(scope="session")
def test_source(data_dir):
  return ip.data_source(NAME, "test", data_dir=data_dir)
