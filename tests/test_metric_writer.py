"""`arp_jax.metric_writer`: JSON lines and TensorBoard events, without importing PyTorch."""

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
{before}
from arp_jax.metric_writer import MetricWriter, read_metrics
writer = MetricWriter(sys.argv[1])
writer.write(3, {{"loss": 1.5, "accuracy": float("nan")}})
writer.close()
print(read_metrics(sys.argv[1]), "torch" in sys.modules)
"""


@pytest.mark.parametrize("before, torch_after", [("", False), ("import torch", True)])
def test_scalars_are_written_and_torch_is_not_imported_for_them(tmp_path, before, torch_after):
  # tensorboardX imports torch when it is installed (6-12 s of every run's start); the writer keeps it
  # out, and works beside a torch the user imported.
  pytest.importorskip("torch")  # without torch the question does not arise
  out = subprocess.run([sys.executable, "-c", _SCRIPT.format(before=before), str(tmp_path)],
                       capture_output=True, text=True, check=True).stdout
  assert out.strip() == f"[{{'step': 3, 'loss': 1.5, 'accuracy': 'nan'}}] {torch_after}"
  [events] = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
  data = events.read_bytes()
  assert b"loss" in data and b"accuracy" in data
