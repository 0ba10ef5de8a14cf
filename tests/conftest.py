"""Shared fixtures (real clips from tests/data, see tests/data/SOURCES.md) and the `integration` marker.

Layout: tests/<package path>/test_<module>.py mirrors the library (tests/pooling/test_rank_pooling.py tests
arp_jax/pooling/rank_pooling.py); tests/integration/ holds the end-to-end and subprocess tests (training
runs, the command line, dataset builds, several processes), every one marked `integration`
(`pytest -m "not integration"` runs the rest); tests/support/ holds the
helpers tests share (on the path: `from paths import DATA`).
"""

import os
from pathlib import Path
import tempfile

# One XLA compilation cache for the whole run, set before JAX is imported, and inherited by pytest-xdist's
# workers and the subprocesses that tests start: those compile the same programs again (the TV-L1 pyramid
# of a build, a tiny model's train step), each several seconds. Entries are keyed by the program, the JAX
# version and the flags, so a cache left by an earlier run is either right or unused.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "arp_jax_tests_xla_cache"))

import numpy as np  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position

from arp_jax.video import read_frames  # pylint: disable=wrong-import-position
from paths import HMDB_CLIP as HMDB51_CLIP, UCF_CLIP as UCF101_CLIP

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items):
  for item in items:
    if INTEGRATION in Path(item.path).parents:
      item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ucf_frames() -> np.ndarray:
  """uint8 [164, 240, 320, 3]: every frame of the UCF101 clip."""
  return read_frames(UCF101_CLIP)


@pytest.fixture(scope="session")
def small_clips(ucf_frames) -> tuple[np.ndarray, np.ndarray]:
  """Two real clips of different lengths at a quarter of their resolution, uint8 [T, 60, 80, 3]."""
  hmdb = read_frames(HMDB51_CLIP)
  return ucf_frames[:, ::4, ::4], hmdb[:, :240:4, :320:4]
