r"""The README's main job: the paper's four streams on the synthetic motion benchmark, trained and fused.

    arp-jax synthetic-data --data-dir runs/synthetic_four_stream/data
    arp-jax four-stream --workdir runs/synthetic_four_stream

Trains and evaluates every stream of `experiments/synthetic_four_stream.py` (SI, DI, the mean-image
control, OF, DOF) in <workdir>/<stream> (each resumes if interrupted), all reading one prepared dataset
(`--data-dir`, default <workdir>/data), fuses SI, DI, OF and DOF as the paper's Table 8 does and prints
every combination beside its ceiling (`CEILINGS`: what its input can tell at best), then checks the paper's
claims (`claims`). The table and each stream's accuracy and ceiling go to <workdir>/results.json; a full
run whose claims do not hold exits with status 1.

The terminal shows a line per stream as it finishes (stderr), then the table and the claims (stdout), and
nothing else when the output is not a terminal: training's progress bar shows on a terminal only, and the
libraries' logs below warnings are silenced (`checkpoint.quiet_logs`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from arp_jax import fuse
from arp_jax.config import load_config_file

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "synthetic_four_stream.py"
# The paper's names for the fusion table, and the four streams it fuses (the mean image is a control).
TABLE_NAMES = {"si": "SI", "di": "DI", "mean": "mean", "of": "OF", "dof": "DOF"}
FUSED = ("si", "di", "of", "dof")

# The best mean class accuracy each stream's input allows on the 12 classes (3 shapes x 4 directions):
# what a perfect classifier of that input would reach, the yardstick its accuracy is read against.
CEILINGS = {
    # One frame at a random time shows the shape, never the direction (`data_prep.synthetic` draws the
    # paths so that the shape's place in such a frame has one distribution for all four): the shape
    # known, the direction is a guess among 4. Averaging the scores of a video's frames at test adds
    # nothing, each frame being scored alone.
    "si": 1 / 4,
    # A mean image is the same forwards and backwards: its streak shows the shape and the axis of motion
    # (horizontal or vertical), not the sign; one of 2 directions is a guess.
    "mean": 1 / 2,
    # Temporal order (the dynamic image) and motion itself (flow, dynamic flow) tell the direction too.
    "di": 1.0,
    "of": 1.0,
    "dof": 1.0,
}
# What each stream should reach on this benchmark: its ceiling, less what 40 test videos per class leave
# to chance (one standard error at 25 % over 480 videos is 2 points) and a few hard videos. Reported beside
# the accuracies and kept in results.json, not made part of the exit status, which says whether the paper's
# claims hold: every stream reaches its target on the development machine (README.md), but the mean image
# only by 0.6 point (44.8-46.9 over three seeds), half of its accuracy being a coin toss (the sign of a
# direction it cannot see: one standard error of 2.3 points), so another machine's rounding may put the
# same recipe below 45 %.
TARGETS = {"si": 0.20, "mean": 0.45, "di": 0.90, "of": 0.90, "dof": 0.90}


def ceiling(streams: str) -> float:
  """The ceiling of a stream or a fusion, named as the table names them ("SI + DI"): a fusion sees the
  union of its streams' inputs, and each stream's information here contains that of any lower ceiling
  (a frame's shape is in every dynamic image and flow field), so the union's ceiling is the largest."""
  stream_of = {name: stream for stream, name in TABLE_NAMES.items()}
  return max(CEILINGS[stream_of[name]] for name in streams.split(" + "))


def claims(results: dict) -> dict[str, bool]:
  """The paper's claims, as measured by this run (mean class accuracy; the fusion of SI, DI, OF, DOF).

  DI beats SI and the mean image of the same windows: what the dynamic image adds is temporal order,
  not motion energy (which the mean image has too). The four-stream fusion is at least as good as its
  best stream (Table 8).
  """
  acc = {name: stream["mean_class_accuracy"] for name, stream in results["streams"].items()}
  fused = {row["streams"]: row["mean_class_accuracy"] for row in results["fusion"]}
  four = " + ".join(TABLE_NAMES[s] for s in FUSED)
  best = max(acc[TABLE_NAMES[s]] for s in FUSED)
  return {"DI > SI": acc["DI"] > acc["SI"], "DI > mean image": acc["DI"] > acc["mean"],
          f"{four} >= best single stream": fused[four] >= best}


def targets(results: dict) -> dict[str, bool]:
  """Whether each stream reached its `TARGETS` accuracy, e.g. {"OF >= 90 %": False}."""
  return {f"{TABLE_NAMES[s]} >= {100 * target:.0f} %":
          results["streams"][TABLE_NAMES[s]]["mean_class_accuracy"] >= target for s, target in TARGETS.items()}


def stream_line(name: str, stream: dict) -> str:
  """One stream's result for the terminal, beside its ceiling: "   DI: mean class accuracy 95.8 % (ceiling
  100 %, 42 s)"."""
  return (f"{name:>5}: mean class accuracy {100 * stream['mean_class_accuracy']:.1f} % "
          f"(ceiling {100 * stream['ceiling']:.0f} %, {stream['seconds']:.0f} s)")


def table(results: dict) -> str:
  """`fuse.format_table` of the streams and their fusions with a column of ceilings; the mean image, which
  is not fused, after the single streams."""
  rows = [dict(row) for row in results["fusion"]]
  rows.insert(len(FUSED), dict(results["streams"]["mean"], streams="mean image (not fused)"))
  text = fuse.format_table([(row["streams"], 100 * row["mean_class_accuracy"], 100 * row["top1"])
                            for row in rows])
  header, *lines = text.splitlines()
  return "\n".join([f"{header}  ceiling %"] +
                   [f"{line}  {100 * row['ceiling']:>9.0f}" for line, row in zip(lines, rows)])


def four_stream(workdir, data_dir=None, runlocal: bool = False) -> dict:
  """Trains and evaluates every stream under `workdir` on the dataset prepared in `data_dir` (default
  <workdir>/data), fuses them; returns (and writes) the results.

  Raises:
    FileNotFoundError: the synthetic dataset is not prepared in `data_dir` (the message names the command).
  """
  from arp_jax import evaluate, train  # pylint: disable=import-outside-toplevel
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
    name = TABLE_NAMES[stream]
    results["streams"][name] = dict(
        mean_class_accuracy=report["mean_class_accuracy"], top1=report["top1"], ceiling=CEILINGS[stream],
        steps=trained["step"], seconds=time.perf_counter() - start)
    print(stream_line(name, results["streams"][name]), file=sys.stderr)
  scores = {TABLE_NAMES[s]: load_scores(workdir / s / evaluate.SCORES_FILE) for s in FUSED}
  results["fusion"] = [dict(streams=name, mean_class_accuracy=m / 100, top1=t / 100, ceiling=ceiling(name))
                       for name, m, t in fuse.combinations_table(scores)]
  results["claims"] = claims(results)
  results["targets"] = targets(results)
  tmp = workdir / "results.json.tmp"
  tmp.write_text(json.dumps(results, indent=1) + "\n")
  os.replace(tmp, workdir / "results.json")
  print(table(results))
  for claim, holds in results["claims"].items():
    print(f"{'holds' if holds else 'FAILS'}: {claim}")
  print("targets: " + ", ".join(f"{target} {'met' if met else 'missed'}"
                                 for target, met in results["targets"].items()))
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
