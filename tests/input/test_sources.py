"""Prepared datasets read from their folders: the newest complete version, and one-line errors."""

import pickle
import re
import shutil

import pytest

from arp_jax import input as ip
from data_prep.synthetic import SyntheticMotion
from pipeline_helpers import NAME


def test_the_newest_complete_version_is_read(data_dir, tmp_path):
  folder = ip.dataset_folder(NAME, data_dir)
  assert folder == data_dir / NAME / str(SyntheticMotion.VERSION)
  # A newer version, an unfinished build (no dataset_info.json yet) and a folder that is not a version.
  root = tmp_path / NAME
  shutil.copytree(folder, root / "1.2.0")
  shutil.copytree(folder, root / "1.10.0")
  (root / "2.0.0").mkdir()
  (root / "3.0.0.incomplete1234").mkdir()
  (root / "notes").mkdir()
  assert ip.dataset_folder(NAME, tmp_path) == root / "1.10.0"  # 1.10 is newer than 1.2
  assert ip.dataset_folder(f"{NAME}:1.2.0", tmp_path) == root / "1.2.0"
  builder = ip.prepared_builder(NAME, tmp_path)
  assert builder.info.features["label"].num_classes == 12 and set(builder.info.splits) == {"train", "test"}


def test_the_source_pickles_for_worker_processes(train_source):
  copy = pickle.loads(pickle.dumps(train_source))
  assert len(copy) == len(train_source) == 12
  assert list(copy[3]["frames"]) == list(train_source[3]["frames"])  # JPEG bytes, from the same files


def test_a_missing_dataset_names_its_folder_and_the_command_that_prepares_it(data_dir, tmp_path):
  with pytest.raises(FileNotFoundError, match=re.escape(f"is not prepared under {tmp_path / NAME} (no version "
                                                          "folder with a dataset_info.json); prepare it with "
                                                          "`arp-jax build`")):
    ip.data_source(NAME, "train", tmp_path)
  with pytest.raises(FileNotFoundError, match="no version 9.9.9 folder"):
    ip.data_source(f"{NAME}:9.9.9", "train", data_dir)
  with pytest.raises(ValueError, match="split is 'validation'; expected one of \\['test', 'train'\\]"):
    ip.data_source(NAME, "validation", data_dir)
  with pytest.raises(ValueError, match="name is ''"):
    ip.data_source("", "train")
