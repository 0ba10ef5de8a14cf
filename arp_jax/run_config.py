"""The config of a run, saved beside it (<workdir>/config.json) and compared when the run resumes or is
evaluated: a config that would compute another result in the same folder is refused, naming the fields."""

from __future__ import annotations

from collections.abc import Mapping
import json
import os
from pathlib import Path

import jax
from flax import traverse_util

from arp_jax.config import AUTO, to_dict

RUN_CONFIG_FILE = "config.json"
# Fields that do not change what a run computes: where things are (init_from's folder is compared only as
# set or not), how often it logs and saves, how it reads, how far it goes now.
_NOT_RESULT = ("dataset.data_dir", "input.num_workers", "input.cache_decoded", "eval.batch_size", "log_every",
               "checkpoint_every", "keep_checkpoints", "max_steps")
# What only training reads: evaluation restores the trained network whatever these were, and
# eval.aggregate is evaluation's own choice (recorded in eval.json).
_TRAINING_ONLY = ("seed", "dataset.train_split", "input.train_windows", "input.scales", "input.flip",
                  "input.batch_size", "input.repeat", "optim")
_EVALUATION_ONLY = ("eval.aggregate",)
# The value a field added later had in effect before it existed, for config.json files written then:
# crops were drawn in stored pixels, and frames normalised as the reference does.
_BEFORE_FIELD = {"input.short_side": 0, "input.convention": "reference"}


def _result_fields(saved: Mapping, evaluation: bool) -> dict:
  """The flat fields of a config dict (`to_dict`'s) that change a run's result (evaluation's, or
  training's), normalised so that equal results compare equal."""
  flat = {**_BEFORE_FIELD, **traverse_util.flatten_dict(saved, sep=".")}
  if flat["input.convention"] == AUTO and not flat.get("init_from"):
    flat["input.convention"] = "reference"  # what "auto" means without init_from
  flat["init_from"] = bool(flat.get("init_from"))
  ignored = _NOT_RESULT + (_TRAINING_ONLY if evaluation else _EVALUATION_ONLY)
  return {key: value for key, value in flat.items()
          if not any(key == name or key.startswith(name + ".") for name in ignored)}


def run_config_differences(saved: Mapping, config, evaluation: bool = False) -> list[str]:
  """The fields in which `config` would compute another result than the run whose config.json holds
  `saved`: ["model.pooling: 'arp' in the run, 'mean' here", ...] (empty when none)."""
  old, new = _result_fields(saved, evaluation), _result_fields(to_dict(config), evaluation)
  return [f"{key}: {old.get(key, '(absent)')!r} in the run, {new.get(key, '(absent)')!r} here"
          for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def check_run_config(config, workdir, evaluation: bool = False) -> None:
  """Checks `config` against the config the run in `workdir` saved, if any (`save_run_config`).

  Raises:
    ValueError: they differ in a field that changes the result (for `evaluation`: the trained network or
      the test input), naming the fields.
  """
  path = Path(os.fspath(workdir)) / RUN_CONFIG_FILE
  if not path.exists():
    return
  differences = run_config_differences(json.loads(path.read_text()), config, evaluation)
  if differences:
    raise ValueError(f"{workdir} holds a run of another config ({path}): {'; '.join(differences)}; use "
                     f"that config{' to evaluate it' if evaluation else ' to resume it'}, or a new --workdir")


def save_run_config(config, workdir) -> None:
  """Writes `config` as <workdir>/config.json (atomically, on process 0): the config of the run there."""
  if jax.process_index() != 0:
    return
  path = Path(os.fspath(workdir)) / RUN_CONFIG_FILE
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")
  os.replace(tmp, path)
