"""The two Grain pipelines, composed: source -> this host's share -> shuffle -> per-video transform -> batch.

Randomness: every random choice of a video (which windows, which crops, which flips) comes from the
`np.random.Generator` that Grain's `random_map` derives from the seed and the element's position, so a
seed gives the same batches whatever the number of threads or worker processes, and every epoch is
shuffled and augmented differently.

Workers: `num_workers > 0` runs the per-video work in that many processes (`IterDataset.mp_prefetch`);
each process reads its own share of whole batches (batching is a `MapDataset` step, so which videos form
a batch does not depend on the number of workers). The source must then be picklable (`data_source`'s
is). Threads within a process: `read_options` (default two threads, two batches ahead, to bound memory:
a training batch holds batch_size x S_max x tau float32 images of size x size).

Resuming: the iterator of a pipeline (`iter(ds)`) is a Grain `DatasetIterator` whose small JSON-able state
(`get_state()`: the next position, one per worker with workers, so restore with the same `num_workers`)
continues exactly the batches that would have followed. `arp_jax.checkpoint` saves it beside the model
with Grain's Orbax handler (`grain.checkpoint.CheckpointSave`), one `process_<i>-of-<n>.json` per host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from absl import flags as absl_flags
import grain
import numpy as np

from arp_jax import checks
from arp_jax.input.sampling import SCALES, SHORT_SIDE
from arp_jax.input.transforms import DynamicImageTransform, Stack, VideoTransform, WithIndex, as_padding
from arp_jax.normalization import Convention


def _seed(seed: int, *salt: int) -> int:
  """A uint32 seed for one random step of one host, hashed so steps and hosts do not share streams."""
  return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


def _check_reading(source, *, train: bool, batch_size: int, seed: int, num_epochs: int | None,
                   shard_index: int, shard_count: int, drop_remainder: bool, num_workers: int,
                   read_options: grain.ReadOptions | None) -> dict:
  """The arguments of how the source is read and batched, validated (the transform checks its own)."""
  checks.check_int(shard_count, "shard_count")
  if checks.check_int(shard_index, "shard_index", 0) >= shard_count:
    raise ValueError(f"shard_index is {shard_index}; expected 0..{shard_count - 1} (shard_count "
                     f"{shard_count}, e.g. jax.process_index() of jax.process_count())")
  if num_epochs is not None:
    num_epochs = checks.check_int(num_epochs, "num_epochs")
    if not train and num_epochs != 1:
      raise ValueError(f"num_epochs is {num_epochs} in eval mode; expected None or 1 (one pass)")
  if read_options is not None and not isinstance(read_options, grain.ReadOptions):
    raise ValueError(f"read_options is a {type(read_options).__name__}; expected grain.ReadOptions or None")
  if not hasattr(source, "__getitem__") or not hasattr(source, "__len__") or len(source) == 0:
    raise ValueError(f"source is {source!r}; expected a non-empty random-access source "
                     "(data_source(...), tfds.data_source(...)[split], or a list of examples)")
  return dict(batch_size=checks.check_int(batch_size, "batch_size"), seed=checks.check_int(seed, "seed", 0),
              num_epochs=num_epochs, shard_index=int(shard_index), shard_count=int(shard_count),
              drop_remainder=checks.check_bool(drop_remainder, "drop_remainder"),
              num_workers=checks.check_int(num_workers, "num_workers", 0), read_options=read_options)


def _pipeline(source, transform, *, batch_size: int, seed: int, num_epochs: int | None, shard_index: int,
              shard_count: int, drop_remainder: bool, num_workers: int,
              read_options: grain.ReadOptions | None) -> grain.IterDataset:
  """source -> (index, example) -> this host's share -> [shuffle, repeat] -> transform -> batches."""
  train = transform.train
  length = len(source)
  ds = grain.MapDataset.source(source).map_with_index(WithIndex(length))
  # Each host reads every shard_count-th video; the hosts' shares are disjoint and cover the source.
  ds = ds.slice(slice(shard_index, None, shard_count))
  if train:
    if len(ds) == 0:
      raise ValueError(f"host {shard_index} of {shard_count} has no video: the source has only {length}")
    # shuffle before repeat: each epoch is a new permutation (Grain folds the epoch into the seed), and
    # no video comes twice before every other came once.
    ds = ds.shuffle(seed=_seed(seed, shard_index, 0)).repeat(num_epochs)
  else:
    # Every host gets ceil(length / shard_count) videos, so all hosts run the same number of evaluation
    # steps: a host one short gets the source's first video again, marked invalid.
    missing = -(-length // shard_count) - len(ds)  # 0 or 1
    if missing:
      padding = grain.MapDataset.source(source).map_with_index(WithIndex(length))
      padding = padding.slice(slice(0, missing)).map(as_padding)
      ds = grain.MapDataset.concatenate([ds, padding]) if len(ds) else padding
  ds = ds.random_map(transform, seed=_seed(seed, shard_index, 1))
  ds = ds.batch(batch_size, drop_remainder=train and drop_remainder, batch_fn=Stack(batch_size, not train))
  out = ds.to_iter_dataset(read_options or grain.ReadOptions(num_threads=2, prefetch_buffer_size=2))
  if num_workers:
    # Grain 0.2.18's workers read an absl flag, which raises in a script that never parsed flags
    # (google/grain#1355, fixed upstream by #1362): the defaults are what such a script means.
    if not absl_flags.FLAGS.is_parsed():
      absl_flags.FLAGS.mark_as_parsed()
    out = out.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return out


def make_dataset(source, *, train: bool, modality: str, window: int, stride: int, max_windows: int,
                 size: int, batch_size: int, seed: int, num_epochs: int | None, shard_index: int = 0,
                 shard_count: int = 1, drop_remainder: bool = True, scales: Sequence[int] = SCALES,
                 flip: bool = True, num_workers: int = 0, read_options: grain.ReadOptions | None = None,
                 short_side: int | None = SHORT_SIDE, convention: str | Convention = "reference",
                 symmetries: Mapping[str, Sequence[int]] | None = None) -> grain.IterDataset:
  """The frames (or flow) pipeline: the reference's window sampling, decoding, augmentation, batching.

  Args:
    source: a random-access source of frames-dataset examples (`data_source(...)`, the cheap path, or
      `tfds.data_source(...)[split]`).
    train: training (shuffled, repeated, random windows, crops and flips) or evaluation (in order, one
      pass, centre crops, the last batch padded).
    modality: "rgb" (C = 3) or "flow" (C = 2).
    window, stride: tau and s of the windows (1, 1: single frames, the SI and OF streams).
    max_windows: S_max (the reference: 10 in training, 20 at test).
    size: the network's input side (224).
    batch_size: videos per batch (per host).
    seed: of the shuffles and of every random choice; same seed, same batches.
    num_epochs: passes over the data in training (None: forever); None or 1 in eval.
    shard_index, shard_count: this host's share of the source (jax.process_index(), jax.process_count()).
    drop_remainder: training only: drop a short last batch (with finite epochs); eval always pads.
    scales: the training crop sides, in pixels of the frames resized to `short_side`.
    flip: random horizontal flips in training (False when a mirror image changes the class).
    num_workers: worker processes (0: all in this process); see the module docstring.
    read_options: threads and prefetching within a process (default 2 threads, 2 batches ahead).
    short_side: crops are drawn in frames resized to this short side (the reference's 256; the resize is
      folded into the crop's, see `crop_params`), or None: `scales` and `size` in stored pixels.
    convention: the input convention of the network's weights (`arp_jax.normalization`): a name of
      `normalization.CONVENTIONS` ("reference", the default: 0..255 minus the ImageNet mean, flow minus
      128; "torchvision"; "caffe") or a `Convention` of the modality (`weights.read_convention`, which
      knows a flow network's flow_init).
    symmetries: class-mapping transforms of whole training videos (`arp_jax.input.symmetries`): name
      ("hflip", "vflip", "transpose") -> the class each class becomes, each applied with probability 1/2
      per video, for classes that a mirror changes (with `flip` False); None or {} for none.

  Returns:
    A `grain.IterDataset` of dicts: `frames float32 [B, max_windows, window, size, size, C]` (the kept
    windows in temporal order), `windows int32 [B]` (the real ones; the slots past them repeat the last),
    `label int32 [B]`, and in eval `index int32 [B]`, `name uint8 [B, NAME_BYTES]` (`decode_names`),
    `valid bool [B]`. Iterate it (`iter(ds)`) for a checkpointable iterator.

  Raises:
    TypeError: a count or flag has the wrong type.
    ValueError: an argument is out of range (see the messages), or the source is empty.
  """
  transform = VideoTransform(train=train, modality=modality, window=window, stride=stride,
                             max_windows=max_windows, size=size, scales=scales, flip=flip,
                             short_side=short_side, convention=convention, symmetries=symmetries)
  return _pipeline(source, transform, **_check_reading(
      source, train=train, batch_size=batch_size, seed=seed, num_epochs=num_epochs, shard_index=shard_index,
      shard_count=shard_count, drop_remainder=drop_remainder, num_workers=num_workers,
      read_options=read_options))


def make_dynamic_image_dataset(source, *, train: bool, modality: str, max_windows: int, size: int,
                               batch_size: int, seed: int, num_epochs: int | None, shard_index: int = 0,
                               shard_count: int = 1, drop_remainder: bool = True,
                               scales: Sequence[int] = SCALES, flip: bool = True, num_workers: int = 0,
                               read_options: grain.ReadOptions | None = None, values: str = "image",
                               short_side: int | None = SHORT_SIDE,
                               convention: str | Convention = "reference",
                               symmetries: Mapping[str, Sequence[int]] | None = None) -> grain.IterDataset:
  """The precomputed dynamic images pipeline (the paper's offline path).

  Reads `*_dynamic_images` examples (one image per window, or one per video; dynamic images or the other
  summary images of Table 1), keeps windows as the reference does (training: all up to `max_windows`,
  else a random min(max_windows, ceil(n / 2)); test: at most `max_windows`), and crops and flips each
  image as `crop_params` draws (flow: a flip negates u, see `DynamicImageTransform`). Arguments as
  `make_dataset` (`convention` and `symmetries` included), and `values`:
    "image" (the paper: dynamic images are "scaled into [0, 255] range again" and "fed into a CNN as
      input"): the stored 8-bit image normalised exactly as a frame (by default RGB minus `RGB_MEAN`,
      flow codes minus 128);
    "restored": the pooled values themselves (`decode_dynamic_images`), e.g. for a network that scales
      its input itself, times the convention's gain (1 by default; the offset cancels in ARP's zero-sum
      weights, so these are the dynamic images of normalised frames).

  Returns:
    A `grain.IterDataset` of dicts in `make_dataset`'s layout with windows of one image (tau = 1):
    `frames float32 [B, max_windows, 1, size, size, C]`, `windows int32 [B]` real images, `label int32
    [B]`, and in eval `index`, `name`, `valid`.

  Raises:
    TypeError, ValueError: as `make_dataset`; ValueError for `values` not in `OFFLINE_VALUES`.
  """
  transform = DynamicImageTransform(train=train, modality=modality, max_windows=max_windows, size=size,
                                    scales=scales, flip=flip, values=values, short_side=short_side,
                                    convention=convention, symmetries=symmetries)
  return _pipeline(source, transform, **_check_reading(
      source, train=train, batch_size=batch_size, seed=seed, num_epochs=num_epochs, shard_index=shard_index,
      shard_count=shard_count, drop_remainder=drop_remainder, num_workers=num_workers,
      read_options=read_options))
