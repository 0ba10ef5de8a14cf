"""What a newcomer runs first, as they would see it: the README's main job (its terminal output, through
pipes) and the quickstart notebook (executed, so that it cannot rot)."""

import json
import os
import re
import subprocess
import sys

import nbclient
import nbformat
import pytest

from arp_jax import synthetic_benchmark
from data_prep.synthetic import SyntheticMotion
from paths import REPO

NOTEBOOK = REPO / "examples" / "quickstart.ipynb"

# The only lines `arp-jax four-stream` may print: one per stream as it finishes (stderr), then the table
# the claims and the targets (stdout). Anything else (a library's log or warning, a progress bar, a traceback) is noise.
STREAM_LINE = re.compile(r" *(SI|DI|mean|OF|DOF): mean class accuracy \d+\.\d % "
                         r"\(ceiling (25|50|100) %, \d+ s\)")
HEADER = re.compile(r"streams +mean class acc\. % +top-1 % +ceiling %")
ROW = re.compile(r"(SI|DI|OF|DOF|mean image \(not fused\))( \+ (DI|OF|DOF))*"
                 r" +\d+\.\d\d +\d+\.\d\d +(25|50|100)")
CLAIM = re.compile(r"(holds|FAILS): .+")
TARGETS = re.compile(r"targets: (SI|mean|DI|OF|DOF) >= \d+ % (met|missed)(, (SI|mean|DI|OF|DOF) >= \d+ % (met|missed)){4}")


def _run(*argv):
  """`arp-jax ARGV` in a subprocess whose stdout and stderr are pipes, not a terminal (as in a log file)."""
  return subprocess.run([sys.executable, "-m", "arp_jax.cli", *map(str, argv)], cwd=REPO, capture_output=True,
                        text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_main_job_prints_its_table_and_a_line_per_stream_only(tmp_path):
  data, workdir = tmp_path / "data", tmp_path / "runs"
  prepared = _run("synthetic-data", "--data-dir", data, "--variant", "tiny")
  assert prepared.returncode == 0 and prepared.stderr == "", prepared.stderr
  version = str(SyntheticMotion.VERSION)
  assert prepared.stdout.splitlines() == [
      f"Writing synthetic_motion/tiny/{version} into '{data}'",
      f"synthetic_motion/tiny prepared in {data / 'synthetic_motion' / 'tiny' / version}"]

  result = _run("four-stream", "--workdir", workdir, "--data-dir", data, "--runlocal")
  output = result.stdout + result.stderr
  for noise in ("WARNING", "Warning", "Traceback", "\r", "it/s]"):
    assert noise not in output, output
  assert not re.search(r"^[IWEF]\d{4} ", output, re.MULTILINE), output  # absl's C++ log lines (XLA's)
  assert result.returncode == 0, output
  streams = [STREAM_LINE.fullmatch(line) for line in result.stderr.splitlines()]
  assert all(streams) and [m[1] for m in streams] == ["SI", "DI", "mean", "OF", "DOF"], result.stderr
  header, *lines = result.stdout.splitlines()
  assert HEADER.fullmatch(header), header
  assert [bool(ROW.fullmatch(line)) for line in lines] == [True] * 16 + [False] * 4, result.stdout
  assert all(CLAIM.fullmatch(line) for line in lines[16:19]) and TARGETS.fullmatch(lines[19]), result.stdout

  results = json.loads((workdir / "results.json").read_text())
  names = {stream: name for stream, name in synthetic_benchmark.TABLE_NAMES.items()}
  assert {names[s]: c for s, c in synthetic_benchmark.CEILINGS.items()} == {
      name: stream["ceiling"] for name, stream in results["streams"].items()}
  assert {row["streams"]: row["ceiling"] for row in results["fusion"]}["SI"] == 0.25
  assert all(row["ceiling"] == 1.0 for row in results["fusion"] if row["streams"] != "SI")


@pytest.mark.slow
def test_the_quickstart_notebook_runs_and_draws_its_figure():
  stored = nbformat.read(NOTEBOOK, as_version=4)
  # Stored with its outputs, for GitHub to show, yet small.
  assert os.path.getsize(NOTEBOOK) < 300_000
  assert any(output.get("data", {}).get("image/png") for output in stored.cells[-1].outputs)

  notebook = nbformat.read(NOTEBOOK, as_version=4)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      cell.outputs = []
  # From examples/, as Jupyter starts it (the notebook finds the clip from there or from the root).
  nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": os.fspath(NOTEBOOK.parent)}}).execute()
  outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"], outputs
  assert any(output.get("data", {}).get("image/png") for output in notebook.cells[-1].outputs)
