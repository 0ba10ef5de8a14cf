"""A folder of prepared videos that makes every build resumable.

One file per video, `<root>/<class>/<video>.avi.npz` (the `VideoRecord`), or `<video>.avi.failed.txt`
holding the reason it could not be prepared. Both are written to a temporary name in the same folder and
renamed into place (`os.replace` is atomic), so an interrupted build leaves either a whole entry or none,
never a partial one; leftover temporary files are removed by `remove_partial`. The npz holds plain arrays
(the JPEG images concatenated, with offsets) and is read with `allow_pickle=False`.
"""

from __future__ import annotations

import os
from pathlib import Path
import zipfile

import numpy as np

from data_prep.process import VideoRecord

_TMP_MARK = ".tmp-"
_IMAGE_FIELDS = ("frames", "flow_x", "flow_y")


def _pack(images: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray]:
  """JPEG images -> (uint8 concatenation, int64 offsets [n + 1])."""
  offsets = np.zeros(len(images) + 1, np.int64)
  offsets[1:] = np.cumsum([len(image) for image in images])
  return np.frombuffer(b"".join(images), np.uint8), offsets


def _unpack(data: np.ndarray, offsets: np.ndarray) -> tuple[bytes, ...]:
  raw = data.tobytes()
  return tuple(raw[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1))


def _write_atomically(path: Path, write) -> None:
  """Calls `write(file)` on a temporary file next to `path`, then renames it to `path`."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
  try:
    with open(tmp, "wb") as file:
      write(file)
      file.flush()
      os.fsync(file.fileno())
    os.replace(tmp, path)
  finally:
    if tmp.exists():
      tmp.unlink()


class VideoCache:
  """Prepared videos under `root`, keyed by their path relative to the dataset root (`Class/v_x.avi`)."""

  def __init__(self, root):
    self.root = Path(os.fspath(root))

  def path(self, video: str) -> Path:
    return self.root / f"{video}.npz"

  def failure_path(self, video: str) -> Path:
    return self.root / f"{video}.failed.txt"

  def status(self, video: str) -> str | None:
    """"done", "failed" or None (not prepared yet)."""
    if self.path(video).is_file():
      return "done"
    if self.failure_path(video).is_file():
      return "failed"
    return None

  def failure(self, video: str) -> str | None:
    """The recorded reason `video` failed, or None."""
    path = self.failure_path(video)
    return path.read_text() if path.is_file() else None

  def store(self, video: str, record: VideoRecord) -> None:
    arrays = dict(fps=np.float64(record.fps), num_frames=np.int64(record.num_frames),
                  height=np.int64(record.height), width=np.int64(record.width))
    for field in _IMAGE_FIELDS:
      arrays[f"{field}_data"], arrays[f"{field}_offsets"] = _pack(getattr(record, field))
    _write_atomically(self.path(video), lambda file: np.savez(file, **arrays))
    self.failure_path(video).unlink(missing_ok=True)

  def store_failure(self, video: str, reason: str) -> None:
    _write_atomically(self.failure_path(video), lambda file: file.write(reason.encode()))

  def load(self, video: str) -> VideoRecord:
    """The record of `video`. FileNotFoundError if it was not prepared; ValueError for a damaged entry."""
    path = self.path(video)
    if not path.is_file():
      raise FileNotFoundError(f"{video!r} has no prepared entry {str(path)!r}; run data_prep.build first")
    try:
      with np.load(path, allow_pickle=False) as entry:
        images = {field: _unpack(entry[f"{field}_data"], entry[f"{field}_offsets"]) for field in _IMAGE_FIELDS}
        return VideoRecord(fps=float(entry["fps"]), num_frames=int(entry["num_frames"]),
                           height=int(entry["height"]), width=int(entry["width"]), **images)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
      raise ValueError(f"prepared entry {str(path)!r} is damaged ({error}); delete it to prepare "
                       f"{video!r} again") from error

  def failure_is_older(self, video: str, source) -> bool:
    """Whether `video` is recorded as failed before its file `source` last changed (replaced or modified:
    the ctime covers a copy that keeps the old mtime), so that the failure may no longer hold."""
    try:
      record, changed = self.failure_path(video).stat(), os.stat(source)
    except FileNotFoundError:
      return False
    return max(changed.st_mtime_ns, changed.st_ctime_ns) > record.st_mtime_ns

  def forget(self, video: str) -> None:
    """Removes `video`'s entry or failure record (to prepare it again)."""
    self.path(video).unlink(missing_ok=True)
    self.failure_path(video).unlink(missing_ok=True)

  def remove_partial(self) -> list[Path]:
    """Deletes temporary files left by an interrupted build; returns their paths."""
    if not self.root.is_dir():
      return []
    leftovers = [p for p in self.root.rglob(f"*{_TMP_MARK}*") if p.is_file()]
    for path in leftovers:
      path.unlink()
    return leftovers
