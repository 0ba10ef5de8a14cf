r"""The four streams of the paper on the synthetic motion benchmark, trained and fused in a few minutes.

    python experiments/synthetic_four_stream.py --workdir runs/synthetic     # everything, then the table
    python -m arp_jax.train --config experiments/synthetic_four_stream.py:stream=di --workdir runs/di

The benchmark (`data_prep.synthetic`): 12 classes = 3 shapes x 4 directions, 40 training and 10 test
videos per class of 32 frames of 64 x 64, generated on the fly and prepared like UCF101 (JPEG frames,
quantised Farneback flow) into <workdir>/data (about 40 s). A frame shows the shape but not the direction,
and a mean image is symmetric in time (it shows the axis of motion, not its sign); by construction a
single frame can reach at most 1/3 and a mean image 1/2 accuracy. The streams, all with the same small
ResNeXt (`resnext_tiny`, trained from scratch, SGD as the reference, 20 epochs), see one image per video
and step in training and average the softmax scores of all of a video's images at test:

  si     static images: a random RGB frame (test: all 32)
  di     dynamic images: approximate rank pooling of a random window of 10 frames (the paper's windows of
         tau = 10 every s = 6; test: all 6 windows)
  mean   the same network on mean images of the same windows: what the temporal order adds
  of     optical flow: a random flow field (u, v) (test: all 31)
  dof    dynamic optical flow: approximate rank pooling of a random window of 10 flow fields

No flips in training (a mirror image turns "left" into "right") and mild crops (64 or 56 of 64 pixels).

`get_config("stream=di")` is one stream's config for `arp_jax.train` / `arp_jax.evaluate`; `runlocal`
shrinks it to a handful of steps on the tiny dataset (tests and smoke runs). Run as a script, the file
trains and evaluates every stream in turn (each resumes if interrupted), fuses SI, DI, OF and DOF as the
paper's Table 8 does and prints every combination; the table and each stream's accuracy are written to
<workdir>/results.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import ml_collections

from arp_jax import experiment

STREAMS = ("si", "di", "mean", "of", "dof")
# The paper's names for the fusion table, and the four streams it fuses (the mean image is a control).
TABLE_NAMES = {"si": "SI", "di": "DI", "mean": "mean", "of": "OF", "dof": "DOF"}
FUSED = ("si", "di", "of", "dof")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """One stream's config. arg: "stream=<si|di|mean|of|dof>[,runlocal]" (default stream=di)."""
  args = experiment.parse_arg(arg, {"stream": "di", "runlocal": False})
  stream = args["stream"]
  if stream not in STREAMS:
    raise ValueError(f"stream is {stream!r}; expected one of {STREAMS}")
  frames = stream in ("si", "of")  # single-frame streams
  config = experiment.base_config()
  config.dataset.name = "synthetic_motion/default"
  c = config.input
  c.modality = "flow" if stream in ("of", "dof") else "rgb"
  # Every stream trains on one image per video and step: one random frame (SI, OF), or the dynamic (or
  # mean) image of one random window of 10 frames (DI, DOF, mean); at test each video's score is the
  # average of the softmax scores of all its frames or windows (6 windows of 10 frames every 6).
  c.window, c.stride = (1, 1) if frames else (10, 6)
  c.train_windows, c.test_windows = 1, (32 if frames else 6)
  c.size = 64
  # Mild crops: the reference's smallest (168 of 256) would often cut the shape's path out of the view.
  c.scales = (64, 56)
  c.short_side = 0  # the scales are pixels of the stored 64 x 64 frames
  c.flip = False  # a mirror image turns "left" into "right"
  c.batch_size = 32
  c.repeat = 1
  c.num_workers = 0
  config.model.backbone = "resnext_tiny"
  config.model.pooling = "mean" if stream == "mean" else "arp"
  config.model.dropout_rate = 0.2
  config.optim.learning_rates = [0.02] + [0.1] * 14 + [0.01] * 5
  config.optim.accumulation_steps = 1
  config.eval.aggregate = "mean"
  config.eval.batch_size = 32
  config.log_every = 10
  config.checkpoint_every = 50
  if args["runlocal"]:
    config.dataset.name = "synthetic_motion/tiny"
    c.batch_size = config.eval.batch_size = 8
    config.max_steps = 4
    config.log_every = 2
    config.checkpoint_every = 2
  return config


def get_hyper(h):
  """The five streams, for `python -m arp_jax.sweep experiments/synthetic_four_stream.py --workdir DIR`."""
  return h.sweep("stream", STREAMS)


def run(workdir, runlocal: bool = False) -> dict:
  """Trains and evaluates every stream under `workdir`, fuses them; returns (and writes) the results."""
  from arp_jax import evaluate, fuse, train  # pylint: disable=import-outside-toplevel
  from arp_jax.scores import load_scores  # pylint: disable=import-outside-toplevel

  workdir = Path(os.fspath(workdir)).absolute()
  results = {"streams": {}}
  for stream in STREAMS:
    config = get_config(f"stream={stream}" + (",runlocal" if runlocal else ""))
    config.dataset.data_dir = os.fspath(workdir / "data")  # one dataset for every stream
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


def claims(results: dict) -> dict[str, bool]:
  """The paper's claims, as measured by this run (mean class accuracy; the fusion of SI, DI, OF, DOF)."""
  acc = {name: stream["mean_class_accuracy"] for name, stream in results["streams"].items()}
  fused = {row["streams"]: row["mean_class_accuracy"] for row in results["fusion"]}
  four = " + ".join(TABLE_NAMES[s] for s in FUSED)
  best = max(acc[TABLE_NAMES[s]] for s in FUSED)
  return {"DI > SI": acc["DI"] > acc["SI"], "DI > mean image": acc["DI"] > acc["mean"],
          f"{four} >= best single stream": fused[four] >= best}


def main(argv=None) -> None:
  import argparse  # pylint: disable=import-outside-toplevel

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="folder of the runs, the dataset and results.json")
  parser.add_argument("--runlocal", action="store_true", help="a few steps on the tiny dataset (smoke test)")
  args = parser.parse_args(argv)
  results = run(args.workdir, args.runlocal)
  # A full run that does not show the paper's claims fails (runlocal trains too little to show anything).
  if not args.runlocal and not all(results["claims"].values()):
    sys.exit(1)


if __name__ == "__main__":
  main()
