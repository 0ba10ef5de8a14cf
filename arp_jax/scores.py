"""Per-video class scores of one network on one test set: the output of evaluation, the input of fusion.

A `Scores` holds, for each test video, its name, its true label and its class scores (logits, already
aggregated over the video's windows or frames). Keeping the names lets `arp_jax.fuse` align the streams
(RGB frames, dynamic images, optical flow, dynamic optical flow) video by video, whatever order each
evaluation wrote them in.

On disk it is an `.npz` archive without pickled objects, readable with `np.load(path, allow_pickle=False)`:
  names    unicode [N]       video names, e.g. "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
  labels   int64 [N]         true classes in 0..K-1
  scores   float32 [N, K]    logits
  classes  unicode [K]       class names (optional: absent when unknown)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

# Keys of the .npz archive; `classes` is optional.
REQUIRED_KEYS = ("names", "labels", "scores")
OPTIONAL_KEYS = ("classes",)

# Every non-empty .npz (a zip archive) starts with a local file header.
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def _names_tuple(values, what: str) -> tuple[str, ...]:
  """`values` (a sequence or 1-D array of strings) as a tuple of str, or ValueError."""
  if isinstance(values, (str, bytes)):
    raise ValueError(f"{what} is a single string {values!r}; expected a sequence of strings")
  if isinstance(values, np.ndarray):
    if values.ndim != 1:
      raise ValueError(f"{what} has shape {values.shape}; expected a 1-D sequence of strings")
    values = values.tolist()
  try:
    # Items are checked one by one, not through np.asarray, which would quietly turn 3 into "3".
    items = tuple(values)
  except TypeError:
    raise ValueError(f"{what} is a {type(values).__name__}; expected a sequence of strings") from None
  bad = [i for i, item in enumerate(items) if not isinstance(item, str) or not item]
  if bad:
    raise ValueError(f"{what}[{bad[0]}] is {items[bad[0]]!r}; expected a non-empty string")
  return items


def _first_duplicate(items: tuple[str, ...]) -> str | None:
  seen = set()
  for item in items:
    if item in seen:
      return item
    seen.add(item)
  return None


def _read_only(array: np.ndarray) -> np.ndarray:
  # A frozen dataclass whose arrays could be written in place would not be frozen at all.
  array.flags.writeable = False
  return array


@dataclasses.dataclass(frozen=True, eq=False)
class Scores:
  """Class scores of `N` videos over `K` classes.

  The fields are normalised and checked on construction: `names` and `classes` become tuples of str,
  `labels` a read-only `int64 [N]` array and `scores` a read-only `float32 [N, K]` array (copies, so the
  caller's arrays are untouched). Equality is identity (`eq=False`): comparing arrays with `==` has no single
  truth value.

  Attributes:
    names: `N` distinct video names, e.g. "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"; fusion aligns
      streams by them, so a name may not repeat.
    labels: `int64 [N]`, the true class of each video, in `0..K-1`.
    scores: `float32 [N, K]`, the logits of each video aggregated over its windows; finite.
    classes: `K` distinct class names (index = label), or None when unknown.

  Raises:
    ValueError: on construction, when a field has the wrong type, shape or length, a name or class repeats,
      a label is outside `0..K-1`, or a score is NaN or infinite (the message names the video).
  """
  names: tuple[str, ...]
  labels: np.ndarray
  scores: np.ndarray
  classes: tuple[str, ...] | None = None

  def __post_init__(self):
    names = _names_tuple(self.names, "names")
    if not names:
      raise ValueError("names is empty; expected at least one video")
    duplicate = _first_duplicate(names)
    if duplicate is not None:
      raise ValueError(f"video {duplicate!r} appears more than once in names; expected distinct videos")

    scores = np.asarray(self.scores)
    if scores.dtype.kind not in "fiu":
      raise ValueError(f"scores has dtype {scores.dtype}; expected real numbers (float32 [N, K] logits)")
    if scores.ndim != 2 or scores.shape[0] != len(names) or scores.shape[1] == 0:
      raise ValueError(f"scores has shape {scores.shape}; expected [N, K] = [{len(names)}, K] with K >= 1, "
                       "one row per video in names")
    with np.errstate(over="ignore"):  # reported just below, with the video's name
      scores = np.array(scores, dtype=np.float32)  # a copy, also when already float32
    finite = np.isfinite(scores).all(axis=1)
    if not finite.all():
      # Checked after the cast: float64 logits beyond the float32 range become infinite.
      row = int(np.flatnonzero(~finite)[0])
      raise ValueError(f"scores of video {names[row]!r} (row {row}) hold NaN or infinity; expected finite "
                       f"logits ({int((~finite).sum())} video(s) affected)")
    num_classes = scores.shape[1]

    labels = np.asarray(self.labels)
    if labels.ndim != 1 or labels.shape[0] != len(names):
      raise ValueError(f"labels has shape {labels.shape}; expected [{len(names)}], one per video in names")
    if labels.dtype.kind not in "iu":
      raise ValueError(f"labels has dtype {labels.dtype}; expected integer class indices")
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(outside):
      row = int(outside[0])
      raise ValueError(f"label {labels[row]} of video {names[row]!r} is outside 0..{num_classes - 1} "
                       f"(scores have K = {num_classes} classes)")
    labels = np.array(labels, dtype=np.int64)

    classes = self.classes
    if classes is not None:
      classes = _names_tuple(classes, "classes")
      if len(classes) != num_classes:
        raise ValueError(f"classes has {len(classes)} names but scores have K = {num_classes} columns; "
                         "expected one name per class")
      duplicate = _first_duplicate(classes)
      if duplicate is not None:
        raise ValueError(f"class {duplicate!r} appears more than once in classes; expected distinct names")

    object.__setattr__(self, "names", names)
    object.__setattr__(self, "labels", _read_only(labels))
    object.__setattr__(self, "scores", _read_only(scores))
    object.__setattr__(self, "classes", classes)

  @property
  def num_videos(self) -> int:
    """`N`."""
    return len(self.names)

  @property
  def num_classes(self) -> int:
    """`K`."""
    return self.scores.shape[1]

  def __len__(self) -> int:
    return len(self.names)

  def __repr__(self) -> str:
    # The default repr would print every name and score.
    return (f"Scores({self.num_videos} videos, {self.num_classes} classes, "
            f"classes {'named' if self.classes is not None else 'unnamed'})")


def save_scores(path, scores: Scores) -> Path:
  """Writes `scores` to `path` as an `.npz` archive (keys in the module docstring), atomically.

  The archive is written to a temporary file in the same folder and then renamed over `path` with
  `os.replace`, so an interrupted evaluation leaves either the previous file or the complete new one,
  never half a file that fusion would later choke on. The name is used as given (no `.npz` is appended).

  Args:
    path: file to write (str or PathLike); an existing file is replaced.
    scores: the `Scores` to save.

  Returns:
    `path` as a Path.

  Raises:
    TypeError: `scores` is not a `Scores`.
    FileNotFoundError: the folder of `path` does not exist.
    ValueError: `path` is an existing folder.
  """
  if not isinstance(scores, Scores):
    raise TypeError(f"scores is a {type(scores).__name__}; expected an arp_jax.scores.Scores")
  path = Path(os.fspath(path))
  folder = path.parent
  if not folder.is_dir():
    raise FileNotFoundError(f"folder {str(folder)!r} of the scores file {str(path)!r} does not exist; "
                            "expected an existing folder")
  if path.is_dir():
    raise ValueError(f"{str(path)!r} is a folder; expected the path of a scores file (e.g. scores.npz)")
  arrays = {"names": np.array(scores.names, dtype=np.str_), "labels": scores.labels, "scores": scores.scores}
  if scores.classes is not None:
    arrays["classes"] = np.array(scores.classes, dtype=np.str_)
  # Same folder as the target: os.replace is atomic only within one file system.
  handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
  try:
    # mkstemp creates the file readable by its owner only; give it the usual permissions of a new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    with os.fdopen(handle, "wb") as f:
      np.savez(f, **arrays)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    # Also on KeyboardInterrupt: no stray temporary file next to the results.
    Path(temporary).unlink(missing_ok=True)
    raise
  return path


def load_scores(path) -> Scores:
  """Reads a `Scores` written by `save_scores`.

  Args:
    path: the `.npz` file (str or PathLike).

  Returns:
    The `Scores`, checked as on construction.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: `path` is a folder, or the file is not a readable `.npz` archive (damaged, truncated,
      another format), lacks a required key, or holds inconsistent arrays; the message names the file.
  """
  path = Path(os.fspath(path))
  if path.is_dir():
    raise ValueError(f"{str(path)!r} is a folder; expected a scores file (an .npz written by "
                     "arp_jax.scores.save_scores)")
  if not path.is_file():
    raise FileNotFoundError(f"scores file {str(path)!r} does not exist; expected an .npz written by "
                            "arp_jax.scores.save_scores")
  where = f"scores file {str(path)!r}"
  expected = f"expected an .npz archive with the keys {', '.join(REQUIRED_KEYS)} (and optionally classes)"
  with open(path, "rb") as f:
    head = f.read(len(_NPY_MAGIC))
  # Checked before np.load, which takes any unknown bytes for a pickle and would blame pickling.
  if not head.startswith(_ZIP_MAGIC):
    kind = "a single .npy array" if head == _NPY_MAGIC else "not a zip archive"
    raise ValueError(f"{where} is damaged or not an .npz archive ({kind}: it starts with {head!r}); "
                     f"{expected}")
  try:
    archive = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
    raise ValueError(f"{where} is damaged ({error}); {expected}") from error
  with archive:
    missing = [key for key in REQUIRED_KEYS if key not in archive.files]
    if missing:
      raise ValueError(f"{where} lacks the key(s) {', '.join(missing)} (it has "
                       f"{', '.join(archive.files) or 'none'}); {expected}")
    try:
      # Read here: a member damaged after the zip directory only fails when decompressed.
      arrays = {key: archive[key] for key in REQUIRED_KEYS + OPTIONAL_KEYS if key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
      raise ValueError(f"{where} is damaged ({error}); {expected}") from error
  for key in ("names", "classes"):
    if key in arrays and arrays[key].dtype.kind != "U":
      raise ValueError(f"{where}: {key} has dtype {arrays[key].dtype}; expected unicode strings")
  try:
    return Scores(names=arrays["names"], labels=arrays["labels"], scores=arrays["scores"],
                  classes=arrays.get("classes"))
  except ValueError as error:
    raise ValueError(f"{where}: {error}") from error
