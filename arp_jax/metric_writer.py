"""Training metrics as JSON lines and TensorBoard event files, written by one host.

    writer = MetricWriter(workdir, resume_step=step)  # drops lines past the checkpoint a run resumes from
    writer.write(step, {"loss": 1.2, "accuracy": 0.4, "learning_rate": 0.01, "steps_per_sec": 3.1})
    writer.close()

`<workdir>/metrics.jsonl` holds one JSON object per line, `{"step": ..., <name>: <value>, ...}`, easy to
read back with `read_metrics`; `<workdir>/tensorboard/` holds the event files (tensorboardX). A run
resumed from step k first removes the lines written after step k by the run that was interrupted, so that
the file has each step once, as an uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import sys

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir) -> list[dict]:
  """The records of `<workdir>/metrics.jsonl`, in order ([] when there is none). A torn last line (a run
  killed while writing) is skipped."""
  path = Path(os.fspath(workdir)) / METRICS_FILE
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records


def _json_value(value):
  value = float(value)
  return value if math.isfinite(value) else str(value)


def _summary_writer_class():
  """tensorboardX's `SummaryWriter`, imported without importing PyTorch.

  tensorboardX imports torch whenever it is installed (only to accept torch tensors as values), which
  costs 6-12 s of a training run's start on a CPU machine; the values written here are floats. A torch
  already imported is used as it is.
  """
  if "torch" in sys.modules:
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    return SummaryWriter
  sys.modules["torch"] = None  # `import torch` raises ImportError, which tensorboardX expects
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
  finally:
    del sys.modules["torch"]
  return SummaryWriter


class MetricWriter:
  """Appends scalars to `<workdir>/metrics.jsonl` and to TensorBoard; a no-op when not `enabled` (the
  hosts other than process 0)."""

  def __init__(self, workdir, resume_step: int = 0, enabled: bool = True):
    self.enabled = enabled
    self._tensorboard = None
    if not enabled:
      return
    workdir = Path(os.fspath(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    self.path = workdir / METRICS_FILE
    kept = [record for record in read_metrics(workdir) if record.get("step", 0) <= resume_step]
    tmp = self.path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(record) + "\n" for record in kept))
    os.replace(tmp, self.path)
    self._tensorboard = _summary_writer_class()(os.fspath(workdir / "tensorboard"))

  def write(self, step: int, scalars: dict) -> None:
    """Records `scalars` (name -> number) at `step`."""
    if not self.enabled:
      return
    record = {"step": int(step), **{name: _json_value(value) for name, value in scalars.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in scalars.items():
      self._tensorboard.add_scalar(name, float(value), int(step))
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()
      self._tensorboard = None
