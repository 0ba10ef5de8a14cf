"""From a config's sections to the objects of a run, one builder per object.

    info = dataset_info(config, workdir)
    network = model(config.model, info.num_classes, CHANNELS[config.input.modality])
    tx, schedule = optimizer(config.optim, steps_per_epoch(config, info.num_train), variables["params"])
    batches = input_pipeline(config.input, source(config, workdir, train=True), train=True, ...)

`arp_jax.train` and `arp_jax.evaluate` build everything here, so that evaluation rebuilds exactly the
model and state that training checkpointed. The config was validated once (`arp_jax.config.check_config`);
these trust it. Datasets are prepared beforehand (`arp-jax build`, `arp-jax synthetic-data`,
`arp-jax mini-data`); a missing one is an error naming its folder and the command that prepares it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from arp_jax import input as input_lib
from arp_jax.input import memory as input_memory
from arp_jax import normalization, optim, weights
from arp_jax.config import AUTO, SYNTHETIC, symmetries
from arp_jax.models.video import DynamicImageNetwork, depth_of, reference_scaling
from arp_jax.train_step import TrainState, create_state

# --------------------------------------------------------------------------------------------------------
# Data


def data_dir(config, workdir) -> str | None:
  """The TFDS data folder of the run: config.dataset.data_dir, else <workdir>/data for the synthetic
  dataset and <workdir>/mini_data for the miniature one, else None (TFDS's default,
  ~/tensorflow_datasets)."""
  if config.dataset.data_dir:
    return os.path.expanduser(config.dataset.data_dir)
  if config.dataset.name.split("/")[0] == SYNTHETIC:
    return os.fspath(Path(workdir) / "data")
  if config.dataset.mini:
    return os.fspath(Path(workdir) / "mini_data")
  return None


class Preparation(NamedTuple):
  """Which `arp-jax` tool prepares a config's dataset, and for what.

  tool: "synthetic-data", "mini-data" or "build".
  dataset: the synthetic benchmark's variant ("default", "tiny"), or "ucf101" / "hmdb51".
  dynamic_images: what `--dynamic-images` names ("rgb_w10s6"), or "" for frames and flow.
  """
  tool: str
  dataset: str
  dynamic_images: str = ""


def preparation(config) -> Preparation:
  """How the config's dataset is prepared, read from its name ("ucf101_dynamic_images/split1_rgb_w10s6",
  "synthetic_motion/default:3.0.0": a pinned version is the installed code's, which the tools build)."""
  name = config.dataset.name.partition(":")[0].split("/")
  if name[0] == SYNTHETIC:
    return Preparation("synthetic-data", name[1] if len(name) > 1 else "default")
  dataset, _, kind = name[0].partition("_")  # "ucf101", "frames" or "dynamic_images"
  # "split1_rgb_w10s6" -> "rgb_w10s6"
  dynamic = name[1].split("_", 1)[1] if kind == "dynamic_images" and len(name) > 1 else ""
  return Preparation("mini-data" if config.dataset.mini else "build", dataset, dynamic)


def prepare_command(config, folder: str | None) -> str:
  """The command line that prepares the config's dataset in `folder` (`preparation`)."""
  tool, dataset, dynamic = preparation(config)
  folder = folder or "~/tensorflow_datasets"
  if tool == "synthetic-data":
    variant = f" --variant {dataset}" if dataset != "default" else ""
    return f"arp-jax synthetic-data --data-dir {folder}{variant}"
  if tool == "mini-data":
    return f"arp-jax mini-data --dataset {dataset} --data-dir {folder}" + \
        (f" --dynamic-images {dynamic}" if dynamic else "")
  return f"arp-jax build --dataset {dataset} --data_dir {folder} ... (README: Preparing UCF101 and HMDB51)"


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
    FileNotFoundError: the dataset is not prepared under the data folder (naming the command that
      prepares it).
    ValueError: config.dataset's splits are not the dataset's.
  """
  folder = data_dir(config, workdir)
  try:
    builder = input_lib.prepared_builder(config.dataset.name, folder)
  except FileNotFoundError as error:
    reason = str(error).split(";", 1)[0]
    raise FileNotFoundError(f"{reason}; prepare it with `{prepare_command(config, folder)}`") from None
  splits = builder.info.splits
  for field in ("train_split", "test_split"):
    if config.dataset[field] not in splits:
      raise ValueError(f"config.dataset.{field} is {config.dataset[field]!r}; expected a split of "
                       f"{config.dataset.name}: {sorted(splits)}")
  label = builder.info.features["label"]
  return DatasetInfo(num_classes=label.num_classes, class_names=tuple(label.names),
                     num_train=splits[config.dataset.train_split].num_examples,
                     num_test=splits[config.dataset.test_split].num_examples)


def source(config, workdir, train: bool):
  """The random-access source of the training or test split (JPEGs left as bytes), or in training with
  `input.cache_decoded` a `DecodedSource` of it.

  Raises:
    ValueError: cache_decoded, and this host's share of the training split would take more than half its
      memory decoded.
  """
  c = config.input
  split = config.dataset.train_split if train else config.dataset.test_split
  out = input_lib.data_source(config.dataset.name, split, data_dir(config, workdir))
  if not (train and c.cache_decoded):
    return out
  keys = (input_lib.DYNAMIC_IMAGE_KEYS if c.offline else input_lib.FRAME_KEYS)[c.modality]
  out = input_lib.DecodedSource(out, keys)
  needed = out.estimated_bytes(-(-len(out) // jax.process_count()))
  memory = input_memory.physical_memory_bytes()
  if needed > memory // 2:
    raise ValueError(f"config.input.cache_decoded is True, but this host's share of the training split "
                     f"decodes to about {needed / 2**30:.2f} GiB, more than half of its {memory / 2**30:.2f} "
                     "GiB of memory; expected False for a dataset this large")
  return out


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
                       f"{input_lib.CHANNELS[c.modality]}")
    convention = recorded
  else:
    convention = normalization.convention("reference" if c.convention == AUTO else c.convention,
                                          c.modality)
  m = config.model
  scaling = reference_scaling(m.backbone, depth_of(m.backbone, m.pool_at), m.pooling, window_length(c))
  if scaling == "l2_6000_clip_128" and np.any(convention.gain != 1):
    raise ValueError(f"CaffeNet's dynamic image at conv1 is scaled to L2 norm 6000 and clipped to 128, "
                     f"sizes for 0..255 input; config.input.convention {convention.name!r} divides it "
                     "(use 'reference' or 'caffe')")
  return convention


def window_length(input_config) -> int:
  """tau of the batches: 1 for precomputed dynamic images (a window each), else input.window."""
  return 1 if input_config.offline else input_config.window


def check_symmetries(input_config, num_classes: int) -> None:
  """ValueError unless `input.symmetries`' class maps cover the dataset's `num_classes` classes (found
  before training, rather than at the first video of a class they miss)."""
  maps = input_lib.check_symmetries(symmetries(input_config))
  if maps and len(maps[0][1]) != num_classes:
    raise ValueError(f"config.input.symmetries map {len(maps[0][1])} classes; the dataset has {num_classes}: "
                     "expected a map of every class")


def input_pipeline(input_config, data_source, *, train: bool, batch_size: int, seed: int,
                   convention: normalization.Convention, num_epochs: int | None = None):
  """This host's input pipeline over `data_source`: a `grain.IterDataset` of batches with `frames`
  [B, S_max, tau, size, size, C], `windows` [B], `label`, and at test `index`, `name`, `valid`: frames and
  windows (`make_dataset`), or precomputed dynamic images (`input.offline`, tau = 1).

  Args:
    input_config: config.input.
    batch_size: this host's videos per batch (`local_batch_size`).
    num_epochs: training only (None: forever); evaluation makes one pass.
  """
  c = input_config
  common = dict(train=train, modality=c.modality, max_windows=c.train_windows if train else c.test_windows,
                size=c.size, batch_size=batch_size, seed=seed, num_epochs=num_epochs if train else 1,
                shard_index=jax.process_index(), shard_count=jax.process_count(), scales=tuple(c.scales),
                short_side=c.short_side or None, flip=c.flip, num_workers=c.num_workers,
                convention=convention, symmetries=symmetries(c))
  if c.offline:
    return input_lib.make_dynamic_image_dataset(data_source, values=c.offline_values, **common)
  return input_lib.make_dataset(data_source, window=c.window, stride=c.stride, **common)


# --------------------------------------------------------------------------------------------------------
# Model and state


def model(model_config, num_classes: int, in_channels: int) -> DynamicImageNetwork:
  """The stream's network: `DynamicImageNetwork(**config.model, ...)` (it validates its fields here).

  The batches bring their windows ([B, S, tau, ...] with the count), so the network's own window fields
  (for clip input) stay at their defaults.
  """
  return DynamicImageNetwork(**model_config, num_classes=num_classes, in_channels=in_channels)


def pretrained(variables: dict, directory) -> dict:
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


def initial_variables(config, network: DynamicImageNetwork, use_pretrained: bool = True) -> dict:
  """{"params", "batch_stats"} of `network`: initialised from config.seed, then overwritten by the
  pretrained backbone of config.init_from when given (and `use_pretrained`)."""
  c = config.input
  # One video of one window, in the pipelines' layout [B, S, tau, H, W, C].
  shape = (1, 1, window_length(c), c.size, c.size, input_lib.CHANNELS[c.modality])
  # rbg keys: the initialisers compile about twice as fast as with threefry on XLA:CPU; the values
  # differ from threefry's but are as reproducible for a seed.
  key = jax.random.key(config.seed, impl="rbg")
  variables = dict(jax.jit(lambda k: network.init(k, jnp.zeros(shape, jnp.float32)))(key))
  if config.init_from and use_pretrained:
    variables = pretrained(variables, os.path.expanduser(config.init_from))
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


def optimizer(optim_config, updates_per_epoch: int, params):
  """(optax transformation, learning-rate schedule of the update count) of config.optim for `params`:
  the reference's SGD (or AdamW, `optim.optimizer`), a learning rate per epoch, multipliers on the
  parameters they name (rules that name no parameter of this network are dropped: e.g. the pooling
  multiplier of a network without parametric pooling)."""
  c = optim_config
  schedule = optim.epoch_schedule(list(c.learning_rates), updates_per_epoch)
  paths = traverse_util.flatten_dict(params)
  rules = {name: value for name, value in dict(c.multipliers).items()
           if any(name in path for path in paths)}
  multipliers = optim.lr_multipliers(params, rules) if rules else None
  common = dict(weight_decay=c.weight_decay, multipliers=multipliers, accumulation_steps=c.accumulation_steps)
  if c.get("optimizer", "sgd") == "adamw":  # configs written before the field trained with SGD
    return optim.adamw(schedule, **common), schedule
  return optim.sgd(schedule, momentum=c.momentum, **common), schedule


def train_state(config, network: DynamicImageNetwork, num_train: int) -> tuple[TrainState, callable]:
  """(initial TrainState, learning-rate schedule of the update count) for `network` and `config`."""
  variables = initial_variables(config, network)
  tx, schedule = optimizer(config.optim, steps_per_epoch(config, num_train), variables["params"])
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
