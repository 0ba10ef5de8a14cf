"""The official train/test splits of UCF101 and HMDB51, read from their split files.

Both datasets come with three splits and the paper reports accuracy averaged over them. The files are read
as published (CRLF line endings, HMDB51's trailing spaces); every line is checked, and a bad one raises a
ValueError naming the file and the line number, because a silently skipped line would shift the class
counts and the reported accuracy without any other sign.

Layouts (the folder names are the ones the datasets ship with, but any folder name works):
  ucfTrainTestlist/                    classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt
  hmdb51_testTrainMulti_7030_splits/   <class>_test_split{1,2,3}.txt for each of the 51 classes

Videos are named by their path relative to the dataset root, `<class>/<file>.avi`, for both datasets (the
layout of the UCF101 archive and of the HMDB51 archive once its per-class RARs are unpacked), so
`missing_videos` and the dataset builders can join them to one root folder.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Iterator

from arp_jax.checks import is_int

SPLITS = (1, 2, 3)
DATASETS = ("ucf101", "hmdb51")

# The 51 HMDB51 classes in Python's sorted order; the label of a class is its index here. Listed rather
# than read from the folder so that a missing split file is reported by name instead of silently dropping a
# class and shifting every label after it. (The unofficial class_list.txt next to the split files uses a
# locale order, with kick_ball before kick; it is not used.)
HMDB51_CLASSES = (
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive", "draw_sword",
    "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf", "handstand", "hit", "hug",
    "jump", "kick", "kick_ball", "kiss", "laugh", "pick", "pour", "pullup", "punch", "push", "pushup",
    "ride_bike", "ride_horse", "run", "shake_hands", "shoot_ball", "shoot_bow", "shoot_gun", "sit", "situp",
    "smile", "smoke", "somersault", "stand", "swing_baseball", "sword", "sword_exercise", "talk", "throw",
    "turn", "walk", "wave",
)

# HMDB51: each class has 70 training and 30 test videos in every split (the "7030" of the folder name).
HMDB51_TRAIN_PER_CLASS = 70
HMDB51_TEST_PER_CLASS = 30

# Number of (train, test) videos per split, from the official files (tests/data/SOURCES.md).
EXPECTED_COUNTS = {
    "ucf101": {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)},
    "hmdb51": {s: (51 * HMDB51_TRAIN_PER_CLASS, 51 * HMDB51_TEST_PER_CLASS) for s in SPLITS},
}

# HMDB51 split-file codes: 0 = not used in this split, 1 = training, 2 = test.
_HMDB51_UNUSED, _HMDB51_TRAIN, _HMDB51_TEST = "0", "1", "2"


@dataclasses.dataclass(frozen=True)
class SplitEntry:
  """One video of a split.

  Attributes:
    video: path relative to the dataset root, `<class>/<file>.avi`, with forward slashes.
    label: 0-based class index into `Split.classes`.
    class_name: the class, `Split.classes[label]`.
  """
  video: str
  label: int
  class_name: str


@dataclasses.dataclass(frozen=True)
class Split:
  """One official split: the class names (index = label) and its training and test videos in file order."""
  classes: tuple[str, ...]
  train: tuple[SplitEntry, ...]
  test: tuple[SplitEntry, ...]


def _check_split_number(split) -> int:
  if not is_int(split) or split not in SPLITS:
    raise ValueError(f"split is {split!r}; expected 1, 2 or 3 (the three official splits)")
  return split


def _split_folder(split_dir, expected: str) -> Path:
  """`split_dir` as a Path, or FileNotFoundError saying what the folder should hold."""
  path = Path(os.fspath(split_dir))
  if not path.is_dir():
    raise FileNotFoundError(
        f"split folder {str(path)!r} does not exist or is not a folder; expected {expected}")
  return path


def _lines(path: Path, expected: str) -> Iterator[tuple[int, list[str]]]:
  """(1-based line number, whitespace-separated fields) of each non-blank line of `path`.

  Splitting on any whitespace absorbs the CRLF endings and trailing spaces of the official files.
  """
  if not path.is_file():
    raise FileNotFoundError(f"split file {str(path)!r} does not exist; expected {expected}")
  with open(path, encoding="utf-8") as f:
    number = 0
    try:
      for number, line in enumerate(f, start=1):
        fields = line.split()
        if fields:
          yield number, fields
    except UnicodeDecodeError as error:
      raise ValueError(f"split file {str(path)!r} is not a UTF-8 text file (after line {number}: "
                       f"{error.reason}); expected {expected}") from None


def _check_disjoint(train: Iterable[SplitEntry], test: Iterable[SplitEntry], where: str) -> None:
  """ValueError if a video is both a training and a test video: evaluation would be on seen data."""
  both = sorted({e.video for e in train} & {e.video for e in test})
  if both:
    raise ValueError(f"{where}: {len(both)} videos are in both train and test, e.g. {both[0]!r}")


# UCF101 -------------------------------------------------------------------------------------------------


def _ucf101_classes(path: Path) -> tuple[str, ...]:
  """Class names from classInd.txt (`<index> <name>`, indices 1, 2, ... in order)."""
  classes = []
  for number, fields in _lines(path, "ucfTrainTestlist/classInd.txt with lines '<index> <class>'"):
    if len(fields) != 2 or not fields[0].isdigit():
      raise ValueError(f"{str(path)!r} line {number}: {' '.join(fields)!r}; expected '<index> <class>'")
    if int(fields[0]) != len(classes) + 1:
      raise ValueError(
          f"{str(path)!r} line {number}: class index {fields[0]}; expected {len(classes) + 1} "
          "(indices must run 1, 2, 3, ... in order)")
    classes.append(fields[1])
  if not classes:
    raise ValueError(f"{str(path)!r} lists no classes; expected 101 lines '<index> <class>'")
  return tuple(classes)


def _ucf101_entries(path: Path, classes: tuple[str, ...], labelled: bool) -> tuple[SplitEntry, ...]:
  """Entries of a trainlist (`<class>/<video> <label>`, label 1-based) or testlist (`<class>/<video>`).

  The label is taken from the class folder; a trainlist label must agree with it.
  """
  index = {name: i for i, name in enumerate(classes)}
  form = "'<class>/<video>.avi <label>'" if labelled else "'<class>/<video>.avi'"
  entries = []
  for number, fields in _lines(path, f"ucfTrainTestlist/{path.name} with lines {form}"):
    where = f"{str(path)!r} line {number}"
    if len(fields) != (2 if labelled else 1) or fields[0].count("/") != 1:
      raise ValueError(f"{where}: {' '.join(fields)!r}; expected {form}")
    video = fields[0]
    class_name = video.split("/")[0]
    if class_name not in index:
      raise ValueError(f"{where}: class folder {class_name!r} of {video!r} is not in classInd.txt")
    label = index[class_name]
    if labelled and fields[1] != str(label + 1):
      raise ValueError(
          f"{where}: label {fields[1]} for {video!r}, but classInd.txt gives class {class_name!r} the "
          f"index {label + 1}")
    entries.append(SplitEntry(video=video, label=label, class_name=class_name))
  return tuple(entries)


def ucf101_split(split_dir, split: int) -> Split:
  """Reads one official UCF101 split.

  Args:
    split_dir: the `ucfTrainTestlist` folder, holding classInd.txt, trainlist0{1,2,3}.txt and
      testlist0{1,2,3}.txt.
    split: 1, 2 or 3.

  Returns:
    Split with the 101 classes in classInd.txt order (label = index in classInd.txt - 1) and the train and
    test entries in file order; videos are `<class>/v_<class>_gNN_cNN.avi`.

  Raises:
    ValueError: `split` is not 1..3; a line is malformed; a class folder is not in classInd.txt; a trainlist
      label disagrees with classInd.txt; a video is in both train and test (messages name file and line).
    FileNotFoundError: the folder or one of its three files is missing (the message names the file).
  """
  split = _check_split_number(split)
  folder = _split_folder(split_dir, "the UCF101 'ucfTrainTestlist' folder (classInd.txt, trainlist0N.txt, "
                         "testlist0N.txt)")
  classes = _ucf101_classes(folder / "classInd.txt")
  train = _ucf101_entries(folder / f"trainlist0{split}.txt", classes, labelled=True)
  test = _ucf101_entries(folder / f"testlist0{split}.txt", classes, labelled=False)
  _check_disjoint(train, test, f"UCF101 split {split} in {str(folder)!r}")
  return Split(classes=classes, train=train, test=test)


# HMDB51 -------------------------------------------------------------------------------------------------


def hmdb51_split(split_dir, split: int, strict: bool = True) -> Split:
  """Reads one official HMDB51 split.

  Args:
    split_dir: the `hmdb51_testTrainMulti_7030_splits` folder, holding `<class>_test_split{1,2,3}.txt` for
      each of the 51 classes, lines `<video>.avi <code>` with code 0 (unused), 1 (train) or 2 (test).
    split: 1, 2 or 3.
    strict: check that every class has exactly 70 training and 30 test videos, as in the official files.

  Returns:
    Split with `HMDB51_CLASSES` (sorted; label = index) and the train and test entries, class by class in
    file order; videos are `<class>/<video>.avi`. Code-0 videos are in neither.

  Raises:
    ValueError: `split` is not 1..3; a line is malformed or has a code other than 0/1/2 (the message names
      file and line); with `strict`, a class file has other than 70/30 train/test videos; a video is in both.
    FileNotFoundError: the folder, or one of the 51 files of this split, is missing (the first one is named).
  """
  split = _check_split_number(split)
  folder = _split_folder(
      split_dir, f"the HMDB51 'hmdb51_testTrainMulti_7030_splits' folder ({len(HMDB51_CLASSES)} files "
      "<class>_test_split<N>.txt per split)")
  paths = [folder / f"{name}_test_split{split}.txt" for name in HMDB51_CLASSES]
  # Name the first missing file up front rather than after reading the ones before it.
  missing = [p for p in paths if not p.is_file()]
  if missing:
    raise FileNotFoundError(
        f"HMDB51 split file {str(missing[0])!r} does not exist ({len(missing)} of the "
        f"{len(HMDB51_CLASSES)} files for split {split} are missing); expected "
        f"{len(HMDB51_CLASSES)} files <class>_test_split{split}.txt, one per class")

  train, test = [], []
  for label, (name, path) in enumerate(zip(HMDB51_CLASSES, paths)):
    counts = {_HMDB51_TRAIN: 0, _HMDB51_TEST: 0}
    for number, fields in _lines(path, "an HMDB51 split file"):
      where = f"{str(path)!r} line {number}"
      if len(fields) != 2 or "/" in fields[0]:
        raise ValueError(f"{where}: {' '.join(fields)!r}; expected '<video>.avi <0|1|2>'")
      video, code = fields
      if code not in (_HMDB51_UNUSED, _HMDB51_TRAIN, _HMDB51_TEST):
        raise ValueError(f"{where}: code {code!r} for {video!r}; expected 0 (unused), 1 (train) or 2 (test)")
      if code == _HMDB51_UNUSED:
        continue
      counts[code] += 1
      entry = SplitEntry(video=f"{name}/{video}", label=label, class_name=name)
      (train if code == _HMDB51_TRAIN else test).append(entry)
    if strict and (counts[_HMDB51_TRAIN], counts[_HMDB51_TEST]) != (HMDB51_TRAIN_PER_CLASS,
                                                                    HMDB51_TEST_PER_CLASS):
      raise ValueError(
          f"{str(path)!r} has {counts[_HMDB51_TRAIN]} train and {counts[_HMDB51_TEST]} test videos; expected "
          f"{HMDB51_TRAIN_PER_CLASS} and {HMDB51_TEST_PER_CLASS} (pass strict=False to accept other counts)")
  _check_disjoint(train, test, f"HMDB51 split {split} in {str(folder)!r}")
  return Split(classes=HMDB51_CLASSES, train=tuple(train), test=tuple(test))


# Both datasets ------------------------------------------------------------------------------------------


def _check_dataset(dataset) -> str:
  if dataset not in DATASETS:
    raise ValueError(f"dataset is {dataset!r}; expected one of {', '.join(map(repr, DATASETS))}")
  return dataset


def load_split(dataset: str, split_dir, split: int) -> Split:
  """`ucf101_split` or `hmdb51_split` (strict) by name: `dataset` is 'ucf101' or 'hmdb51'."""
  dataset = _check_dataset(dataset)
  if dataset == "ucf101":
    return ucf101_split(split_dir, split)
  return hmdb51_split(split_dir, split)


def check_counts(split_obj: Split, dataset: str, split: int) -> None:
  """ValueError unless `split_obj` has the official numbers of train and test videos (`EXPECTED_COUNTS`)."""
  dataset = _check_dataset(dataset)
  split = _check_split_number(split)
  expected = EXPECTED_COUNTS[dataset][split]
  actual = (len(split_obj.train), len(split_obj.test))
  if actual != expected:
    raise ValueError(
        f"{dataset} split {split} has {actual[0]} train and {actual[1]} test videos; expected "
        f"{expected[0]} and {expected[1]} (the official split files)")


def missing_videos(entries: Iterable[SplitEntry], root) -> list[str]:
  """The `video` paths of `entries` (in order) that are not files under the dataset folder `root`."""
  root = Path(os.fspath(root))
  if not root.is_dir():
    raise FileNotFoundError(f"video folder {str(root)!r} does not exist; expected the dataset root holding "
                            "<class>/<video>.avi")
  return [e.video for e in entries if not (root / e.video).is_file()]


def require_videos(entries: Iterable[SplitEntry], root, fatal: bool) -> list[str]:
  """`missing_videos(entries, root)`; with `fatal`, FileNotFoundError if any is missing.

  Non-fatal use suits a partly downloaded dataset: the caller gets the list to report or skip.
  """
  root = Path(os.fspath(root))
  missing = missing_videos(entries, root)
  if fatal and missing:
    shown = ", ".join(repr(v) for v in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    raise FileNotFoundError(
        f"{len(missing)} videos of the split are missing under {str(root)!r}: {shown}{more}; "
        "expected each at <root>/<class>/<video>.avi")
  return missing
