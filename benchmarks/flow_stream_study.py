"""The synthetic benchmark's flow streams trained on our TV-L1 and on OpenCV's: is the flow as useful?

    python benchmarks/flow_stream_study.py --workdir runs/flow_stream_study [--streams of,dof] [--quick]

Builds the synthetic motion dataset (`data_prep.synthetic`, the default config's videos: 12 classes x
(40 train + 10 test) videos of 32 frames of 64 x 64) twice, with `flow="tvl1"` (`arp_jax.flow.tvl1`) and
`flow="tvl1_opencv"` (OpenCV's DualTVL1), timing each build, then trains and evaluates the OF (and DOF)
stream of `experiments/synthetic_four_stream.py` on each, with the same config and seed. Prints one line
per (flow, stream) with the mean class accuracy, and the agreement between the two flows on the first
videos. Runs resume: a built dataset or a trained stream is reused. `--quick`: the tiny dataset and a few
steps, a smoke run.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import time

import numpy as np

METHODS = ("tvl1", "tvl1_opencv")


def build(data_dir: Path, method: str, quick: bool):
  """The default (or tiny) synthetic dataset with `method`'s flow, under config name `<variant>_<method>`."""
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  base = synthetic.SyntheticMotion.builder_configs["tiny" if quick else "default"]
  config = synthetic.SyntheticMotionConfig(
      name=f"{base.name}_{method}", description=f"The {base.name} config's videos with {method} flow.",
      num_per_class_train=base.num_per_class_train, num_per_class_test=base.num_per_class_test,
      num_frames=base.num_frames, size=base.size, seed=base.seed, noise=base.noise, flow=method)
  start = time.perf_counter()
  synthetic.build(data_dir, config)
  return config.name, time.perf_counter() - start


def train_stream(workdir: Path, data_dir: Path, dataset: str, stream: str, quick: bool) -> float:
  """Mean class accuracy of `stream` trained and evaluated on `synthetic_motion/<dataset>`."""
  from arp_jax import evaluate, train  # pylint: disable=import-outside-toplevel
  from arp_jax.config import load_config_file  # pylint: disable=import-outside-toplevel
  from arp_jax.synthetic_benchmark import EXPERIMENT  # pylint: disable=import-outside-toplevel
  config = load_config_file(EXPERIMENT).get_config(f"stream={stream}" + (",runlocal" if quick else ""))
  config.dataset.name = f"synthetic_motion/{dataset}"
  config.dataset.data_dir = os.fspath(data_dir)
  train.train(config, workdir / dataset / stream)
  return evaluate.evaluate(config, workdir / dataset / stream)["mean_class_accuracy"]


def flow_agreement(data_dir: Path, datasets: dict[str, str], videos: int = 8) -> str:
  """Mean |code difference| and the share within +-2 between the two datasets' stored flow codes."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  codes = {}
  for method, name in datasets.items():
    source = tfds.data_source(f"synthetic_motion/{name}", data_dir=os.fspath(data_dir))["test"]
    codes[method] = [np.stack([np.asarray(x) for x in source[k]["flow_x"]]).astype(int) for k in range(videos)]
  difference = np.concatenate([np.abs(a - b).ravel() for a, b in zip(codes["tvl1"], codes["tvl1_opencv"])])
  return (f"stored u codes of {videos} test videos: mean |difference| {difference.mean():.2f}, "
          f"within +-2: {100 * (difference <= 2).mean():.1f} %")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", type=Path, required=True)
  parser.add_argument("--streams", default="of,dof", help="comma-separated: of, dof")
  parser.add_argument("--quick", action="store_true", help="the tiny dataset, a few steps: a smoke run")
  args = parser.parse_args()
  from arp_jax import checkpoint  # pylint: disable=import-outside-toplevel
  checkpoint.quiet_logs()
  data_dir = args.workdir / "data"
  datasets = {}
  for method in METHODS:
    datasets[method], seconds = build(data_dir, method, args.quick)
    print(f"dataset {datasets[method]}: built (or found) in {seconds:.0f} s", flush=True)
  print(flow_agreement(data_dir, datasets, 2 if args.quick else 8), flush=True)
  for stream in args.streams.split(","):
    for method in METHODS:
      accuracy = train_stream(args.workdir, data_dir, datasets[method], stream.strip(), args.quick)
      print(f"{stream.strip().upper():>4} on {method:12s}: mean class accuracy {100 * accuracy:.1f} %", flush=True)


if __name__ == "__main__":
  main()
