r"""The README's main job: the paper's four streams on the synthetic motion benchmark, trained and fused.

    arp-jax synthetic-data --data-dir runs/synthetic_four_stream/data
    arp-jax four-stream --workdir runs/synthetic_four_stream

Trains and evaluates every stream of `experiments/synthetic_four_stream.py` (SI, DI, the mean-image
control, OF, DOF) in <workdir>/<stream> (each resumes if interrupted), all reading one prepared dataset
(`--data-dir`, default <workdir>/data), fuses SI, DI, OF and DOF as the paper's Table 8 does and prints
every combination, then checks the paper's claims (DI beats SI and the mean image; the four-stream fusion
beats its best stream). The table and each stream's accuracy go to <workdir>/results.json; a full run
whose claims do not hold exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from arp_jax.config import load_config_file

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "synthetic_four_stream.py"
# The paper's names for the fusion table, and the four streams it fuses (the mean image is a control).
TABLE_NAMES = {"si": "SI", "di": "DI", "mean": "mean", "of": "OF", "dof": "DOF"}
FUSED = ("si", "di", "of", "dof")


def claims(results: dict) -> dict[str, bool]:
  """The paper's claims, as measured by this run (mean class accuracy; the fusion of SI, DI, OF, DOF)."""
  acc = {name: stream["mean_class_accuracy"] for name, stream in results["streams"].items()}
  fused = {row["streams"]: row["mean_class_accuracy"] for row in results["fusion"]}
  four = " + ".join(TABLE_NAMES[s] for s in FUSED)
  best = max(acc[TABLE_NAMES[s]] for s in FUSED)
  return {"DI > SI": acc["DI"] > acc["SI"], "DI > mean image": acc["DI"] > acc["mean"],
          f"{four} >= best single stream": fused[four] >= best}


def four_stream(workdir, data_dir=None, runlocal: bool = False) -> dict:
  """Trains and evaluates every stream under `workdir` on the dataset prepared in `data_dir` (default
  <workdir>/data), fuses them; returns (and writes) the results.

  Raises:
    FileNotFoundError: the synthetic dataset is not prepared in `data_dir` (the message names the command).
  """
  from arp_jax import evaluate, fuse, train  # pylint: disable=import-outside-toplevel
  from arp_jax.scores import load_scores  # pylint: disable=import-outside-toplevel

  experiment = load_config_file(EXPERIMENT)
  workdir = Path(os.fspath(workdir)).absolute()
  data_dir = Path(os.fspath(data_dir)).absolute() if data_dir else workdir / "data"
  results = {"streams": {}}
  for stream in experiment.STREAMS:
    config = experiment.get_config(f"stream={stream}" + (",runlocal" if runlocal else ""))
    config.dataset.data_dir = os.fspath(data_dir)  # one dataset for every stream
    start = time.perf_counter()
    trained = train.train(config, workdir / stream)
    report = evaluate.evaluate(config, workdir / stream)
    results["streams"][TABLE_NAMES[stream]] = dict(
        mean_class_accuracy=report["mean_class_accuracy"], top1=report["top1"], steps=trained["step"],
        seconds=time.perf_counter() - start)
    print(f"{TABLE_NAMES[stream]:>5}: mean class accuracy {100 * report['mean_class_accuracy']:.1f} % "
          f"({results['streams'][TABLE_NAMES[stream]]['seconds']:.0f} s)", file=sys.stderr)
  scores = {TABLE_NAMES[s]: load_scores(workdir / s / evaluate.SCORES_FILE) for s in FUSED}
  rows = fuse.combinations_table(scores)
  results["fusion"] = [dict(streams=name, mean_class_accuracy=m / 100, top1=t / 100) for name, m, t in rows]
  results["claims"] = claims(results)
  tmp = workdir / "results.json.tmp"
  tmp.write_text(json.dumps(results, indent=1) + "\n")
  os.replace(tmp, workdir / "results.json")
  print(fuse.format_table(rows))
  print(f"mean image (not fused): {100 * results['streams']['mean']['mean_class_accuracy']:.2f}")
  for claim, holds in results["claims"].items():
    print(f"{'holds' if holds else 'FAILS'}: {claim}")
  return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", required=True, help="folder of the streams' runs and results.json")
  parser.add_argument("--data-dir", default=None,
                      help="the prepared synthetic dataset (arp-jax synthetic-data; default <workdir>/data)")
  parser.add_argument("--runlocal", action="store_true",
                      help="a few steps on the tiny dataset (arp-jax synthetic-data --variant tiny): a "
                      "smoke test")


def run(args: argparse.Namespace) -> int:
  """`arp-jax four-stream`: 0 when the paper's claims hold (or `--runlocal`, which trains too little to
  show anything), 1 otherwise."""
  from arp_jax import checkpoint  # pylint: disable=import-outside-toplevel
  checkpoint.quiet_logs()
  results = four_stream(args.workdir, args.data_dir, args.runlocal)
  return 0 if args.runlocal or all(results["claims"].values()) else 1


if __name__ == "__main__":
  from arp_jax import cli  # pylint: disable=import-outside-toplevel
  sys.exit(cli.main(["four-stream", *sys.argv[1:]]))
