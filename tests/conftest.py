"""Shared fixtures: real clips from tests/data (see tests/data/SOURCES.md)."""

from pathlib import Path

import numpy as np
import pytest

from data_prep.video import read_frames

DATA = Path(__file__).parent / "data"
UCF101_CLIP = DATA / "clips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
HMDB51_CLIP = DATA / "clips" / "hmdb51" / "6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi"


@pytest.fixture(scope="session")
def ucf_frames() -> np.ndarray:
  """uint8 [164, 240, 320, 3]: every frame of the UCF101 clip."""
  return read_frames(UCF101_CLIP)


@pytest.fixture(scope="session")
def small_clips(ucf_frames) -> tuple[np.ndarray, np.ndarray]:
  """Two real clips of different lengths at a quarter of their resolution, uint8 [T, 60, 80, 3]."""
  hmdb = read_frames(HMDB51_CLIP)
  return ucf_frames[:, ::4, ::4], hmdb[:, :240:4, :320:4]
