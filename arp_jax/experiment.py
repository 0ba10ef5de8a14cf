"""From an experiment config to the objects of a run: dataset, input pipelines, model, train state.

`arp_jax.train` and `arp_jax.evaluate` build everything through these functions, so that evaluation
rebuilds exactly the model and state that training checkpointed. A config is an `ml_collections`
ConfigDict with the fields of `base_config()`; the files of `experiments/` start from it and change what
their table varies:

  seed                  of the initialisation, the data order and every augmentation draw
  dataset.name          TFDS name: "ucf101_frames/split1", "hmdb51_dynamic_images/split2_rgb_w10s6",
                        "synthetic_motion/default" (generated on the fly when missing)
  dataset.data_dir      TFDS data folder ("": TFDS's default; for the synthetic dataset <workdir>/data,
                        for the miniature <workdir>/mini_data)
  dataset.mini          the miniature UCF101/HMDB51 of real clips (`data_prep.mini`), prepared on first
                        use: what `runlocal` trains on
  dataset.train_split, dataset.test_split
  input.modality        "rgb" or "flow"
  input.offline         read precomputed dynamic images (`*_dynamic_images` datasets) instead of frames
  input.offline_values  "image" (the stored 8-bit images minus the mean, as the paper feeds them) or
                        "restored" (their pooled float values); `make_dynamic_image_dataset`'s `values`
  input.convention      how the pipelines normalise frames, dynamic images and flow for the weights
                        (`arp_jax.normalization`): "auto" (the convention recorded in init_from's
                        checkpoint, `weights.read_convention`; "reference" without init_from), or
                        "reference" (0..255 minus the ImageNet mean), "torchvision" ((x/255-mean)/std),
                        "caffe" (0..255 minus BVLC's mean); one that differs from init_from's record is
                        an error (`input_convention`)
  input.window, .stride tau and s of the windows (1, 1: single frames, the SI and OF streams)
  input.train_windows   windows per video in training (the reference's 10)
  input.test_windows    windows per video at test (20)
  input.size, .scales   network input side, training crop sides (in pixels of frames resized to short_side)
  input.short_side      crops are drawn in frames resized to this short side (the reference's 256), or
                        0: size and scales in stored pixels (the 64-pixel synthetic and miniature frames;
                        an int rather than None so that the command line can set either)
  input.flip            random horizontal flips in training (False when a mirror image changes the class)
  input.batch_size      videos per step over all hosts and devices; an update averages the gradients
                        of optim.accumulation_steps steps (the reference: 4 x 32 = 128 videos)
  input.repeat          passes over the training list per epoch (the reference's 5)
  input.num_workers     Grain worker processes per host
  model.*               `arp_jax.models.DynamicImageNetwork` fields: backbone, pool_at, pooling, merge,
                        dropout_rate; model.dtype "float32" or "bfloat16"
  optim.learning_rates  one per epoch (their count is the number of epochs)
  optim.momentum, .weight_decay, .accumulation_steps
  optim.multipliers     parameter name -> learning-rate multiplier, e.g. {"temporal_pooling": 0.1}
  init_from             "" (from scratch) or a checkpoint of `arp-jax convert` (the backbone's weights)
  eval.aggregate        "network" (the network merges all test windows of a video in one pass) or
                        "mean" (each window scored alone, softmax scores averaged: streams trained on
                        one window or frame at a time)
  eval.batch_size       videos per evaluation step over all hosts
  log_every, checkpoint_every, keep_checkpoints, max_steps (> 0 stops early: smoke runs)
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from arp_jax import input_pipeline, normalization, optim, weights
from arp_jax.models import DynamicImageNetwork
from arp_jax.models.video import POOLING_LABEL, reference_scaling
from arp_jax.train_step import TrainState, create_state

SYNTHETIC = "synthetic_motion"
AGGREGATES = ("network", "mean")
# input.convention: AUTO (init_from's record, else "reference") or a name of normalization.CONVENTIONS.
AUTO = "auto"
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def base_config() -> ml_collections.ConfigDict:
  """The reference's settings (ResNeXt-50 dynamic images on UCF101 split 1); see the module docstring."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.dataset = dict(name="ucf101_frames/split1", data_dir="", train_split="train", test_split="test",
                        mini=False)
  config.input = dict(modality="rgb", offline=False, offline_values="image", window=10, stride=6,
                      train_windows=10, test_windows=20, size=input_pipeline.SIZE,
                      scales=input_pipeline.SCALES, short_side=input_pipeline.SHORT_SIDE, flip=True,
                      batch_size=32, repeat=5, num_workers=2, convention=AUTO)
  config.model = dict(backbone="resnext50_32x4d", pool_at="stem", pooling="arp", merge="max",
                      dropout_rate=0.5, dtype="float32")
  config.optim = dict(learning_rates=[1e-2] * 2 + [1e-3] * 8, momentum=optim.MOMENTUM,
                      weight_decay=optim.WEIGHT_DECAY, accumulation_steps=4,
                      multipliers={POOLING_LABEL: 0.1})
  config.init_from = ""
  config.eval = dict(aggregate="network", batch_size=32)
  config.log_every = 50
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.max_steps = 0
  return config


def arg_items(arg: str | None) -> dict[str, str | None]:
  """The items of a `get_config` argument as text: "dataset=hmdb51,runlocal" -> {"dataset": "hmdb51",
  "runlocal": None} (None: a bare flag); a later item overrides an earlier one."""
  items = {}
  for item in filter(None, (part.strip() for part in (arg or "").split(","))):
    key, has_value, text = (part.strip() for part in item.partition("="))
    items[key] = text if has_value else None
  return items


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
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"config argument {key}={text!r}; expected true or false")
      out[key] = text.lower() in ("true", "1")
    else:
      try:
        out[key] = type(default)(text)
      except ValueError:
        raise ValueError(f"config argument {key}={text!r}; expected a value of type "
                         f"{type(default).__name__}") from None
  return out


def _fail(field: str, value, expected: str):
  raise ValueError(f"config.{field} is {value!r}; expected {expected}")


def _positive_int(config, field: str) -> None:
  value = config
  for part in field.split("."):
    value = value[part]
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    _fail(field, value, "an int >= 1")


def check_config(config) -> None:
  """Raises ValueError naming the first field of `config` that is missing or out of range."""
  if not isinstance(config, (ml_collections.ConfigDict, Mapping)):
    raise ValueError(f"config is a {type(config).__name__}; expected an ml_collections.ConfigDict "
                     "(experiments/*.py get_config())")
  missing = [key for key in base_config() if key not in config]
  if missing:
    raise ValueError(f"config lacks {missing}; start from arp_jax.experiment.base_config()")
  for field in ("input.window", "input.stride", "input.train_windows", "input.test_windows", "input.size",
                "input.batch_size", "input.repeat", "optim.accumulation_steps", "eval.batch_size",
                "log_every", "checkpoint_every", "keep_checkpoints"):
    _positive_int(config, field)
  if config.input.modality not in input_pipeline.MODALITIES:
    _fail("input.modality", config.input.modality, f"one of {input_pipeline.MODALITIES}")
  short_side = config.input.short_side
  if isinstance(short_side, bool) or not isinstance(short_side, int) or short_side < 0:
    _fail("input.short_side", short_side, "an int >= 1 (the reference's 256) or 0 (stored pixels)")
  if config.input.offline_values not in input_pipeline.OFFLINE_VALUES:
    _fail("input.offline_values", config.input.offline_values, f"one of {input_pipeline.OFFLINE_VALUES}")
  if config.input.convention not in (AUTO, *normalization.CONVENTIONS):
    _fail("input.convention", config.input.convention, f"one of {(AUTO, *normalization.CONVENTIONS)}")
  if config.eval.aggregate not in AGGREGATES:
    _fail("eval.aggregate", config.eval.aggregate, f"one of {AGGREGATES}")
  if config.model.dtype not in DTYPES:
    _fail("model.dtype", config.model.dtype, f"one of {tuple(DTYPES)}")
  if not config.optim.learning_rates:
    _fail("optim.learning_rates", config.optim.learning_rates, "one learning rate per epoch")
  if isinstance(config.max_steps, bool) or not isinstance(config.max_steps, int) or config.max_steps < 0:
    _fail("max_steps", config.max_steps, "an int >= 0 (0: train every epoch)")
  if not isinstance(config.dataset.name, str) or not config.dataset.name:
    _fail("dataset.name", config.dataset.name, "a TFDS name such as 'ucf101_frames/split1'")


# --------------------------------------------------------------------------------------------------------
# Data


def data_dir(config, workdir) -> str | None:
  """The TFDS data folder of the run: config.dataset.data_dir, else <workdir>/data for the generated
  dataset and <workdir>/mini_data for the miniature one, else None (TFDS's default,
  ~/tensorflow_datasets)."""
  if config.dataset.data_dir:
    return os.path.expanduser(config.dataset.data_dir)
  if config.dataset.name.split("/")[0] == SYNTHETIC:
    return os.fspath(Path(workdir) / "data")
  if config.dataset.mini:
    return os.fspath(Path(workdir) / "mini_data")
  return None


def ensure_dataset(config, workdir) -> None:
  """Generates the synthetic dataset, or prepares the miniature one (`dataset.mini`), when the config
  names it and it is not built yet. Other datasets are prepared by `python -m data_prep.build`; a missing
  one fails when read, naming the folder."""
  name = config.dataset.name.split("/")
  if name[0] == SYNTHETIC:
    from data_prep import synthetic  # pylint: disable=import-outside-toplevel (registers the builder)
    synthetic.build(data_dir(config, workdir), name[1] if len(name) > 1 else None)
  elif config.dataset.mini:
    from data_prep import mini  # pylint: disable=import-outside-toplevel
    dataset, kind = name[0].split("_", 1)  # "ucf101", "frames" or "dynamic_images"
    dynamic = (name[1].split("_", 1)[1],) if kind == "dynamic_images" else ()  # "split1_rgb_w10s6"
    mini.build_mini(dataset, data_dir(config, workdir), dynamic)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a run needs to know of its dataset."""
  num_classes: int
  class_names: tuple[str, ...]
  num_train: int
  num_test: int


def dataset_info(config, workdir) -> DatasetInfo:
  """The classes and split sizes of the config's dataset.

  Raises:
    FileNotFoundError: the dataset is not prepared under the data folder.
  """
  # Registers the UCF101/HMDB51 builders.
  import data_prep.datasets  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

  builder = input_pipeline.prepared_builder(config.dataset.name, data_dir(config, workdir))
  splits = builder.info.splits
  for field in ("train_split", "test_split"):
    if config.dataset[field] not in splits:
      _fail(f"dataset.{field}", config.dataset[field], f"a split of {config.dataset.name}: {sorted(splits)}")
  label = builder.info.features["label"]
  return DatasetInfo(num_classes=label.num_classes, class_names=tuple(label.names),
                     num_train=splits[config.dataset.train_split].num_examples,
                     num_test=splits[config.dataset.test_split].num_examples)


def source(config, workdir, train: bool):
  """The random-access source of the training or test split (JPEGs left as bytes)."""
  split = config.dataset.train_split if train else config.dataset.test_split
  return input_pipeline.data_source(config.dataset.name, split, data_dir(config, workdir))


def _as_frames(batch: dict) -> dict:
  """The dynamic-image pipeline's `images` under the key the train step reads (`frames`)."""
  batch = dict(batch)
  batch["frames"] = batch.pop("images")
  return batch


def local_batch_size(global_size: int, what: str) -> int:
  """This host's share of a global batch; ValueError when it does not split over the devices."""
  if global_size % jax.device_count():
    raise ValueError(f"{what} is {global_size}; expected a multiple of the {jax.device_count()} devices")
  return global_size // jax.process_count()


def input_convention(config) -> normalization.Convention:
  """How the run's pipelines normalise their input: the convention of the weights it starts from.

  input.convention "auto": the convention recorded in init_from's checkpoint (`weights.read_convention`:
  "torchvision" or "caffe" for converted ImageNet weights, with the flow variant of a flow network;
  "reference" for a checkpoint without a record), or "reference" when training from scratch. A name: that
  convention for input.modality; with init_from it must be the checkpoint's, since weights fed another
  input see another scale (the torchvision one is about 1/57 of the others).

  Raises:
    ValueError: a name other than init_from's record, init_from's weights for the other modality, or
      CaffeNet's ARP input scaling (L2 to 6000, clip 128: sizes for 0..255 inputs) under a convention
      that divides (torchvision's).
    FileNotFoundError: init_from is not a checkpoint (with "auto" evaluation reads its record too).
  """
  c = config.input
  if config.init_from:
    recorded = weights.read_convention(os.path.expanduser(config.init_from))
    if c.convention not in (AUTO, recorded.name):
      raise ValueError(f"config.input.convention is {c.convention!r}, but init_from's weights expect "
                       f"{recorded.name!r} ({config.init_from}); use 'auto' or {recorded.name!r}")
    if recorded.modality != c.modality:
      raise ValueError(f"init_from's weights take {recorded.modality} input ({config.init_from}), "
                       f"config.input.modality is {c.modality!r}; convert them with --in-channels "
                       f"{input_pipeline.CHANNELS[c.modality]}")
    convention = recorded
  else:
    convention = normalization.convention("reference" if c.convention == AUTO else c.convention,
                                          c.modality)
  window = 1 if c.offline else c.window
  scaling = reference_scaling("caffenet" if config.model.backbone == "caffenet" else "resnext",
                              0 if config.model.pool_at == "conv1" else 1, config.model.pooling, window)
  if scaling == "l2_6000_clip_128" and np.any(convention.gain != 1):
    raise ValueError(f"CaffeNet's dynamic image at conv1 is scaled to L2 norm 6000 and clipped to 128, "
                     f"sizes for 0..255 input; config.input.convention {convention.name!r} divides it "
                     "(use 'reference' or 'caffe')")
  return convention


def dataset(config, workdir, train: bool, num_epochs: int | None = None):
  """This host's input pipeline (a `grain.IterDataset` of batches with `frames`, `length`, `label`, and
  at test `index`, `valid`): frames and windows, or precomputed dynamic images (`input.offline`),
  normalised as `input_convention(config)` says."""
  c = config.input
  batch_size = local_batch_size(c.batch_size if train else config.eval.batch_size,
                                "input.batch_size" if train else "eval.batch_size")
  common = dict(source=source(config, workdir, train), train=train, modality=c.modality,
                max_windows=c.train_windows if train else c.test_windows, size=c.size,
                batch_size=batch_size, seed=config.seed, num_epochs=num_epochs if train else 1,
                shard_index=jax.process_index(), shard_count=jax.process_count(), scales=tuple(c.scales),
                short_side=c.short_side or None, flip=c.flip, num_workers=c.num_workers,
                convention=input_convention(config))
  if c.offline:
    return input_pipeline.make_dynamic_image_dataset(values=c.offline_values, **common).map(_as_frames)
  return input_pipeline.make_dataset(window=c.window, stride=c.stride, **common)


# --------------------------------------------------------------------------------------------------------
# Model and state


def model(config, num_classes: int) -> DynamicImageNetwork:
  """The stream's network. The pipeline emits the sampled windows back to back, so the model pools
  windows of tau frames with stride tau from frame 0; precomputed dynamic images are windows of 1."""
  c = config.model
  window = 1 if config.input.offline else config.input.window
  return DynamicImageNetwork(
      backbone=c.backbone, num_classes=num_classes,
      in_channels=input_pipeline.CHANNELS[config.input.modality],
      window=window, stride=window, start=0, tail="pad", pool_at=c.pool_at, pooling=c.pooling,
      merge=c.merge, dropout_rate=c.dropout_rate, dtype=DTYPES[c.dtype])


def _pretrained(variables: dict, directory) -> dict:
  """`variables` with the backbone's arrays replaced by those of an `arp-jax convert` checkpoint.

  A classifier of another size (ImageNet's 1000 classes) keeps its fresh initialisation: the paper's new
  classifier. Any other missing or differently shaped array is an error: the checkpoint is for another
  backbone or input (convert flow networks with --in-channels 2).
  """
  loaded = {key: traverse_util.flatten_dict(value) for key, value in weights.load(directory).items()}
  out = {}
  for collection, tree in variables.items():
    flat = traverse_util.flatten_dict(tree)
    for path, value in flat.items():
      if path[0] != "backbone":
        continue  # pooling parameters are new
      key = path[1:]
      found = loaded.get(collection, {}).get(key)
      if found is None or found.shape != value.shape:
        if key[0] == "fc":
          continue
        shape = None if found is None else found.shape
        raise ValueError(f"{directory}: {collection}/{'/'.join(key)} is {shape}, the model needs "
                         f"{value.shape}; convert the weights for this backbone and input "
                         "(arp-jax convert --arch ... --in-channels ...)")
      flat[path] = jnp.asarray(found, value.dtype)
    out[collection] = traverse_util.unflatten_dict(flat)
  return out


def initial_variables(config, network: DynamicImageNetwork, pretrained: bool = True) -> dict:
  """{"params", "batch_stats"} of `network`: initialised from config.seed, then overwritten by the
  pretrained backbone of config.init_from when given (and `pretrained`)."""
  c = config.input
  frames = 1 if c.offline else c.window
  shape = (1, frames, c.size, c.size, input_pipeline.CHANNELS[c.modality])
  # rbg keys: the initialisers compile twice as fast as with threefry (3 s against 7 s for a small
  # ResNeXt on XLA:CPU); the values differ from threefry's but are as reproducible for a seed.
  key = jax.random.key(config.seed, impl="rbg")
  variables = jax.jit(lambda k: network.init(k, jnp.zeros(shape, jnp.float32)))(key)
  variables = dict(variables)
  if config.init_from and pretrained:
    variables = _pretrained(variables, os.path.expanduser(config.init_from))
  return variables


def steps_per_epoch(config, num_train: int) -> int:
  """Updates per epoch: `repeat` passes over the training videos in batches of input.batch_size videos
  times optim.accumulation_steps sub-batches."""
  videos = config.input.batch_size * config.optim.accumulation_steps
  steps = num_train * config.input.repeat // videos
  if steps < 1:
    raise ValueError(f"{num_train} training videos x repeat {config.input.repeat} make no batch of "
                     f"{videos} videos; lower input.batch_size or optim.accumulation_steps")
  return steps


def train_state(config, network: DynamicImageNetwork, num_train: int) -> tuple[TrainState, callable]:
  """(initial TrainState, learning-rate schedule of the update count) for `network` and `config`."""
  c = config.optim
  schedule = optim.epoch_schedule(list(c.learning_rates), steps_per_epoch(config, num_train))
  variables = initial_variables(config, network)
  rules = {name: value for name, value in dict(c.multipliers).items()
           if any(name in path for path in traverse_util.flatten_dict(variables["params"]))}
  multipliers = optim.lr_multipliers(variables["params"], rules) if rules else None
  tx = optim.sgd(schedule, momentum=c.momentum, weight_decay=c.weight_decay, multipliers=multipliers,
                 accumulation_steps=c.accumulation_steps)
  return create_state(network, tx, variables), schedule


def total_steps(config, num_train: int) -> int:
  """Train steps (sub-batches) of the whole run: epochs x updates per epoch x accumulation, or
  config.max_steps when smaller."""
  steps = (len(config.optim.learning_rates) * steps_per_epoch(config, num_train)
           * config.optim.accumulation_steps)
  return min(steps, config.max_steps) if config.max_steps else steps


def epoch_of(config, step: int, num_train: int) -> float:
  """The (fractional) epoch reached after `step` train steps."""
  return step / (steps_per_epoch(config, num_train) * config.optim.accumulation_steps)


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


# --------------------------------------------------------------------------------------------------------
# The run's config (<workdir>/config.json)

RUN_CONFIG_FILE = "config.json"
# Fields that do not change what a run computes: where things are (init_from's folder is compared only as
# set or not), how often it logs and saves, how it reads, how far it goes now.
_NOT_RESULT = ("dataset.data_dir", "input.num_workers", "eval.batch_size", "log_every", "checkpoint_every",
               "keep_checkpoints", "max_steps")
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
