"""Tests for data_prep.splits on the official split files in tests/data/splits (see tests/data/SOURCES.md)."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from data_prep import splits

from paths import DATA

SPLITS_DIR = DATA / "splits"
UCF_DIR = SPLITS_DIR / "ucfTrainTestlist"
HMDB_DIR = SPLITS_DIR / "hmdb51_testTrainMulti_7030_splits"


def _copy(folder: Path, tmp_path: Path) -> Path:
  """A writable copy of a split folder, to break."""
  copy = tmp_path / folder.name
  shutil.copytree(folder, copy)
  for path in copy.iterdir():
    path.chmod(0o644)
  return copy


@pytest.mark.parametrize("split", splits.SPLITS)
def test_ucf101_official_splits(split):
  s = splits.ucf101_split(UCF_DIR, split)
  splits.check_counts(s, "ucf101", split)
  assert (len(s.train), len(s.test)) == splits.EXPECTED_COUNTS["ucf101"][split]
  assert len(s.classes) == 101
  assert s.classes[:3] == ("ApplyEyeMakeup", "ApplyLipstick", "Archery")
  assert s.classes[-1] == "YoYo"
  assert {e.video for e in s.train}.isdisjoint(e.video for e in s.test)
  for e in s.train + s.test:
    assert s.classes[e.label] == e.class_name == e.video.split("/")[0]
    assert e.video.endswith(".avi") and "\r" not in e.video
  assert {e.label for e in s.train} == set(range(101))


def test_ucf101_first_test_video_of_split1():
  s = splits.ucf101_split(UCF_DIR, 1)
  assert s.test[0] == splits.SplitEntry("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0, "ApplyEyeMakeup")
  assert s.train[0].video == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"


@pytest.mark.parametrize("split", splits.SPLITS)
def test_hmdb51_official_splits(split):
  s = splits.hmdb51_split(HMDB_DIR, split)
  splits.check_counts(s, "hmdb51", split)
  assert (len(s.train), len(s.test)) == (3570, 1530)
  assert s.classes == splits.HMDB51_CLASSES == tuple(sorted(s.classes))
  assert len(s.classes) == 51
  assert Counter(e.class_name for e in s.train) == {c: 70 for c in s.classes}
  assert Counter(e.class_name for e in s.test) == {c: 30 for c in s.classes}
  assert {e.video for e in s.train}.isdisjoint(e.video for e in s.test)
  for e in s.train + s.test:
    assert s.classes[e.label] == e.class_name == e.video.split("/")[0]
    assert e.video.endswith(".avi") and not e.video.endswith(" ")


def test_hmdb51_classes_match_the_files():
  names = {p.name.rsplit("_test_split", 1)[0] for p in HMDB_DIR.glob("*_test_split*.txt")}
  assert sorted(names) == list(splits.HMDB51_CLASSES)


def test_load_split_dispatches():
  assert splits.load_split("ucf101", UCF_DIR, 2) == splits.ucf101_split(UCF_DIR, 2)
  assert splits.load_split("hmdb51", HMDB_DIR, 3) == splits.hmdb51_split(HMDB_DIR, 3)
  with pytest.raises(ValueError, match="'kinetics'.*'ucf101', 'hmdb51'"):
    splits.load_split("kinetics", UCF_DIR, 1)


@pytest.mark.parametrize("split", [0, 4, "1", True])
@pytest.mark.parametrize("reader, folder", [(splits.ucf101_split, UCF_DIR), (splits.hmdb51_split, HMDB_DIR)])
def test_bad_split_number(reader, folder, split):
  with pytest.raises(ValueError, match="expected 1, 2 or 3"):
    reader(folder, split)


def test_check_counts_says_expected_and_actual():
  s = splits.ucf101_split(UCF_DIR, 1)
  with pytest.raises(ValueError, match="9537 train and 3783 test.*expected 9586 and 3734"):
    splits.check_counts(s, "ucf101", 2)


@pytest.mark.parametrize("reader", [splits.ucf101_split, splits.hmdb51_split])
def test_missing_folder(reader, tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    reader(tmp_path / "nowhere", 1)


def test_ucf101_missing_trainlist(tmp_path):
  folder = _copy(UCF_DIR, tmp_path)
  (folder / "trainlist02.txt").unlink()
  assert len(splits.ucf101_split(folder, 1).train) == 9537
  with pytest.raises(FileNotFoundError, match="trainlist02.txt.*expected ucfTrainTestlist/trainlist02.txt"):
    splits.ucf101_split(folder, 2)


def test_ucf101_label_disagrees_with_class(tmp_path):
  folder = _copy(UCF_DIR, tmp_path)
  path = folder / "trainlist01.txt"
  lines = path.read_bytes().split(b"\r\n")
  assert lines[2] == b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03.avi 1"
  lines[2] = b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03.avi 2"
  path.write_bytes(b"\r\n".join(lines))
  with pytest.raises(ValueError, match=r"trainlist01.txt' line 3: label 2 .*index 1"):
    splits.ucf101_split(folder, 1)


def test_ucf101_unknown_class_and_malformed_line(tmp_path):
  folder = _copy(UCF_DIR, tmp_path)
  path = folder / "testlist03.txt"
  original = path.read_bytes()
  path.write_bytes(b"Juggling/v_Juggling_g01_c01.avi\r\n" + original)
  with pytest.raises(ValueError, match="line 1: class folder 'Juggling'"):
    splits.ucf101_split(folder, 3)
  path.write_bytes(original + b"\r\nnot a line\r\n")
  with pytest.raises(ValueError, match=r"line 3698: 'not a line'; expected"):
    splits.ucf101_split(folder, 3)


def test_ucf101_tolerates_lf_blank_lines_and_trailing_space(tmp_path):
  folder = _copy(UCF_DIR, tmp_path)
  path = folder / "testlist01.txt"
  text = path.read_text(encoding="utf-8").replace("\r\n", "  \n\n")
  path.write_text(text, encoding="utf-8")
  assert splits.ucf101_split(folder, 1) == splits.ucf101_split(UCF_DIR, 1)


def test_hmdb51_bad_code(tmp_path):
  folder = _copy(HMDB_DIR, tmp_path)
  path = folder / "cartwheel_test_split2.txt"
  lines = path.read_text(encoding="utf-8").splitlines()
  lines[4] = lines[4].rstrip()[:-1] + "3 "
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"cartwheel_test_split2.txt' line 5: code '3'.*expected 0"):
    splits.hmdb51_split(folder, 2)


def test_hmdb51_69_train_videos(tmp_path):
  folder = _copy(HMDB_DIR, tmp_path)
  path = folder / "wave_test_split1.txt"
  lines = path.read_text(encoding="utf-8").splitlines()
  first_train = next(i for i, line in enumerate(lines) if line.split()[1] == "1")
  lines[first_train] = lines[first_train].split()[0] + " 0 "
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match="wave_test_split1.txt' has 69 train and 30 test.*expected 70 and 30"):
    splits.hmdb51_split(folder, 1)
  s = splits.hmdb51_split(folder, 1, strict=False)
  assert (len(s.train), len(s.test)) == (3569, 1530)
  with pytest.raises(ValueError, match="3569 train and 1530 test"):
    splits.check_counts(s, "hmdb51", 1)
  assert len(splits.hmdb51_split(folder, 2).train) == 3570


def test_hmdb51_missing_file(tmp_path):
  folder = _copy(HMDB_DIR, tmp_path)
  (folder / "kiss_test_split3.txt").unlink()
  (folder / "wave_test_split3.txt").unlink()
  with pytest.raises(FileNotFoundError, match="kiss_test_split3.txt.*2 of the 51 files.*expected 51"):
    splits.hmdb51_split(folder, 3)


def test_missing_and_required_videos(tmp_path):
  s = splits.ucf101_split(UCF_DIR, 1)
  entries = s.test[:8]
  for e in entries[:3]:
    (tmp_path / e.video).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / e.video).touch()
  absent = [e.video for e in entries[3:]]
  assert splits.missing_videos(entries, tmp_path) == absent
  assert splits.missing_videos(entries[:3], tmp_path) == []
  assert splits.require_videos(entries, tmp_path, fatal=False) == absent
  assert splits.require_videos(entries[:3], tmp_path, fatal=True) == []
  with pytest.raises(FileNotFoundError, match=r"5 videos .*missing.*" + absent[0] + ".*expected"):
    splits.require_videos(entries, tmp_path, fatal=True)
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match=r"8 videos .*and 3 more"):
    splits.require_videos(entries, tmp_path / "empty", fatal=True)
  with pytest.raises(FileNotFoundError, match="video folder .*does not exist"):
    splits.missing_videos(entries, tmp_path / "nowhere")
