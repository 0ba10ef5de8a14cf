"""`benchmarks/device_check.py --quick`: the check a session lent an accelerator runs once, kept from rotting
on the CPU. It runs as it would there: from the repository, with the packages that machine lacks
unimportable in every process it starts."""

import json
import math
import os
import subprocess
import sys

import pytest

from paths import REPO

SECTIONS = ("arp", "rp", "tvl1", "train", "torch")
# Absent from the lent GPU machine (issue 18); torchvision is there, but not importable beside this
# machine's torch, so blocking it runs the fallback the CPU run takes anyway.
ABSENT = ("tensorflow_datasets", "tensorflow", "grain", "ml_collections", "av", "cv2", "sklearn", "matplotlib",
          "torchvision")
# Imported by every Python process started with this on its PYTHONPATH: the script's sections included.
BLOCKER = "import sys\nfor name in {absent!r}:\n  sys.modules[name] = None  # `import name` raises ImportError\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
  """(the JSON, stdout) of one `--quick` run on the CPU, ABSENT blocked."""
  tmp = tmp_path_factory.mktemp("device_check")
  (tmp / "sitecustomize.py").write_text(BLOCKER.format(absent=ABSENT))
  path = os.pathsep.join(p for p in (str(tmp), os.environ.get("PYTHONPATH")) if p)
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path)
  out = tmp / "device_check.json"
  result = subprocess.run([sys.executable, "benchmarks/device_check.py", "--quick", "--out", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stdout + result.stderr[-4000:]
  return json.loads(out.read_text()), result.stdout


def _positive(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_section_measures_positive_finite_throughputs_and_memory(quick_run):
  report, _ = quick_run
  assert list(report["sections"]) == list(SECTIONS)
  for name, section in report["sections"].items():
    assert section["status"] == "ok" and section["rows"], (name, section)
    for row in section["rows"]:
      assert _positive(row.get("seconds")), (name, row)
      assert row["rates"] and all(_positive(v) for v in row["rates"].values()), (name, row)
      assert any(_positive(v) for v in row["memory"].values()), (name, row)
  train = report["sections"]["train"]["rows"]
  assert {(r["pool_at"], r["dtype"]) for r in train} == {(d, t) for d in ("stem", "res3")
                                                          for t in ("float32", "bfloat16")}
  assert all(_positive(r["ratios"]["ours_over_pytorch"]) for r in train)
  assert report["sections"]["torch"]["info"]["torch_model"].startswith("tests/support/torch_resnext.py")
  for key in ("date_utc", "versions", "shapes", "total_seconds"):
    assert report[key], key


def test_the_table_has_a_row_per_measurement_of_each_section(quick_run):
  report, stdout = quick_run
  for name, section in report["sections"].items():
    rows = [line for line in stdout.splitlines() if line.startswith(f"{name} ")]
    assert len(rows) == len(section["rows"]) > 0, (name, stdout)


def test_it_imports_nothing_the_device_lacks(quick_run):
  report, _ = quick_run
  for name, section in report["sections"].items():
    modules = set(section["info"]["modules"])
    assert "sitecustomize" in modules, name  # the blocker was active in that section's process
    assert not modules & set(ABSENT), (name, modules & set(ABSENT))
