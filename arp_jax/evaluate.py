"""Evaluates a trained stream: `arp-jax evaluate --config FILE.py[:args] --workdir DIR`.

Restores the newest intact checkpoint of DIR (what `arp_jax.train` wrote with the same config: a
config that differs from DIR/config.json in the network or the test input is refused before anything is
written, naming the fields; training-only fields such as the learning rates may differ), scores every
test video once from all its test windows (up to `input.test_windows`, the reference's 20), and writes

  DIR/scores.npz   per-video class scores (`arp_jax.scores`: names, labels, scores, classes), the input
                   of `python -m arp_jax.fuse`
  DIR/eval.json    top-1 and mean class accuracy, per-class accuracy, confusion matrix, checkpoint step

How a video's windows become one score (`config.eval.aggregate`):
  "network"  the network pools each window and merges the windows inside itself (its `merge`), in one
             pass over all of them: every stream of `arp_jax.paper_configs` by default (SI and OF as
             windows of one frame, merged by max), trained that way;
  "mean"     each window is scored alone and the softmax scores are averaged over the video's windows
             (saved as the log of the average, so the scores stay logits): streams trained on one
             window or frame at a time (`frame_streams=softmax_mean`, experiments/synthetic_four_stream.py).

Data-parallel like training: each host scores its share of the videos, the batch is sharded over every
device, and the scores are gathered on every host; process 0 writes the files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from arp_jax import builders, checkpoint, config as config_lib, metrics, run_config
from arp_jax.input import CHANNELS, decode_names
from arp_jax.scores import Scores, save_scores
from arp_jax.train_step import DATA_AXIS, data_mesh, global_batch

SCORES_FILE = "scores.npz"
EVAL_FILE = "eval.json"


def window_mean_scores(network, variables, frames, num_windows):
  """Per-video log of the mean softmax over its windows, each window classified on its own.

  Args:
    network: a `DynamicImageNetwork`.
    variables: its {"params", "batch_stats"}.
    frames: [B, S, tau, H, W, C], the windows of each video (the input pipelines' layout).
    num_windows: int [B], real windows; the rest are padding and left out.

  Returns:
    float32 [B, K].
  """
  B, S = frames.shape[:2]
  logits = network.apply(variables, frames.reshape((B * S, 1) + frames.shape[2:]), train=False)
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(B, S, -1)
  real = jnp.arange(S)[None, :] < num_windows[:, None]  # [B, S]
  log_p = jnp.where(real[..., None], log_p, -jnp.inf)
  return jax.nn.logsumexp(log_p, axis=1) - jnp.log(jnp.maximum(real.sum(axis=1), 1))[:, None]


def make_eval_step(network, mesh, aggregate: str):
  """The jitted `(variables, batch) -> (scores [B, K], index, valid, label, name)`, all sharded over
  `mesh` (the batch's own index, valid, label and name pass through, to be gathered with the scores).

  aggregate: one of `config.AGGREGATES` (trusted: the config was checked)."""
  replicated = NamedSharding(mesh, PartitionSpec())
  sharded = NamedSharding(mesh, PartitionSpec(DATA_AXIS))

  def step(variables, batch):
    if aggregate == "network":
      scores = network.apply(variables, batch["frames"], train=False, num_windows=batch["windows"])
    else:
      scores = window_mean_scores(network, variables, batch["frames"], batch["windows"])
    return scores.astype(jnp.float32), batch["index"], batch["valid"], batch["label"], batch["name"]

  return jax.jit(step, in_shardings=(replicated, sharded), out_shardings=sharded)


def _gather(array) -> np.ndarray:
  """A batch-sharded global array as a NumPy array on every host."""
  if array.is_fully_addressable:
    return np.asarray(array)
  return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def score_videos(config, workdir, network, variables, mesh, num_test: int):
  """(index int [N], label int [N], scores float32 [N, K], names [N]) of every test video, in source
  order, on every host.

  Raises:
    RuntimeError: a test video was scored twice or never (the sharding or padding went wrong).
  """
  step = make_eval_step(network, mesh, config.eval.aggregate)
  batches = builders.input_pipeline(
      config.input, builders.source(config, workdir, train=False), train=False,
      batch_size=builders.local_batch_size(config.eval.batch_size, "eval.batch_size"), seed=config.seed,
      convention=builders.input_convention(config))
  parts = []
  for batch in batches:
    scores, index, valid, label, name = (_gather(x) for x in step(variables, global_batch(batch, mesh)))
    parts.append((index[valid], label[valid], scores[valid], name[valid]))
  index, label, scores, names = (np.concatenate(x) for x in zip(*parts))
  counts = np.bincount(index, minlength=num_test)
  if len(counts) != num_test or (counts != 1).any():
    bad = np.flatnonzero(counts != 1)[:5]
    raise RuntimeError(f"test videos {bad.tolist()} were scored {counts[bad].tolist()} times; expected each "
                       f"of the {num_test} exactly once")
  order = np.argsort(index)
  return index[order], label[order], scores[order], decode_names(names[order])


def evaluate(config, workdir) -> dict:
  """Scores the test split with the latest checkpoint of `workdir`; writes scores.npz and eval.json.

  Returns:
    The contents of eval.json: {"step", "num_videos", "top1", "mean_class_accuracy",
    "per_class_accuracy" (class name -> accuracy, None for a class without test videos),
    "confusion_matrix" (rows true classes, columns predictions), "scores_file"}.

  Raises:
    FileNotFoundError: no checkpoint in workdir (train first) or the dataset is not prepared.
    ValueError: an invalid config, or one that differs from the run's config.json in the trained network
      or the test input (`run_config.check_run_config`).
  """
  config_lib.check_config(config)
  workdir = Path(os.fspath(workdir)).absolute()
  run_config.check_run_config(config, workdir, evaluation=True)
  builders.local_batch_size(config.eval.batch_size, "eval.batch_size")
  with checkpoint.Manager(workdir / "checkpoints", create=False) as manager:
    if manager.latest_step is None:  # before anything is read or written
      raise FileNotFoundError(f"no checkpoint in {manager.directory}; train first (arp-jax train with the "
                              "same --config and --workdir)")
    info = builders.dataset_info(config, workdir)
    mesh = data_mesh()
    network = builders.model(config.model, info.num_classes, CHANNELS[config.input.modality])
    # Shapes only: the checkpoint's arrays are read straight into their replicated place on the mesh.
    replicated = NamedSharding(mesh, PartitionSpec())
    shapes = jax.eval_shape(lambda: builders.initial_variables(config, network, use_pretrained=False))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), shapes)
    variables, step = manager.restore_variables(
        {"params": abstract["params"], "batch_stats": abstract.get("batch_stats", {})})

  _, labels, scores, names = score_videos(config, workdir, network, variables, mesh, info.num_test)
  result = Scores(names=names, labels=labels, scores=scores, classes=info.class_names)
  per_class = metrics.per_class_accuracy(scores, labels)
  report = {
      "step": int(step),
      "num_videos": len(names),
      "aggregate": config.eval.aggregate,
      "top1": metrics.accuracy(scores, labels),
      "mean_class_accuracy": metrics.mean_class_accuracy(scores, labels),
      "per_class_accuracy": {name: (None if np.isnan(a) else float(a))
                             for name, a in zip(info.class_names, per_class)},
      "confusion_matrix": metrics.confusion_matrix(metrics.predictions(scores), labels,
                                                   info.num_classes).tolist(),
      "scores_file": os.fspath(workdir / SCORES_FILE),
  }
  if jax.process_index() == 0:
    save_scores(workdir / SCORES_FILE, result)
    tmp = workdir / (EVAL_FILE + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, workdir / EVAL_FILE)
  return report


def summary(report: dict) -> str:
  """Two lines for a terminal: the accuracies, then the weakest classes."""
  worst = sorted(((a, n) for n, a in report["per_class_accuracy"].items() if a is not None))[:3]
  return (f"step {report['step']}: {report['num_videos']} test videos, top-1 {100 * report['top1']:.2f} %, "
          f"mean class accuracy {100 * report['mean_class_accuracy']:.2f} %\n"
          f"weakest classes: " + ", ".join(f"{n} {100 * a:.1f} %" for a, n in worst))


def add_arguments(parser: argparse.ArgumentParser) -> None:
  config_lib.add_arguments(parser, "folder of the trained run (its checkpoints); scores.npz and eval.json "
                           "go there")


def run(args: argparse.Namespace) -> int:
  """`arp-jax evaluate`: the summary on stderr, the accuracies as one JSON line. A user's mistake (a bad
  config, no checkpoint, a missing dataset) is a ValueError or FileNotFoundError: one line, status 2."""
  config = config_lib.from_args(args)
  checkpoint.quiet_logs()
  if args.distributed:
    jax.distributed.initialize()
  report = evaluate(config, args.workdir)
  if jax.process_index() == 0:
    print(summary(report), file=sys.stderr)
    print(json.dumps({k: report[k] for k in ("step", "num_videos", "top1", "mean_class_accuracy")}))
  return 0


if __name__ == "__main__":
  from arp_jax import cli  # pylint: disable=import-outside-toplevel
  sys.exit(cli.main(["evaluate", *sys.argv[1:]]))
