"""Training and evaluation input: the reference's window sampling and augmentation as a Grain pipeline.

Two pipelines read the TFDS datasets of `data_prep` with random access (array_record, no TensorFlow):

    source = data_source("ucf101_frames/split1", "train", data_dir=DATA_DIR)  # JPEGs left undecoded
    ds = make_dataset(source, train=True, modality="rgb", window=10, stride=6, max_windows=10, size=224,
                      batch_size=32, seed=0, num_epochs=None, shard_index=jax.process_index(),
                      shard_count=jax.process_count())
    for batch in ds:  # frames [B, S_max * tau, 224, 224, 3] float32, length [B], label [B]
      logits = model.apply(variables, batch["frames"], lengths=batch["length"])

`make_dataset` (the end-to-end path, frames or flow) does the reference's window SAMPLING here and emits
the frames of the kept windows back to back, so the model pools them with window=tau, stride=tau,
start=0: per video `frames float32 [S_max * tau, size, size, C]`, `length` = S * tau real frames (the
windows past it repeat the last real window) and `label`. `make_dynamic_image_dataset` (the offline path)
reads the precomputed dynamic images (or other summary images) instead: `images float32 [S_max, size,
size, C]`, `length` = S; by default the stored 8-bit images minus the mean, as the paper trains on them.
Both normalise their output as the network's weights expect (`convention`, `arp_jax.normalization`: the
default "reference" is 0..255 minus the ImageNet mean, flow codes minus 128; "torchvision" and "caffe"
for converted ImageNet weights, whose checkpoints record theirs, `weights.read_convention`).
In eval mode both add `index` (the video's position in the source), `name` (uint8 [NAME_BYTES],
`decode_names`) and `valid` (False for padding), and never drop a video.

Crops (`crop_params`): the reference's, drawn in the frame resized to a short side of `short_side` (256)
and mapped back to stored pixels, so that the one resize of each crop to size x size also does the
reference's resize of the whole frame. Dynamic images are stored at their frames' size and crop alike.
`short_side=None` takes the scales in stored pixels (the synthetic and miniature configs' 64-pixel frames).

Randomness: every random choice of a video (which windows, which crops, which flips) comes from the
`np.random.Generator` that Grain's `random_map` derives from the seed and the element's position, so a
seed gives the same batches whatever the number of threads or worker processes, and every epoch is
shuffled and augmented differently.

Workers: `num_workers > 0` runs the per-video work in that many processes (`IterDataset.mp_prefetch`);
each process reads its own share of whole batches (batching is a `MapDataset` step, so which videos form
a batch does not depend on the number of workers). The source must then be picklable (TFDS array_record
sources are). Threads within a process: `read_options` (default two threads, two batches ahead, to
bound memory: a training batch of 32 videos of 10 x 10 RGB frames at 224 x 224 is 1.9 GB of float32).

Checkpointing: the iterator's state is a small JSON-able dict (`{"next_index": ...}` without workers, one
such position per worker with them, so restore with the same `num_workers`) that `iterator_state` /
`restore_iterator` turn into a string and back; a resumed run sees exactly the batches that would have
followed. With Orbax, Grain registers a handler for its iterators, saved beside the model:

    import orbax.checkpoint as ocp
    it = iter(ds)
    manager = ocp.CheckpointManager(directory)
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(train_state),
                                               data=grain.checkpoint.CheckpointSave(it)))
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                             data=grain.checkpoint.CheckpointRestore(it)))

The handler writes one `process_<i>-of-<n>.json` per host (each host's iterator reads its own shard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
import json

from absl import flags as absl_flags
import cv2
import grain
import numpy as np
import tensorflow_datasets as tfds

from arp_jax import normalization
from arp_jax.normalization import Convention
from arp_jax.pooling.windows import window_indices
from data_prep.jpeg import decode_jpeg

MODALITIES = ("rgb", "flow")
CHANNELS = {"rgb": 3, "flow": 2}
# The reference resizes frames to a short side of 256, then crops sides of SCALES and resizes the crop to
# SIZE; `crop_params` folds that first resize into the crop (the scales are in 256-short-side pixels).
SHORT_SIDE = 256
SCALES = (256, 224, 192, 168)
SIZE = 224
# The reference's training windows start at frame 3 (1-based); test windows at frame 1.
TRAIN_START = 2
# The "reference" input convention's means (`arp_jax.normalization`): ImageNet's in 0..255 (R, G, B);
# flow codes are centred on 128 (no motion).
RGB_MEAN = normalization.RGB_MEAN
FLOW_MEAN = normalization.FLOW_MEAN
# Features of the datasets: the image sequences of each modality.
FRAME_KEYS = {"rgb": ("frames",), "flow": ("flow_x", "flow_y")}
DYNAMIC_IMAGE_KEYS = {"rgb": ("images",), "flow": ("images_x", "images_y")}
# The width of a video name in eval batches (`encode_name`); UCF101's and HMDB51's are under 128.
NAME_BYTES = 256
# What the offline pipeline feeds the network (`make_dynamic_image_dataset`).
OFFLINE_VALUES = ("image", "restored")


# --------------------------------------------------------------------------------------------------------
# Argument checks


def _check_int(name: str, value, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise ValueError(f"{name} is {value!r}; expected an int >= {low}")
  return int(value)


def _check_bool(name: str, value) -> bool:
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} is {value!r}; expected True (training) or False (evaluation)")
  return bool(value)


def _check_rng(rng) -> np.random.Generator:
  if not isinstance(rng, np.random.Generator):
    raise ValueError(f"rng is a {type(rng).__name__}; expected a np.random.Generator "
                     "(np.random.default_rng(seed), or the one Grain's random_map passes)")
  return rng


def _check_modality(modality) -> str:
  if modality not in MODALITIES:
    raise ValueError(f"modality is {modality!r}; expected one of {MODALITIES}")
  return modality


def _check_convention(convention, modality: str) -> Convention:
  """A name of `normalization.CONVENTIONS` or a `Convention` -> the `Convention` for `modality`."""
  if not isinstance(convention, (str, Convention)):
    raise ValueError(f"convention is {convention!r}; expected one of {normalization.CONVENTIONS} or an "
                     "arp_jax.normalization.Convention (e.g. weights.read_convention(checkpoint))")
  return normalization.resolve(convention, modality)


def _check_scales(scales) -> tuple[int, ...]:
  if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
    raise ValueError(f"scales is {scales!r}; expected a non-empty sequence of crop sides, e.g. {SCALES}")
  return tuple(_check_int("each scale", scale, 1) for scale in scales)


def _check_short_side(short_side) -> int | None:
  if short_side is None:
    return None
  if isinstance(short_side, bool) or not isinstance(short_side, (int, np.integer)) or short_side < 1:
    raise ValueError(f"short_side is {short_side!r}; expected an int >= 1 (the reference's {SHORT_SIDE}) "
                     "or None (scales in stored pixels)")
  return int(short_side)


# --------------------------------------------------------------------------------------------------------
# Window sampling


def _num_kept(n: int, train: bool, max_windows: int, frames: bool) -> int:
  """How many of n windows the reference keeps: at test at most `max_windows`; in training all when
  there are at most `max_windows`, else min(max_windows, ceil(n / 2)) windows, or `max_windows` single
  frames (window 1: the static-image and flow streams sample frames, not half the video)."""
  if n <= max_windows:
    return n
  if train and not frames:
    return min(max_windows, -(-n // 2))
  return max_windows


def _keep(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
  """int [count]: a random subset of 0..n-1 in increasing order (temporal order), or all of them."""
  if count >= n:
    return np.arange(n)
  return np.sort(rng.choice(n, size=count, replace=False))


def sample_windows(num_frames: int, window: int, stride: int, train: bool, rng: np.random.Generator,
                   max_windows: int) -> np.ndarray:
  """The frames of the windows the reference samples from a video, in temporal order.

  Windows of `window` frames every `stride` start at the 0-based frame 2 in training (frame 3, 1-based;
  frame 0 if that would leave a window of two or more frames a single real one: videos of fewer than 4
  frames, 3 for window 1) and at frame 0 at test; the last one is padded by
  repeating the last frame (`arp_jax.window_indices`). Of the n windows, training keeps all when
  n <= max_windows, else a random min(max_windows, ceil(n / 2)); test keeps at most `max_windows`, a
  random subset when there are more. With window 1 (frames), training keeps `max_windows` random frames.

  Args:
    num_frames: T >= 1 frames of the video (flow: T - 1 flow images).
    window, stride: tau >= 1 and s >= 1.
    train: training (True) or test (False) sampling.
    rng: draws the subset (untouched when every window is kept).
    max_windows: S_max >= 1 (the reference: 10 in training, 20 at test).

  Returns:
    int32 [S, window] 0-based frame indices, S <= max_windows, windows in temporal order.

  Raises:
    ValueError: an argument is not an int in range, `train` is not a bool or `rng` not a Generator.
  """
  num_frames = _check_int("num_frames", num_frames, 1)
  window = _check_int("window", window, 1)
  stride = _check_int("stride", stride, 1)
  max_windows = _check_int("max_windows", max_windows, 1)
  train = _check_bool("train", train)
  rng = _check_rng(rng)
  # The model pools each sampled window whole (`make_dataset` emits them back to back), so a window of
  # one real frame and its padding copies would pool to ARP's float32 residue, not to the frame.
  start = TRAIN_START if train and num_frames - TRAIN_START >= min(window, 2) else 0
  windows = window_indices(num_frames, window, stride, start)
  kept = _keep(len(windows), _num_kept(len(windows), train, max_windows, window == 1), rng)
  return np.asarray(windows[kept], np.int32)


# --------------------------------------------------------------------------------------------------------
# Augmentation


def _round_half_down(numerator: int, denominator: int) -> int:
  """numerator / denominator (denominator > 0) rounded to the nearest int, halves down; exact."""
  return -((denominator - 2 * numerator) // (2 * denominator))


def _crop_span(stored: int, crop: int, short_side: int, stored_short: int, position: int) -> tuple[int, int]:
  """(start, length) in stored pixels, along a side of `stored` pixels, of a crop `crop` pixels long in the
  frame resized from short side `stored_short` to `short_side` (clipped to that frame's side, and at least
  one stored pixel), placed at the side's start (position 0), end (1) or centre (2). Each edge is rounded
  to the nearest stored pixel, halves down: without a resize (short_side = stored_short) a centred crop
  starts at (stored - crop) // 2, as it always has."""
  # Lengths in units of 1 / short_side stored pixel: the side is `full`, the crop `span`.
  full = stored * short_side
  span = min(max(crop * stored_short, short_side), full)
  # Edges in units of 1 / (2 short_side) stored pixel, where they are whole numbers.
  low = (0, 2 * (full - span), full - span)[position]
  start = _round_half_down(low, 2 * short_side)
  return start, _round_half_down(low + 2 * span, 2 * short_side) - start


def crop_params(height: int, width: int, rng: np.random.Generator, train: bool,
                scales: Sequence[int] = SCALES, size: int = SIZE, flip: bool = True,
                short_side: int | None = SHORT_SIDE) -> tuple[int, int, int, int, bool]:
  """One crop and flip draw (the reference's multi-scale crop), shared by the frames of a window.

  The reference first resizes frames to a short side of 256 (`short_side`), then crops. Here the crop is
  drawn in the pixels of that resized frame and its box mapped back to the stored frame, so the
  `cv2.resize` of the crop to size x size does both resizes in one, with no pass over the whole frame.
  Each edge of the box is rounded to the nearest stored pixel (halves down), so it lies within half a
  stored pixel of the exact box (the resized frame's long side unrounded: 341.3 for 320 x 240, where a
  resize to 341 x 256 moves the right corner crops by 0.3 stored pixel). UCF101's 320 x 240 frames
  (240 / 256 stored pixels per resized one):
  training crop sides of 240, 210, 180 and 157 or 158 stored pixels; the test crop 210 x 210 at (15, 55).

  Training: crop height and width drawn independently from `scales` (each clipped to the resized frame's
  side), placed at one of 5 positions (4 corners, centre) with equal probability, flipped horizontally
  with probability 1/2. Test: the centred size x size square (the resized frame's short side square if
  size exceeds it), no flip.

  Args:
    height, width: the frame's stored size in pixels (>= 1).
    rng: draws the crop in training (untouched at test).
    train: random crop (True) or centre crop (False).
    scales: the crop sides to draw from, in pixels of the resized frame.
    size: the test crop side in pixels of the resized frame (the network's input side).
    flip: whether training may flip. False for classes that a mirror image changes (the synthetic
      benchmark's "left" and "right"); the draw is made either way, so the crops stay the same.
    short_side: the resized frame's short side (the reference's 256), or None: no resize, the scales and
      size are stored pixels (the crops of short_side = min(height, width)).

  Returns:
    (top, left, crop_h, crop_w, flip) in stored pixels: the crop is
    frames[..., top:top + crop_h, left:left + crop_w, :].

  Raises:
    ValueError: a size is not a positive int, `scales` is empty or not ints, `short_side` is neither a
      positive int nor None, `rng` is not a Generator.
  """
  height = _check_int("height", height, 1)
  width = _check_int("width", width, 1)
  train = _check_bool("train", train)
  scales = _check_scales(scales)
  size = _check_int("size", size, 1)
  stored_short = min(height, width)
  short_side = _check_short_side(short_side) or stored_short
  if not train:
    side = min(size, short_side)
    top, crop_h = _crop_span(height, side, short_side, stored_short, 2)
    left, crop_w = _crop_span(width, side, short_side, stored_short, 2)
    return top, left, crop_h, crop_w, False
  rng = _check_rng(rng)
  scale_h, scale_w = int(rng.choice(scales)), int(rng.choice(scales))
  position = int(rng.integers(5))  # 0..3: top-left, top-right, bottom-left, bottom-right; 4: centre
  # Along each side: 0 start, 1 end, 2 centre.
  vertical, horizontal = (2, 2) if position == 4 else (position // 2, position % 2)
  top, crop_h = _crop_span(height, scale_h, short_side, stored_short, vertical)
  left, crop_w = _crop_span(width, scale_w, short_side, stored_short, horizontal)
  flipped = bool(rng.integers(2)) and _check_bool("flip", flip)
  return top, left, crop_h, crop_w, flipped


def _check_params(params, height: int, width: int) -> tuple[int, int, int, int, bool]:
  if not isinstance(params, Sequence) or len(params) != 5:
    raise ValueError(f"params is {params!r}; expected (top, left, crop_h, crop_w, flip) from crop_params")
  top, left, crop_h, crop_w, flip = params
  top, left = _check_int("top", top, 0), _check_int("left", left, 0)
  crop_h, crop_w = _check_int("crop_h", crop_h, 1), _check_int("crop_w", crop_w, 1)
  if top + crop_h > height or left + crop_w > width:
    raise ValueError(f"the crop {crop_h} x {crop_w} at (top={top}, left={left}) runs past the {height} x "
                     f"{width} frames; expected crop_params(height, width, ...) of these frames")
  return top, left, crop_h, crop_w, bool(flip)


def _crop_resize_flip(images, params, size: int, flip_u, convention: Convention, out: np.ndarray,
                      zero_sum: bool = False) -> None:
  """Writes each of `images` ([H, W, C] uint8 or float32 arrays) cropped, resized to size x size,
  mirrored if `params` say so (then `flip_u` applied to channel 0, the horizontal displacement of flow)
  and normalised as `convention` says (`normalization.normalize`, with `zero_sum`) into float32 `out`
  [n, size, size, C]."""
  top, left, crop_h, crop_w, flip = _check_params(params, images[0].shape[0], images[0].shape[1])
  for image, target in zip(images, out):
    resized = cv2.resize(image[top:top + crop_h, left:left + crop_w], (size, size),
                         interpolation=cv2.INTER_LINEAR)
    if flip:
      # Bilinear sampling is symmetric about the centre, so mirroring after the resize equals mirroring
      # before it, and costs nothing: the normalisation below reads the mirrored view.
      resized = resized[:, ::-1]
      if flip_u is not None:
        resized[..., 0] = flip_u(resized[..., 0])
    normalization.normalize(resized, convention, zero_sum=zero_sum, out=target)


def augment(frames: np.ndarray, params, size: int, modality: str,
            convention: str | Convention = "reference") -> np.ndarray:
  """Crops, flips and resizes the frames of one window, then normalises them as the weights expect.

  Flow: a horizontal flip reverses horizontal motion, so it also maps the stored horizontal displacement
  code u to 255 - u (channel 0; the codes are symmetric about 128 = no motion, REFERENCE.md "Data").
  The resize runs on the uint8 frames (bilinear, OpenCV's fixed-point path, 4x less memory than float);
  its rounding to whole levels is below the JPEG error of the stored frames. Normalisation: the input
  convention of the weights (`arp_jax.normalization`); the default "reference" subtracts the ImageNet
  mean in 0..255 per channel from RGB (`RGB_MEAN`) and 128 from flow, and divides by nothing.

  Args:
    frames: uint8 [tau, H, W, C], C = 3 (RGB) or 2 (flow u, v).
    params: (top, left, crop_h, crop_w, flip) from `crop_params(H, W, ...)`.
    size: output side.
    modality: "rgb" or "flow".
    convention: a name of `normalization.CONVENTIONS` or a `normalization.Convention` of the modality.

  Returns:
    float32 [tau, size, size, C].

  Raises:
    ValueError: `frames` is not uint8 [tau, H, W, C] with the modality's C, `params` do not fit the
      frames, `size` is not a positive int, `modality` is unknown or `convention` not one of it.
  """
  modality = _check_modality(modality)
  convention = _check_convention(convention, modality)
  size = _check_int("size", size, 1)
  frames = np.asarray(frames)
  channels = CHANNELS[modality]
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != channels or 0 in frames.shape:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     f"[tau, H, W, {channels}] ({modality})")
  out = np.empty((len(frames), size, size, channels), np.float32)
  _crop_resize_flip(frames, params, size, _flip_code if modality == "flow" else None, convention, out)
  return out


def _flip_code(u: np.ndarray) -> np.ndarray:
  """The stored code of the horizontal displacement -v for the code u of v: codes are symmetric about
  127.5 (`q = round((v + 20) * 255 / 40)`), so uint8 u -> 255 - u."""
  return 255 - u


# --------------------------------------------------------------------------------------------------------
# Decoding


class _JpegBytes(tfds.decode.SkipDecoding):
  """Leaves a sequence of JPEGs as bytes, for the NumPy (TensorFlow-free) reader.

  `tfds.decode.SkipDecoding` alone fails there on sequences (tensorflow-datasets 4.9.10): the NumPy
  reader asks a decoder of a `Sequence(Image)` for `decode_batch_example_np`, which it lacks.
  """

  def decode_batch_example_np(self, serialized_example):
    return serialized_example  # object array [T] of JPEG bytes


def prepared_builder(name: str, data_dir=None):
  """The TFDS builder of a prepared dataset (e.g. "ucf101_frames/split1"), its info read from `data_dir`.

  Raises:
    FileNotFoundError: `name` is not a registered dataset (import `data_prep.datasets` to register
      UCF101's and HMDB51's), or it is not prepared under `data_dir` (TFDS would try to build it).
  """
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as error:
    raise FileNotFoundError(f"dataset {name!r} is not registered ({error}); expected one of data_prep's "
                            "datasets (ucf101_frames/split1, ...), prepared with `python -m data_prep.build`"
                            ) from None
  if not builder.is_prepared():
    raise FileNotFoundError(f"dataset {name!r} is not prepared under {data_dir or '~/tensorflow_datasets'}; "
                            "build it with `python -m data_prep.build --data_dir ...` or pass its data folder "
                            "(config.dataset.data_dir)")
  return builder


def data_source(name: str, split: str, data_dir=None):
  """A TFDS random-access source of `name` (e.g. "ucf101_frames/split1") whose JPEG sequences stay bytes.

  The pipelines then decode only the frames of the windows they sample (with `data_prep.jpeg`, the
  decoder that wrote them; the pixels equal TFDS's own decoding), instead of the whole video.

  Raises:
    ValueError: `name` or `split` is not a string, or `split` is not a split of the dataset.
    FileNotFoundError: the dataset is not registered or not prepared (`prepared_builder`).
  """
  for arg, value in (("name", name), ("split", split)):
    if not isinstance(value, str) or not value:
      raise ValueError(f"{arg} is {value!r}; expected a string, e.g. 'ucf101_frames/split1' and 'train'")
  info = prepared_builder(name, data_dir).info
  if split not in info.splits:
    raise ValueError(f"split is {split!r}; expected one of {sorted(info.splits)} of {name}")
  features = info.features
  decoders = {key: _JpegBytes() for key, feature in features.items()
              if isinstance(feature, tfds.features.Sequence) and isinstance(feature.feature,
                                                                            tfds.features.Image)}
  return tfds.data_source(name, split=split, data_dir=data_dir, decoders=decoders)


def _decode_image(item, grey: bool, what: str) -> np.ndarray:
  """uint8 [H, W, 3] (or [H, W] with `grey`) from JPEG bytes or an image TFDS already decoded."""
  if isinstance(item, (bytes, np.bytes_)):
    return decode_jpeg(bytes(item), grey=grey)
  image = np.asarray(item)
  if grey and image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.dtype != np.uint8 or image.ndim != (2 if grey else 3) or (not grey and image.shape[-1] != 3):
    raise ValueError(f"{what} has shape {image.shape} and dtype {image.dtype}; expected JPEG bytes or uint8 "
                     f"{'[H, W, 1]' if grey else '[H, W, 3]'}")
  return image


def _sequences(example, keys: tuple[str, ...]) -> list:
  if not isinstance(example, Mapping) or any(key not in example for key in keys):
    found = sorted(example) if isinstance(example, Mapping) else type(example).__name__
    raise ValueError(f"example has {found}; expected a dataset example with {keys}")
  sequences = [example[key] for key in keys]
  if len({len(sequence) for sequence in sequences}) != 1 or not len(sequences[0]):
    raise ValueError(f"example has {[len(s) for s in sequences]} images in {keys}; expected the same "
                     "number >= 1 in each")
  return sequences


def _decode_sequences(sequences: list, keys: tuple[str, ...], indices) -> np.ndarray:
  """uint8 [len(indices), H, W, C]: images `indices` of the sequences, one channel per grey sequence
  (C = 3 for one RGB sequence); each distinct image is decoded once."""
  n = len(sequences[0])
  indices = np.arange(n) if indices is None else np.asarray(indices)
  if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer) or indices.size == 0 \
      or indices.min() < 0 or indices.max() >= n:
    raise ValueError(f"indices are {indices!r}; expected a non-empty 1-D array of ints in 0..{n - 1}")
  grey = len(keys) > 1
  decoded = {}
  for i in np.unique(indices):
    planes = [_decode_image(sequence[i], grey, f"{key}[{i}]") for key, sequence in zip(keys, sequences)]
    decoded[i] = np.stack(planes, -1) if grey else planes[0]
  shapes = {image.shape for image in decoded.values()}
  if len(shapes) != 1:
    raise ValueError(f"the images of {keys} have shapes {sorted(shapes)}; expected one size per video")
  out = np.empty((len(indices),) + shapes.pop(), np.uint8)
  for j, i in enumerate(indices):
    out[j] = decoded[i]
  return out


def _video_length(example, modality: str) -> int:
  return len(_sequences(example, FRAME_KEYS[modality])[0])


def decode_video(example, modality: str, indices=None) -> np.ndarray:
  """The frames (RGB) or the flow (u and v as 2 channels) of a frames-dataset example.

  Args:
    example: an example of `ucf101_frames`, `hmdb51_frames` or `synthetic_motion`, from
      `tfds.data_source` (frames as a list of uint8 [H, W, 3]; flow_x / flow_y as [H, W, 1]) or from
      `data_source` (the same as JPEG bytes).
    modality: "rgb" or "flow".
    indices: optional int [N] 0-based frames to decode, in any order, repeats allowed; None for all.

  Returns:
    uint8 [T, H, W, 3] (RGB) or [T - 1, H, W, 2] (flow: T - 1 flow images), or [N, H, W, C] with
    `indices`.

  Raises:
    ValueError: the example lacks the modality's features, its images are not JPEG / uint8 images of one
      size, `indices` are out of range or `modality` is unknown.
  """
  keys = FRAME_KEYS[_check_modality(modality)]
  return _decode_sequences(_sequences(example, keys), keys, indices)


def decode_dynamic_images(example, modality: str, indices=None) -> np.ndarray:
  """The precomputed dynamic images of an example, restored to their float range.

  Each image was stored min-max scaled to 8 bits with its own range (`data_prep.dynamic.to_uint8`), so
  value = low + q / 255 * (high - low), exact up to the 8-bit step and the JPEG error. The values are
  the weighted sums of eq. 3 on 0..255 frames (or flow codes): no mean to subtract, since the ARP
  weights sum to zero (a constant offset of the frames cancels).

  Args:
    example: an example of `*_dynamic_images` (`images`, or `images_x` / `images_y` for flow, and
      `low`, `high` float [S]).
    modality: "rgb" or "flow".
    indices: optional int [N] of windows to decode; None for all.

  Returns:
    float32 [S, H, W, C] (or [N, H, W, C]), C = 3 (RGB) or 2 (flow).

  Raises:
    ValueError: the example lacks the features or `low` / `high` do not have one value per image.
  """
  keys = DYNAMIC_IMAGE_KEYS[_check_modality(modality)]
  sequences = _sequences(example, keys)
  n = len(sequences[0])
  if "low" not in example or "high" not in example:
    raise ValueError(f"example has {sorted(example)}; expected `low` and `high` (the range of each image)")
  low, high = np.asarray(example["low"], np.float32), np.asarray(example["high"], np.float32)
  if low.shape != (n,) or high.shape != (n,):
    raise ValueError(f"low has shape {low.shape} and high {high.shape}; expected ({n},), one per image")
  indices = np.arange(n) if indices is None else np.asarray(indices)
  q = _decode_sequences(sequences, keys, indices).astype(np.float32)
  scale = (high[indices] - low[indices]) / np.float32(255)
  return q * scale[:, None, None, None] + low[indices][:, None, None, None]


# --------------------------------------------------------------------------------------------------------
# Per-video transforms (picklable classes, for worker processes)


@dataclasses.dataclass(frozen=True)
class _Element:
  """What the pipeline carries to the per-video transform: the example and where it came from."""
  index: int
  example: Mapping
  valid: bool = True


@dataclasses.dataclass(frozen=True)
class _WithIndex:
  """map_with_index: the position in the source (modulo its length: `repeat` passes positions past it)."""
  length: int

  def __call__(self, index: int, example) -> _Element:
    return _Element(index % self.length, example)


def _as_padding(element: _Element) -> _Element:
  return dataclasses.replace(element, valid=False)


def encode_name(name) -> np.ndarray:
  """A video name as uint8 [NAME_BYTES] (UTF-8, zero-padded): an array, so that evaluation gathers the
  names of every host's videos with their scores instead of reading the test set again.

  Raises:
    ValueError: the name is longer than NAME_BYTES bytes in UTF-8.
  """
  raw = bytes(name) if isinstance(name, (bytes, np.bytes_)) else str(name).encode()
  if len(raw) > NAME_BYTES:
    raise ValueError(f"video name {raw[:40]!r}... has {len(raw)} bytes; expected at most {NAME_BYTES}")
  out = np.zeros(NAME_BYTES, np.uint8)
  out[:len(raw)] = np.frombuffer(raw, np.uint8)
  return out


def decode_names(codes) -> list[str]:
  """`encode_name`'s inverse for uint8 [N, NAME_BYTES] -> N names."""
  return [bytes(row).rstrip(b"\0").decode() for row in np.asarray(codes, np.uint8)]


def _outputs(element: _Element, label, train: bool, **arrays) -> dict:
  if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
    raise ValueError(f"video {element.index} has label {label!r}; expected an int class index")
  out = dict(arrays, label=np.int32(label))
  if not train:
    out.update(index=np.int32(element.index), valid=np.bool_(element.valid),
               name=encode_name(element.example.get("name", b"")))
  return out


@dataclasses.dataclass(frozen=True)
class VideoTransform:
  """Grain random_map of the frames pipeline: sample windows, decode their frames, augment each window.

  Returns per video `frames float32 [max_windows * window, size, size, C]`, `length int32` (= S * window
  real frames; the windows past them repeat the last real window), `label int32`, and at test `index`,
  `name`, `valid`. The frames are normalised as `convention` says (a name or a `Convention`).
  """
  train: bool
  modality: str
  window: int
  stride: int
  max_windows: int
  size: int
  scales: tuple[int, ...] = SCALES
  flip: bool = True
  short_side: int | None = SHORT_SIDE
  convention: str | Convention = "reference"

  def __call__(self, element: _Element, rng: np.random.Generator) -> dict:
    T = _video_length(element.example, self.modality)
    ids = sample_windows(T, self.window, self.stride, self.train, rng, self.max_windows)  # [S, tau]
    S, tau = ids.shape
    # Each frame is decoded once, however many windows (or padded window ends) it appears in.
    unique, inverse = np.unique(ids, return_inverse=True)
    frames = decode_video(element.example, self.modality, unique)
    inverse = inverse.reshape(ids.shape)
    out = np.empty((self.max_windows * tau, self.size, self.size, CHANNELS[self.modality]), np.float32)
    flip_u = _flip_code if self.modality == "flow" else None
    convention = normalization.resolve(self.convention, self.modality)
    for s in range(S):
      params = crop_params(frames.shape[1], frames.shape[2], rng, self.train, self.scales, self.size,
                           self.flip, self.short_side)
      _crop_resize_flip([frames[k] for k in inverse[s]], params, self.size, flip_u, convention,
                        out[s * tau:(s + 1) * tau])
    # Padding repeats a real window rather than zeros, so a model that forgets `length` still sees
    # plausible input; with `length` the pooling and the merge ignore it.
    for s in range(S, self.max_windows):
      out[s * tau:(s + 1) * tau] = out[(S - 1) * tau:S * tau]
    return _outputs(element, element.example.get("label"), self.train, frames=out,
                    length=np.int32(S * tau))


@dataclasses.dataclass(frozen=True)
class DynamicImageTransform:
  """Grain random_map of the dynamic-image pipeline: keep windows as the reference does, augment each.

  Returns per video `images float32 [max_windows, size, size, C]` (`values`: "image", the 8-bit images
  normalised as frames are; "restored", the float range of `decode_dynamic_images` times the
  convention's gain, its offset cancelling in the zero-sum ARP weights), `length int32` (S real images;
  the rest repeat the last), `label int32`, and at test `index`, `name`, `valid`.
  """
  train: bool
  modality: str
  max_windows: int
  size: int
  scales: tuple[int, ...] = SCALES
  flip: bool = True
  short_side: int | None = SHORT_SIDE
  values: str = "image"
  convention: str | Convention = "reference"

  def __call__(self, element: _Element, rng: np.random.Generator) -> dict:
    example = element.example
    n = len(_sequences(example, DYNAMIC_IMAGE_KEYS[self.modality])[0])
    # The dataset's windows already start where the reference starts them (frame 3 in the training
    # split, 1 in the test split); only the subset is drawn here. A dynamic image is one window.
    kept = _keep(n, _num_kept(n, self.train, self.max_windows, frames=False), rng)
    flow = self.modality == "flow"
    if self.values == "image":
      keys = DYNAMIC_IMAGE_KEYS[self.modality]
      images = _decode_sequences(_sequences(example, keys), keys, kept)
      # A flip negates the dynamic image's u (below), and min-max scaling maps -v to the code 255 - q.
      flip_u, zero_sum = (_flip_code if flow else None), False
    else:
      images = decode_dynamic_images(example, self.modality, kept)
      # Flipping a flow video maps u to 255 - u in every frame; the ARP weights sum to zero, so the 255s
      # cancel and the dynamic image's u is negated (exact for windows of 2 or more frames). The
      # convention's offset cancels likewise: only its gain applies.
      flip_u, zero_sum = (np.negative if flow else None), True
    convention = normalization.resolve(self.convention, self.modality)
    out = np.empty((self.max_windows, self.size, self.size, CHANNELS[self.modality]), np.float32)
    for s, image in enumerate(images):
      params = crop_params(image.shape[0], image.shape[1], rng, self.train, self.scales, self.size,
                           self.flip, self.short_side)
      _crop_resize_flip([image], params, self.size, flip_u, convention, out[s:s + 1], zero_sum)
    out[len(kept):] = out[len(kept) - 1]
    return _outputs(element, example.get("label"), self.train, images=out, length=np.int32(len(kept)))


@dataclasses.dataclass(frozen=True)
class _Stack:
  """batch_fn: stacks a batch's videos; at test pads a short last batch to `batch_size` with copies of
  its last video marked valid=False, so every batch has one shape (one compilation)."""
  batch_size: int
  pad: bool

  def __call__(self, elements: Sequence[dict]) -> dict:
    elements = list(elements)
    n = len(elements)
    if self.pad and n < self.batch_size:
      elements += [dict(elements[-1], valid=np.bool_(False))] * (self.batch_size - n)
    return {key: np.stack([element[key] for element in elements]) for key in elements[0]}


# --------------------------------------------------------------------------------------------------------
# Pipelines


def _seed(seed: int, *salt: int) -> int:
  """A uint32 seed for one random step of one host, hashed so steps and hosts do not share streams."""
  return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


def _pipeline(source, transform, *, train: bool, batch_size: int, seed: int, num_epochs: int | None,
              shard_index: int, shard_count: int, drop_remainder: bool, num_workers: int,
              read_options: grain.ReadOptions | None) -> grain.IterDataset:
  """source -> (index, example) -> this host's share -> [shuffle, repeat] -> transform -> batches."""
  train = _check_bool("train", train)
  batch_size = _check_int("batch_size", batch_size, 1)
  seed = _check_int("seed", seed, 0)
  shard_count = _check_int("shard_count", shard_count, 1)
  shard_index = _check_int("shard_index", shard_index, 0)
  if shard_index >= shard_count:
    raise ValueError(f"shard_index is {shard_index}; expected 0..{shard_count - 1} (shard_count "
                     f"{shard_count}, e.g. jax.process_index() of jax.process_count())")
  num_workers = _check_int("num_workers", num_workers, 0)
  if num_epochs is not None:
    num_epochs = _check_int("num_epochs", num_epochs, 1)
    if not train and num_epochs != 1:
      raise ValueError(f"num_epochs is {num_epochs} in eval mode; expected None or 1 (one pass)")
  drop_remainder = _check_bool("drop_remainder", drop_remainder)
  if read_options is not None and not isinstance(read_options, grain.ReadOptions):
    raise ValueError(f"read_options is a {type(read_options).__name__}; expected grain.ReadOptions or None")
  if not hasattr(source, "__getitem__") or not hasattr(source, "__len__") or len(source) == 0:
    raise ValueError(f"source is {source!r}; expected a non-empty random-access source "
                     "(tfds.data_source(...)[split], data_source(...), or a list of examples)")

  length = len(source)
  ds = grain.MapDataset.source(source).map_with_index(_WithIndex(length))
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
      padding = grain.MapDataset.source(source).map_with_index(_WithIndex(length))
      padding = padding.slice(slice(0, missing)).map(_as_padding)
      ds = grain.MapDataset.concatenate([ds, padding]) if len(ds) else padding
  ds = ds.random_map(transform, seed=_seed(seed, shard_index, 1))
  ds = ds.batch(batch_size, drop_remainder=train and drop_remainder, batch_fn=_Stack(batch_size, not train))
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
                 flip: bool = True, num_workers: int = 0,
                 read_options: grain.ReadOptions | None = None,
                 short_side: int | None = SHORT_SIDE,
                 convention: str | Convention = "reference") -> grain.IterDataset:
  """The frames (or flow) pipeline: window sampling, decoding, augmentation, batching.

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
    short_side: crops are drawn in frames resized to this short side (the reference's 256; the resize is
      folded into the crop's, see `crop_params`), or None: `scales` and `size` in stored pixels.
    flip: random horizontal flips in training (False when a mirror image changes the class).
    num_workers: worker processes (0: all in this process); see the module docstring.
    read_options: threads and prefetching within a process (default 2 threads, 2 batches ahead).
    convention: the input convention of the network's weights (`arp_jax.normalization`): a name of
      `normalization.CONVENTIONS` ("reference", the default: 0..255 minus the ImageNet mean, flow minus
      128; "torchvision"; "caffe") or a `Convention` of the modality (`weights.read_convention`, which
      knows a flow network's flow_init).

  Returns:
    A `grain.IterDataset` of dicts: `frames float32 [B, max_windows * window, size, size, C]`,
    `length int32 [B]`, `label int32 [B]`, and in eval `index int32 [B]`, `name uint8 [B, NAME_BYTES]`
    (`decode_names`), `valid bool [B]`. Iterate it (`iter(ds)`) for a checkpointable iterator. The model
    pools with window=tau, stride=tau, start=0.

  Raises:
    ValueError: an argument is out of range (see the messages), or the source is empty.
  """
  transform = VideoTransform(
      train=_check_bool("train", train), modality=_check_modality(modality),
      window=_check_int("window", window, 1), stride=_check_int("stride", stride, 1),
      max_windows=_check_int("max_windows", max_windows, 1), size=_check_int("size", size, 1),
      scales=_check_scales(scales), flip=_check_bool("flip", flip),
      short_side=_check_short_side(short_side), convention=_check_convention(convention, modality))
  return _pipeline(source, transform, train=train, batch_size=batch_size, seed=seed, num_epochs=num_epochs,
                   shard_index=shard_index, shard_count=shard_count, drop_remainder=drop_remainder,
                   num_workers=num_workers, read_options=read_options)


def make_dynamic_image_dataset(source, *, train: bool, modality: str, max_windows: int, size: int,
                               batch_size: int, seed: int, num_epochs: int | None, shard_index: int = 0,
                               shard_count: int = 1, drop_remainder: bool = True,
                               scales: Sequence[int] = SCALES, flip: bool = True, num_workers: int = 0,
                               read_options: grain.ReadOptions | None = None,
                               values: str = "image",
                               short_side: int | None = SHORT_SIDE,
                               convention: str | Convention = "reference") -> grain.IterDataset:
  """The precomputed dynamic images pipeline (the paper's offline path).

  Reads `*_dynamic_images` examples (one image per window, or one per video; dynamic images or the other
  summary images of Table 1), keeps windows as the reference does (training: all up to `max_windows`,
  else a random min(max_windows, ceil(n / 2)); test: at most `max_windows`), and crops and flips each
  image as `crop_params` draws (flow: a flip negates u, see `DynamicImageTransform`). Arguments as
  `make_dataset` (`convention` included), and `values`:
    "image" (the paper: dynamic images are "scaled into [0, 255] range again" and "fed into a CNN as
      input"): the stored 8-bit image normalised exactly as a frame (by default RGB minus `RGB_MEAN`,
      flow codes minus 128);
    "restored": the pooled values themselves (`decode_dynamic_images`), e.g. for a network that scales
      its input itself, times the convention's gain (1 by default; the offset cancels in ARP's zero-sum
      weights, so these are the dynamic images of normalised frames).

  Returns:
    A `grain.IterDataset` of dicts: `images float32 [B, max_windows, size, size, C]`, `length int32 [B]`
    real images, `label int32 [B]`, and in eval `index int32 [B]`, `name uint8 [B, NAME_BYTES]`,
    `valid bool [B]`. The model takes them as frames with window=1 and merges them.

  Raises:
    ValueError: an argument is out of range, or the source is empty.
  """
  transform = DynamicImageTransform(
      train=_check_bool("train", train), modality=_check_modality(modality),
      max_windows=_check_int("max_windows", max_windows, 1), size=_check_int("size", size, 1),
      scales=_check_scales(scales), flip=_check_bool("flip", flip), values=_check_values(values),
      short_side=_check_short_side(short_side), convention=_check_convention(convention, modality))
  return _pipeline(source, transform, train=train, batch_size=batch_size, seed=seed, num_epochs=num_epochs,
                   shard_index=shard_index, shard_count=shard_count, drop_remainder=drop_remainder,
                   num_workers=num_workers, read_options=read_options)


def _check_values(values) -> str:
  if values not in OFFLINE_VALUES:
    raise ValueError(f"values is {values!r}; expected one of {OFFLINE_VALUES}")
  return values


# --------------------------------------------------------------------------------------------------------
# Checkpointing


def iterator_state(iterator) -> str:
  """The position of a pipeline iterator as a JSON string (what Grain's Orbax handler writes).

  Raises:
    ValueError: `iterator` is not a Grain iterator (it has no get_state).
  """
  if not hasattr(iterator, "get_state"):
    raise ValueError(f"iterator is a {type(iterator).__name__}; expected iter(make_dataset(...)), a Grain "
                     "DatasetIterator")
  return json.dumps(iterator.get_state())


def restore_iterator(dataset: grain.IterDataset, state) -> grain.DatasetIterator:
  """A new iterator of `dataset` that continues where the iterator that gave `state` was.

  Args:
    dataset: the same pipeline (same source, arguments and seed) as the saved iterator's.
    state: `iterator_state(...)` (a JSON string or bytes) or the dict of `get_state()`.

  Raises:
    ValueError: `dataset` is not a Grain IterDataset or `state` is not a state.
  """
  if not isinstance(dataset, grain.IterDataset):
    raise ValueError(f"dataset is a {type(dataset).__name__}; expected the grain.IterDataset of "
                     "make_dataset(...)")
  if isinstance(state, (str, bytes)):
    try:
      state = json.loads(state)
    except json.JSONDecodeError as error:
      raise ValueError(f"state is not JSON ({error}); expected iterator_state(iterator)") from None
  if not isinstance(state, dict):
    raise ValueError(f"state is a {type(state).__name__}; expected iterator_state(iterator) or a get_state() "
                     "dict")
  iterator = iter(dataset)
  iterator.set_state(state)
  return iterator
