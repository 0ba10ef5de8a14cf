r"""Runs every point of a config file's sweep: `arp-jax sweep CONFIG.py[:arg] --workdir DIR`.

A config file declares its sweep with `get_hyper(hyper)` (big_vision style), e.g.

    def get_hyper(h):
      return h.product([h.sweep("split", [1, 2, 3]), h.sweep("config.model.pool_at", ["stem", "res3"])])

Each point is a dict: keys "config.<field>" override config fields, other keys are arguments of the file's
`get_config(arg)` (merged over the command line's `:arg`). For each point in turn the runner trains and
evaluates (`arp_jax.train.train`, `arp_jax.evaluate.evaluate`) in DIR/<point name>, skips points whose
evaluation is already there, and rewrites DIR/results.md: each point's measured mean class accuracy, averaged
over the splits that ran, beside the paper's figure when the file gives one (`paper_result(point) ->
float | None`, in %). A generated dataset (synthetic, or the miniature of `runlocal`) is read from DIR
(DIR/data, DIR/mini_data) for every point; prepare it first (`arp-jax synthetic-data`, `arp-jax
mini-data`: the error of a missing one names the command). `--print` prints one train + evaluate
command per point instead (for a cluster scheduler) and runs nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

from arp_jax import builders, evaluate as evaluate_lib
from arp_jax.config import arg_items, check_config, load_config_file

RESULTS_FILE = "results.md"


# --------------------------------------------------------------------------------------------------------
# The `hyper` helpers given to get_hyper


def sweep(key: str, values: Iterable) -> list[dict]:
  """One point per value: [{key: v} for v in values]."""
  values = list(values)
  if not values:
    raise ValueError(f"sweep over {key!r} has no values")
  return [{key: value} for value in values]


def product(sweeps: Sequence[list[dict]]) -> list[dict]:
  """Every combination of one point from each sweep (the last sweep varies fastest)."""
  return [dict(itertools.chain.from_iterable(point.items() for point in combo))
          for combo in itertools.product(*sweeps)]


def chainit(sweeps: Sequence[list[dict]]) -> list[dict]:
  """The points of each sweep, one sweep after the other."""
  return [point for points in sweeps for point in points]


HYPER = SimpleNamespace(sweep=sweep, product=product, chainit=chainit)


# --------------------------------------------------------------------------------------------------------
# Points


def points(module: ModuleType) -> list[dict]:
  """The sweep of a config file (one empty point when it declares none)."""
  if not hasattr(module, "get_hyper"):
    return [{}]
  found = module.get_hyper(HYPER)
  if not isinstance(found, list) or not found or not all(isinstance(p, dict) for p in found):
    raise ValueError(f"get_hyper of {module.__file__} returned {found!r}; expected a non-empty list of dicts")
  return found


def _arg_items(point: dict) -> dict:
  return {k: v for k, v in point.items() if not k.startswith("config.")}


def merged_arg(base_arg: str | None, point: dict) -> str:
  """The get_config argument of a point: the command line's, then the point's arguments."""
  items = arg_items(base_arg)
  items.update(_arg_items(point))
  return ",".join(k if v is None or v is True else f"{k}={v}" for k, v in items.items() if v is not False)


def point_name(point: dict) -> str:
  """A folder name for a point, e.g. "split=2,pool_at=res3" ("default" for the empty point)."""
  if not point:
    return "default"
  return ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()).replace("/", "_")


def point_config(module: ModuleType, base_arg: str | None, point: dict):
  """The config of one point: get_config(merged argument), then the point's field overrides."""
  config = module.get_config(merged_arg(base_arg, point))
  for key, value in point.items():
    if not key.startswith("config."):
      continue
    node = config
    *parents, last = key[len("config."):].split(".")
    for parent in parents:
      if parent not in node or not hasattr(node[parent], "keys"):
        raise ValueError(f"sweep key {key!r} names no config field")
      node = node[parent]
    if last not in node:
      raise ValueError(f"sweep key {key!r} names no config field")
    node[last] = value
  return config


def commands(config_path: str, base_arg: str | None, point: dict, workdir: Path) -> list[str]:
  """The train and evaluate command lines of one point."""
  arg = merged_arg(base_arg, point)
  spec = f"{config_path}:{arg}" if arg else config_path
  overrides = [f"--{k}={json.dumps(v) if isinstance(v, (list, tuple)) else v}"
               for k, v in point.items() if k.startswith("config.")]
  out = []
  for module in ("arp_jax.train", "arp_jax.evaluate"):
    parts = [sys.executable, "-m", module, f"--config={spec}", f"--workdir={workdir / point_name(point)}",
             *overrides]
    out.append(" ".join(shlex.quote(p) for p in parts))
  return out


# --------------------------------------------------------------------------------------------------------
# Running and reporting


def _measured(workdir: Path, point: dict) -> float | None:
  path = workdir / point_name(point) / evaluate_lib.EVAL_FILE
  if not path.exists():
    return None
  return json.loads(path.read_text())["mean_class_accuracy"]


def results_table(module: ModuleType, workdir: Path, all_points: list[dict],
                  base_arg: str | None = None) -> str:
  """results.md: one row per point with the splits averaged (the paper's metric). `paper_result` sees the
  command line's arguments (e.g. the dataset) merged with the point's."""
  rows: dict[str, list] = {}
  for point in all_points:
    key = {k: v for k, v in point.items() if k != "split"}
    name = point_name(key)
    row = rows.setdefault(name, [key, []])
    measured = _measured(workdir, point)
    if measured is not None:
      row[1].append(measured)
  paper = getattr(module, "paper_result", lambda point: None)
  lines = [f"# {Path(module.__file__).name}", "",
           "| point | measured mean class accuracy % | splits | paper % |", "|---|---|---|---|"]
  for name, (key, values) in rows.items():
    measured = f"{100 * sum(values) / len(values):.2f}" if values else "not run"
    reference = paper({**arg_items(base_arg), **key})
    lines.append(f"| {name} | {measured} | {len(values)} | "
                 f"{'' if reference is None else f'{reference:.1f}'} |")
  return "\n".join(lines) + "\n"


def run_sweep(config_spec: str, workdir, print_only: bool = False) -> str:
  """Runs (or prints) every point of the sweep of `config_spec` ("FILE.py[:arg]"); returns results.md."""
  from arp_jax import train  # pylint: disable=import-outside-toplevel

  path, _, base_arg = config_spec.partition(":")
  module = load_config_file(path)
  workdir = Path(os.fspath(workdir)).absolute()
  all_points = points(module)
  # A point's arguments override the command line's: one it sweeps would be silently replaced.
  swept = sorted(set(arg_items(base_arg)) & {key for p in all_points for key in _arg_items(p)})
  if swept:
    raise ValueError(f"{path} sweeps {', '.join(swept)} itself (get_hyper), so {', '.join(swept)} on the "
                     "command line would be ignored; drop it (train one point with python -m arp_jax.train)")
  # Every point's config is built and checked before any runs: a mistake fails now, not after hours.
  configs = [point_config(module, base_arg, point) for point in all_points]
  for config in configs:
    check_config(config)
  if print_only:
    text = "\n".join(line for point in all_points for line in commands(path, base_arg, point, workdir))
    print(text)
    return text
  workdir.mkdir(parents=True, exist_ok=True)
  for i, point in enumerate(all_points):
    name = point_name(point)
    if _measured(workdir, point) is not None:
      print(f"[{i + 1}/{len(all_points)}] {name}: done, skipped", file=sys.stderr)
      continue
    print(f"[{i + 1}/{len(all_points)}] {name}", file=sys.stderr)
    config = configs[i]
    if not config.dataset.data_dir:
      # The synthetic or miniature dataset: one, in DIR, for every point (not in each point's folder).
      # Printed commands keep their own, since a scheduler may run them at the same time.
      config.dataset.data_dir = builders.data_dir(config, workdir) or ""
    train.train(config, workdir / name)
    evaluate_lib.evaluate(config, workdir / name)
    table = results_table(module, workdir, all_points, base_arg)
    (workdir / RESULTS_FILE).write_text(table)
  table = results_table(module, workdir, all_points, base_arg)
  (workdir / RESULTS_FILE).write_text(table)
  print(table)
  return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("config", help="config file with get_hyper, e.g. experiments/table4_dynamic_maps.py")
  parser.add_argument("--workdir", required=True, help="one subfolder per point, and results.md")
  parser.add_argument("--print", dest="print_only", action="store_true",
                      help="print one command per point instead of running them")


def run(args: argparse.Namespace) -> int:
  """`arp-jax sweep`: a user's mistake (a missing config file, a bad argument, a missing dataset) is a
  ValueError or FileNotFoundError: one line, status 2 (`arp_jax.cli`)."""
  run_sweep(args.config, args.workdir, args.print_only)
  return 0


if __name__ == "__main__":
  from arp_jax import cli  # pylint: disable=import-outside-toplevel
  sys.exit(cli.main(["sweep", *sys.argv[1:]]))
