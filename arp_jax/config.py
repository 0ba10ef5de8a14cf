"""Experiment configs: the schema, `get_config` arguments, the one validation, config files, overrides.

A config is an `ml_collections` ConfigDict with the fields of `base_config()`; the files of
`experiments/` start from it and change what their table varies. Each section is the arguments of one
object (`arp_jax.builders`): `config.model` those of `DynamicImageNetwork`, `config.optim` those of the
optimiser, `config.input` those of the input pipeline.

  seed                  of the initialisation, the data order and every augmentation draw
  dataset.name          TFDS name: "ucf101_frames/split1", "hmdb51_dynamic_images/split2_rgb_w10s6",
                        "synthetic_motion/default" (each prepared beforehand: `arp-jax build`,
                        `arp-jax synthetic-data`, `arp-jax mini-data`); ":<version>" reads that version
                        only, not the newest prepared ("synthetic_motion/default:3.0.0")
  dataset.data_dir      TFDS data folder ("": TFDS's default; for the synthetic dataset <workdir>/data,
                        for the miniature <workdir>/mini_data)
  dataset.mini          the miniature UCF101/HMDB51 of real clips (`arp-jax mini-data`): what `runlocal`
                        trains on
  dataset.train_split, dataset.test_split
  input.modality        "rgb" or "flow"
  input.offline         read precomputed dynamic images (`*_dynamic_images` datasets) instead of frames
  input.offline_values  "image" (the stored 8-bit images minus the mean, as the paper feeds them) or
                        "restored" (their pooled float values); `make_dynamic_image_dataset`'s `values`
  input.convention      how the pipelines normalise frames, dynamic images and flow for the weights
                        (`arp_jax.normalization`): "auto" (the convention recorded in init_from's
                        checkpoint; "reference" without init_from), or "reference" (0..255 minus the
                        ImageNet mean), "torchvision" ((x/255-mean)/std), "caffe" (0..255 minus BVLC's
                        mean); one that differs from init_from's record is an error
                        (`builders.input_convention`)
  input.window, .stride tau and s of the windows the pipeline samples (1, 1: single frames, the SI and
                        OF streams); the network takes tau from the batch's shape
  input.train_windows   windows per video in training (the reference's 10)
  input.test_windows    windows per video at test (20)
  input.size, .scales   network input side, training crop sides (in pixels of frames resized to short_side)
  input.short_side      crops are drawn in frames resized to this short side (the reference's 256), or
                        0: size and scales in stored pixels (the 64-pixel synthetic and miniature frames;
                        an int rather than None so that the command line can set either)
  input.flip            random horizontal flips in training (False when a mirror image changes the class)
  input.symmetries      class-mapping transforms of whole training videos (`arp_jax.input.symmetries`):
                        {"hflip"|"vflip"|"transpose": the class each class becomes}, for classes that a
                        mirror changes (the synthetic benchmark's directions); {} (the reference) for none
  input.batch_size      videos per step over all hosts and devices; an update averages the gradients
                        of optim.accumulation_steps steps (the reference: 4 x 32 = 128 videos)
  input.repeat          passes over the training list per epoch (the reference's 5)
  input.num_workers     Grain worker processes per host
  input.cache_decoded   keep the training videos decoded in memory after their first read
                        (`arp_jax.input.memory`): no reading or JPEG decoding after the first epoch, the
                        same batches; for datasets whose decoded frames take under half of a host's memory
                        (an error otherwise), such as the synthetic benchmark's
  model.*               `DynamicImageNetwork`'s arguments: backbone, pool_at, pooling, merge,
                        dropout_rate, dtype ("float32" or "bfloat16": the backbone's compute; the
                        paper's configs keep float32, the paper's numerics: pass
                        --config.model.dtype=bfloat16 on a GPU or TPU)
  optim.optimizer       "sgd" (the reference's: momentum, weight decay) or "adamw" (Adam, decoupled decay;
                        no momentum field used)
  optim.learning_rates  one per epoch (their count is the number of epochs)
  optim.momentum, .weight_decay, .accumulation_steps
  optim.multipliers     parameter name -> learning-rate multiplier, e.g. {"temporal_pooling": 0.1}
  init_from             "" (from scratch) or a checkpoint of `arp-jax convert` (the backbone's weights)
  eval.aggregate        "network" (the network merges all test windows of a video in one pass) or
                        "mean" (each window scored alone, softmax scores averaged: streams trained on
                        one window or frame at a time)
  eval.batch_size       videos per evaluation step over all hosts
  log_every, checkpoint_every, keep_checkpoints, max_steps (> 0 stops early: smoke runs)

On the command line a config is `--config FILE[:ARG]` (a Python file whose `get_config(arg)` returns it,
big_vision style) and any field can be overridden: `--config.model.pool_at=res3`, a list or tuple as a
Python literal: `--config.optim.learning_rates='(0.05, 0.05, 0.005)'` (`add_arguments`, `from_args`).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Mapping
import importlib.util
import math
import os
from pathlib import Path
from types import ModuleType

import ml_collections
import numpy as np
from flax import traverse_util

from arp_jax import checks, input as input_lib, normalization, optim
from arp_jax.models.video import DTYPES, POOLING_LABEL, DynamicImageNetwork

SYNTHETIC = "synthetic_motion"
AGGREGATES = ("network", "mean")
# input.convention: AUTO (init_from's record, else "reference") or a name of normalization.CONVENTIONS.
AUTO = "auto"
# Where `from_args` finds the overrides in the parsed arguments: dest OVERRIDE + "model.pool_at".
OVERRIDE = "config_override:"


def base_config() -> ml_collections.ConfigDict:
  """The reference's settings (ResNeXt-50 dynamic images on UCF101 split 1); see the module docstring."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.dataset = dict(name="ucf101_frames/split1", data_dir="", train_split="train", test_split="test",
                        mini=False)
  config.input = dict(modality="rgb", offline=False, offline_values="image", window=10, stride=6,
                      train_windows=10, test_windows=20, size=input_lib.SIZE, scales=input_lib.SCALES,
                      short_side=input_lib.SHORT_SIDE, flip=True, symmetries={}, batch_size=32, repeat=5,
                      num_workers=2, cache_decoded=False, convention=AUTO)
  config.model = dict(backbone="resnext50_32x4d", pool_at="stem", pooling="arp", merge="max",
                      dropout_rate=0.5, dtype="float32")
  config.optim = dict(optimizer="sgd", learning_rates=[1e-2] * 2 + [1e-3] * 8, momentum=optim.MOMENTUM,
                      weight_decay=optim.WEIGHT_DECAY, accumulation_steps=4,
                      multipliers={POOLING_LABEL: 0.1})
  config.init_from = ""
  config.eval = dict(aggregate="network", batch_size=32)
  config.log_every = 50
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.max_steps = 0
  return config


# --------------------------------------------------------------------------------------------------------
# get_config(arg)


def arg_items(arg: str | None) -> dict[str, str | None]:
  """The items of a `get_config` argument as text: "dataset=hmdb51,runlocal" -> {"dataset": "hmdb51",
  "runlocal": None} (None: a bare flag); a later item overrides an earlier one."""
  items = {}
  for item in filter(None, (part.strip() for part in (arg or "").split(","))):
    key, has_value, text = (part.strip() for part in item.partition("="))
    items[key] = text if has_value else None
  return items


def _as_bool(text: str, what: str) -> bool:
  if text.lower() not in ("true", "false", "1", "0"):
    raise ValueError(f"{what}={text!r}; expected true or false")
  return text.lower() in ("true", "1")


def parse_arg(arg: str | None, defaults: Mapping[str, object]) -> dict:
  """The argument of a config file's `get_config(arg)`, big_vision style: "dataset=hmdb51,split=2,runlocal".

  Args:
    arg: comma-separated `key=value` items, or bare `key` for a flag (True); None or "" for none.
    defaults: every accepted key with its default; a value is converted to the type of its default (int,
      float, bool: "true"/"false"/"1"/"0", or str).

  Returns:
    `defaults` updated with the items of `arg`.

  Raises:
    ValueError: an unknown key, or a value that does not convert.
  """
  out = dict(defaults)
  for key, text in arg_items(arg).items():
    if key not in defaults:
      raise ValueError(f"unknown config argument {key!r} in {arg!r}; expected some of {sorted(defaults)}")
    default = defaults[key]
    if text is None:
      if not isinstance(default, bool):
        raise ValueError(f"config argument {key!r} needs a value ({key}=...)")
      out[key] = True
    elif isinstance(default, bool):
      out[key] = _as_bool(text, f"config argument {key}")
    else:
      try:
        out[key] = type(default)(text)
      except ValueError:
        raise ValueError(f"config argument {key}={text!r}; expected a value of type "
                         f"{type(default).__name__}") from None
  return out


# --------------------------------------------------------------------------------------------------------
# Validation, once


def _fail(field: str, value, expected: str):
  raise ValueError(f"config.{field} is {value!r}; expected {expected}")


def _get(config, field: str):
  for part in field.split("."):
    config = config[part]
  return config


def symmetries(input_config) -> dict:
  """`input.symmetries` as a plain dict (name -> class map); {} when unset (configs older than the field)."""
  return dict(input_config.get("symmetries") or {})


def _one_of(config, field: str, choices) -> None:
  if _get(config, field) not in choices:
    _fail(field, _get(config, field), f"one of {tuple(choices)}")


def check_config(config) -> None:
  """Raises ValueError naming the first field of `config` that is missing or out of range.

  The one validation of a run's config: what it builds (`arp_jax.builders`) trusts it. The network's
  own fields (backbone, pool_at, pooling, merge) are checked when it is built, before anything is written.
  """
  if not isinstance(config, (ml_collections.ConfigDict, Mapping)):
    raise ValueError(f"config is a {type(config).__name__}; expected an ml_collections.ConfigDict "
                     "(experiments/*.py get_config())")
  missing = [key for key in base_config() if key not in config]
  if missing:
    raise ValueError(f"config lacks {missing}; start from arp_jax.config.base_config()")
  try:
    for field, low in (("input.window", 1), ("input.stride", 1), ("input.train_windows", 1),
                       ("input.test_windows", 1), ("input.size", 1), ("input.batch_size", 1),
                       ("input.repeat", 1), ("input.short_side", 0), ("input.num_workers", 0),
                       ("optim.accumulation_steps", 1), ("eval.batch_size", 1), ("log_every", 1),
                       ("checkpoint_every", 1), ("keep_checkpoints", 1), ("max_steps", 0), ("seed", 0)):
      checks.check_int(_get(config, field), f"config.{field}", low)
    for field in ("input.offline", "input.flip", "input.cache_decoded", "dataset.mini"):
      checks.check_bool(_get(config, field), f"config.{field}")
  except TypeError as error:  # a value of the wrong type is the user's mistake like one out of range
    raise ValueError(str(error)) from None
  _one_of(config, "input.modality", input_lib.MODALITIES)
  try:
    input_lib.check_symmetries(symmetries(config.input))
  except ValueError as error:
    raise ValueError(f"config.input.{error}") from None
  _one_of(config, "input.offline_values", input_lib.OFFLINE_VALUES)
  _one_of(config, "input.convention", (AUTO, *normalization.CONVENTIONS))
  _one_of(config, "eval.aggregate", AGGREGATES)
  if "optimizer" in config.optim:
    _one_of(config, "optim.optimizer", optim.OPTIMIZERS)
  _one_of(config, "model.dtype", tuple(DTYPES))
  unknown = sorted(set(config.model) - set(DynamicImageNetwork.__dataclass_fields__))
  if unknown:
    _fail("model", dict(config.model), f"arguments of DynamicImageNetwork; {unknown} are not")
  if not config.optim.learning_rates:
    _fail("optim.learning_rates", config.optim.learning_rates, "one learning rate per epoch")
  if not isinstance(config.dataset.name, str) or not config.dataset.name:
    _fail("dataset.name", config.dataset.name, "a TFDS name such as 'ucf101_frames/split1'")


# --------------------------------------------------------------------------------------------------------
# Config files and command-line overrides


def load_config_file(path) -> ModuleType:
  """Imports a config file (`experiments/*.py`) by path.

  Raises:
    FileNotFoundError: no such file. ValueError: it has no get_config.
  """
  path = Path(os.fspath(path))
  if not path.is_file():
    raise FileNotFoundError(f"no such config file: {path} (expected a config file such as "
                            "experiments/synthetic_four_stream.py)")
  spec = importlib.util.spec_from_file_location(f"arp_jax_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"{path} has no get_config(arg); expected an ml-collections config file")
  return module


def load(spec: str) -> ml_collections.ConfigDict:
  """The config of `spec`, "FILE.py[:ARG]": the file's `get_config(ARG)` (`get_config()` without ARG).

  Raises:
    FileNotFoundError: no such file. ValueError: a bad ARG (get_config's own error) or no get_config.
  """
  path, has_arg, arg = spec.partition(":")
  module = load_config_file(path)
  config = module.get_config(arg) if has_arg else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    raise ValueError(f"get_config of {path} returned a {type(config).__name__}; expected a ConfigDict")
  return config


def parse_value(text: str, current, what: str):
  """A field's command-line text as a value of the field's type (that of `current`): bool ("true",
  "false", "1", "0"), int, float, str, or a list or tuple as a Python literal.

  Raises:
    ValueError: the text is not a value of that type.
  """
  if isinstance(current, bool):
    return _as_bool(text, what)
  if isinstance(current, (list, tuple)):
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = None
    if not isinstance(value, (list, tuple)):
      raise ValueError(f"{what}={text}: {text!r} is not a list; expected a Python literal such as "
                       "'(0.05, 0.005)'")
    return type(current)(value)
  if isinstance(current, (int, float)):
    try:
      return type(current)(text)
    except ValueError:
      raise ValueError(f"{what}={text}: expected a value of type {type(current).__name__}") from None
  if current is None:
    try:
      return ast.literal_eval(text)
    except (ValueError, SyntaxError):
      return text
  if isinstance(current, str):
    return text
  raise ValueError(f"{what} is a group of fields ({type(current).__name__}); set one of its fields")


def override(config: ml_collections.ConfigDict, field: str, text: str) -> None:
  """Sets `config.<field>` ("model.pool_at") from its command-line text (`parse_value`).

  Raises:
    ValueError: the config has no such field, or the text is not a value of its type.
  """
  what = f"flag --config.{field}"
  node, (*parents, last) = config, field.split(".")
  for part in parents:
    node = node.get(part) if isinstance(node, (ml_collections.ConfigDict, Mapping)) else None
  if not isinstance(node, (ml_collections.ConfigDict, Mapping)) or last not in node:
    raise ValueError(f"{what}: the config has no field {field!r}")
  node[last] = parse_value(text, node[last], what)


def add_arguments(parser: argparse.ArgumentParser, workdir_help: str) -> None:
  """--config FILE[:ARG], --workdir, --distributed, and --config.FIELD=VALUE for every field of
  `base_config()` (a field the config lacks, or an unknown one, is an error)."""
  parser.add_argument("--config", required=True, metavar="FILE[:ARG]",
                      help="config file, e.g. experiments/synthetic_four_stream.py:stream=di")
  parser.add_argument("--workdir", required=True, help=workdir_help)
  parser.add_argument("--distributed", action="store_true",
                      help="call jax.distributed.initialize() first (a run over several hosts)")
  group = parser.add_argument_group(
      "config fields", "--config.FIELD=VALUE overrides a field of the config (arp_jax.config), e.g. "
      "--config.model.pool_at=res3, --config.optim.learning_rates='(0.05, 0.005)'")
  for field in traverse_util.flatten_dict(base_config().to_dict(), sep="."):
    group.add_argument(f"--config.{field}", dest=OVERRIDE + field, metavar="VALUE", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)


def from_args(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """The config of parsed `add_arguments`: --config's, with the --config.FIELD overrides applied.

  Raises:
    FileNotFoundError, ValueError: as `load` and `override`.
  """
  path = args.config.partition(":")[0]
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--config {path}: no such file (expected a config file such as "
                            "experiments/synthetic_four_stream.py)")
  config = load(args.config)
  for dest, text in vars(args).items():
    if dest.startswith(OVERRIDE):
      override(config, dest[len(OVERRIDE):], text)
  return config


def to_dict(config) -> dict:
  """The config as plain JSON-able values (saved beside the run)."""
  def plain(value):
    if isinstance(value, (ml_collections.ConfigDict, Mapping)):
      return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
      return [plain(item) for item in value]
    if isinstance(value, (np.integer, np.floating)):
      return value.item()
    if isinstance(value, float) and not math.isfinite(value):
      return str(value)
    return value
  return plain(config)
