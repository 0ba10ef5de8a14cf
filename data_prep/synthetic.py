"""A synthetic motion benchmark, generated on the fly: 12 classes of one shape moving in one direction.

Each video is a static, textured background (smooth colour noise, different per video) over which one
filled shape (disk, square or triangle) of a random colour brighter than the background, random size and
orientation moves along a straight line at a constant speed, left, right, up or down. The class is shape x
direction ("disk_left", ...).

The benchmark is built so that only the order of the frames tells the direction apart, which is what a
dynamic image encodes and what neither one frame nor the mean of the frames can:

  * a video of direction "left" is exactly the time reversal of the video of direction "right" drawn from
    the same random numbers (and "up" of "down"): the two directions have the same distribution of mean
    images and of frames taken at a random time, so neither carries information on the direction's sign
    (a frame at a known time does: near the start, the shape is nearer the border it moves away from, so a
    static-image stream must sample frames at random, as the paper's does);
  * the path is centred on a uniformly random point and the shape is offset across the path by a random
    whole number of steps of its own speed, so the position of the shape in a randomly chosen frame has the
    same distribution for horizontal and vertical motion: one random frame tells only the shape (at best
    1/4 accuracy: the right shape, and one of its 4 directions at random); the mean image still shows the
    streak, so the shape and the axis, never the sign (at best 1/2); the dynamic image tells all three;
  * the shape is always brighter than the background: with either polarity, a dark shape moving right
    and a bright one moving left would leave dynamic images with the same signs in the same places (the
    band each edge sweeps takes its sign from the contrast times the time order) and differ only in how
    each band fades, which a small network trained from scratch does not pick up (the direction's sign at
    chance). One polarity for every class shows no direction in a frame;
  * the shape is drawn with analytic anti-aliasing (pixel coverage from a signed distance), so it moves
    smoothly by fractions of a pixel and optical flow sees a clean, constant motion.

The videos then go through the same preparation as UCF101 (`data_prep.process.encode_flow`, JPEG) into a
TFDS dataset with the features of `ucf101_frames`, so one training pipeline reads both:

    import data_prep.synthetic  # registers the builder
    data_prep.synthetic.build(DATA_DIR)  # default config: 12 classes x (80 train + 40 test) videos
    source = tfds.data_source("synthetic_motion", data_dir=DATA_DIR)["train"]

From frames (`frames`), flow (`flow_x`, `flow_y`) and the dynamic images computed from either, the four
streams of the paper (static images SI, dynamic images DI, optical flow OF, dynamic optical flow DOF) exist.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
import math
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

from arp_jax import cli, flow as flow_lib
from arp_jax.checks import check_int, is_int
from arp_jax.jpeg import encode_jpeg
from data_prep.datasets import LocalBuilder, frames_features
from data_prep.process import ProcessOptions, encode_flow
from data_prep.threads import map_in_order

SHAPES = ("disk", "square", "triangle")
# "right" and "down" are the positive directions of the image axes x and y; "left" and "up" are their time
# reversals.
DIRECTIONS = ("left", "right", "up", "down")
CLASSES = tuple(f"{shape}_{direction}" for shape in SHAPES for direction in DIRECTIONS)
# The class each class becomes when a whole video is mirrored left-right ("hflip"), top-bottom ("vflip")
# or transposed (x <-> y): the direction moves, the shape stays, and the mirrored video is as likely a
# video of its new class as the original of its own (orientations, positions and backgrounds are drawn
# from distributions these transforms leave unchanged). For `config.input.symmetries`: training then sees
# up to 8 variants of each video, its label moved along (`arp_jax.input.symmetries`).
_MOVED = {"hflip": {"left": "right", "right": "left"}, "vflip": {"up": "down", "down": "up"},
          "transpose": {"left": "up", "up": "left", "right": "down", "down": "right"}}
SYMMETRIES = {name: [CLASSES.index(f"{shape}_{moved.get(direction, direction)}")
                     for shape in SHAPES for direction in DIRECTIONS] for name, moved in _MOVED.items()}

FPS = 25.0
MIN_SIZE = 16
DEFAULT_NOISE = 1.0

# Circumradius R of the shape (every shape fits in the circle of radius R), as fractions of the frame size:
# 10.7..16 pixels in 64 x 64 frames (smaller shapes, a few pixels wide once a ResNet stem has divided the
# resolution by 4, are hard to tell apart for a small network trained from scratch).
_RADIUS_RANGE = (1 / 6, 1 / 4)
# Pixels kept free between the shape and the frame border.
_MARGIN = 1.0
# Speed in pixels per frame, as a fraction of the fastest speed whose path still fits in the frame
# (`_max_speed`): 0.97..1.93 px/frame for 16 frames of 64 x 64.
_SPEED_RANGE = (0.5, 1.0)
_SPEED_CAP = 2.0  # px/frame, for long videos or large frames: keeps consecutive frames close for flow
# Least RGB distance between the shape's colour and the background's base colour, and the least luma by
# which the shape is brighter: the shape is seen, and seen by optical flow, which runs on grey frames (a
# shape of the background's brightness in another hue would be invisible to it).
_MIN_CONTRAST = 96.0
_MIN_LUMA_CONTRAST = 48.0
# Range of each channel of the background's base colour: dark enough that a colour 48 luma levels
# brighter exists (base luma <= 144, shape luma up to 255).
_BASE_RANGE = (32.0, 144.0)
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601, as OpenCV's RGB -> grey used for flow


def class_name(label: int) -> str:
  """The name "<shape>_<direction>" of `label` (0..11); ValueError for anything else."""
  return CLASSES[_check_label(label)]


def _check_label(label) -> int:
  if not is_int(label) or not 0 <= label < len(CLASSES):
    raise ValueError(f"label is {label!r}; expected an int in 0..{len(CLASSES) - 1} (an index of CLASSES)")
  return int(label)


def _check_geometry(num_frames, size) -> tuple[int, int]:
  if not is_int(num_frames) or num_frames < 2:
    raise ValueError(f"num_frames is {num_frames!r}; expected an int >= 2 (motion needs two frames)")
  if not is_int(size) or size < MIN_SIZE:
    raise ValueError(f"size is {size!r}; expected an int >= {MIN_SIZE} (the frame side in pixels)")
  return int(num_frames), int(size)


def _check_noise(noise) -> float:
  if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
      or not np.isfinite(noise) or noise < 0:
    raise ValueError(f"noise is {noise!r}; expected a finite standard deviation >= 0 in grey levels")
  return float(noise)


def _max_speed(num_frames: int, size: int) -> float:
  """The fastest speed (px/frame) at which the largest shape crosses the frame in `num_frames` frames.

  The same for every class and shape size, so that speed says nothing about either.
  """
  largest = _RADIUS_RANGE[1] * size
  room = (size - 1) - 2 * (largest + _MARGIN)  # travel of the centre between the two borders
  return min(_SPEED_CAP, room / (num_frames - 1))


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(`float32 [size, size, 3]` smooth colour noise in 0..255, its base colour `float64 [3]`).

  Two octaves of cubic-interpolated uniform noise: a coarse 4 x 4 one in colour for large blotches and a
  finer grey one (a quarter of the size) for texture, so that the background is neither flat (trivial to
  segment) nor white noise (which no flow method could track). The fine detail is in brightness only, as
  in natural images, where JPEG's 4:2:0 chroma subsampling keeps it.
  """
  base = rng.uniform(*_BASE_RANGE, 3)
  coarse = rng.uniform(-1.0, 1.0, (4, 4, 3)).astype(np.float32)
  fine = rng.uniform(-1.0, 1.0, (size // 4, size // 4)).astype(np.float32)
  coarse = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
  fine = cv2.resize(fine, (size, size), interpolation=cv2.INTER_CUBIC)
  image = base.astype(np.float32) + 48.0 * coarse + 16.0 * fine[..., None]
  return np.clip(image, 0.0, 255.0).astype(np.float32), base


def _signed_distance(shape: str, x: np.ndarray, y: np.ndarray, radius: float, angle: float) -> np.ndarray:
  """Signed distance in pixels from points (x, y) relative to the shape's centre to its outline (< 0 inside).

  Disk: exact. Square and triangle (regular polygons of circumradius `radius`, rotated by `angle`): the
  largest signed distance to the lines of the sides, exact inside and along the sides, slightly short of
  the true distance outside a corner, which only rounds the corners by a fraction of a pixel.
  """
  if shape == "disk":
    return np.hypot(x, y) - radius
  sides = {"square": 4, "triangle": 3}[shape]
  apothem = radius * math.cos(math.pi / sides)
  normals = angle + math.pi * (2 * np.arange(sides) + 1) / sides
  distance = np.full(np.broadcast_shapes(x.shape, y.shape), -np.inf)
  for normal in normals:
    distance = np.maximum(distance, x * math.cos(normal) + y * math.sin(normal) - apothem)
  return distance


@dataclasses.dataclass(frozen=True)
class _Drawn:
  """A video with what it was drawn from, for tests and for inspection.

  Attributes:
    frames: `uint8 [T, size, size, 3]`, what `make_video` returns.
    background: `float32 [size, size, 3]`, the background before the shape and the noise.
    centres: `float64 [T, 2]`, the (x, y) centre of the shape in each frame, pixel centres at integers.
    radius: circumradius of the shape in pixels.
    speed: pixels per frame.
  """
  frames: np.ndarray
  background: np.ndarray
  centres: np.ndarray
  radius: float
  speed: float


def make_video(label: int, rng: np.random.Generator, num_frames: int = 16, size: int = 64,
               noise: float = DEFAULT_NOISE) -> np.ndarray:
  """One synthetic video of class `label`, deterministic given the state of `rng`.

  The shape's colour is uniform among those at least 96 RGB levels away from the background's base colour
  and at least 48 grey levels brighter; its circumradius R is uniform in [size/6, size/4], its orientation
  uniform, its speed v uniform in [0.5, 1] x the fastest speed whose path fits in the frame (`_max_speed`:
  0.97..1.93 px/frame for 16 frames of 64 x 64).
  Frame t (0-based) shows it at `c + v (t - (T-1)/2)` along the axis of motion and at `c' + v (k - (T-1)/2)`
  across it, with c, c' uniform such that the whole path stays inside the frame and k a uniform integer in
  0..T-1. The video is drawn for the positive direction ("right": +x, "down": +y) and reversed in time for
  "left" and "up": the same `rng` state gives exact time reversals, `make_video(left) ==
  make_video(right)[::-1]`.

  Args:
    label: 0..11, an index of `CLASSES`.
    rng: the source of every random choice; `make_video` draws the same numbers for every label, so that
      labels differ only in what they mean.
    num_frames: T >= 2.
    size: frame side in pixels, >= 16.
    noise: standard deviation of the Gaussian noise added to every pixel of every frame (0 for none), in
      grey levels, so that no two frames are identical, as in a camera. Small: it costs JPEG accuracy.

  Returns:
    `uint8 [T, size, size, 3]` RGB frames.

  Raises:
    ValueError: `label` is not in 0..11, `rng` is not a `np.random.Generator`, `num_frames` < 2, `size` < 16,
      or `noise` is negative or not finite.
  """
  return _draw(label, rng, num_frames, size, noise).frames


def _draw(label: int, rng: np.random.Generator, num_frames: int = 16, size: int = 64,
          noise: float = DEFAULT_NOISE) -> _Drawn:
  """`make_video`, with the background and the path it drew (same arguments, same errors)."""
  label = _check_label(label)
  if not isinstance(rng, np.random.Generator):
    raise ValueError(f"rng is a {type(rng).__name__}; expected a np.random.Generator "
                     "(np.random.default_rng(seed))")
  num_frames, size = _check_geometry(num_frames, size)
  noise = _check_noise(noise)
  shape, direction = CLASSES[label].split("_")

  # Every draw happens in the same order for every label (the shape's angle is drawn even for a disk), so
  # that labels sharing an rng state differ only in shape and direction.
  background, base = _background(rng, size)
  colour = rng.uniform(0.0, 255.0, 3)
  for _ in range(1000):  # rejection sampling: a colour that stands out from the background, brighter
    if np.linalg.norm(colour - base) >= _MIN_CONTRAST and _LUMA @ (colour - base) >= _MIN_LUMA_CONTRAST:
      break
    colour = rng.uniform(0.0, 255.0, 3)
  radius = rng.uniform(*_RADIUS_RANGE) * size
  angle = rng.uniform(0.0, 2.0 * math.pi)
  speed = rng.uniform(*_SPEED_RANGE) * _max_speed(num_frames, size)
  half_path = speed * (num_frames - 1) / 2
  low, high = radius + _MARGIN + half_path, (size - 1) - radius - _MARGIN - half_path
  centre_along, centre_across = rng.uniform(low, high, 2)
  across_step = rng.integers(0, num_frames)
  frame_noise = rng.normal(0.0, noise, (num_frames, size, size, 3)) if noise > 0 else 0.0

  steps = np.arange(num_frames) - (num_frames - 1) / 2
  along = centre_along + speed * steps  # float64 [T], the positive direction
  # Across the path, the shape sits where it would be at a random frame k, so that the (x, y) of a random
  # frame has the same law for horizontal and vertical motion: with the same rng, the centres of a vertical
  # video are those of the horizontal one with x and y swapped.
  across = np.full(num_frames, centre_across + speed * (across_step - (num_frames - 1) / 2))
  x, y = (along, across) if direction in ("left", "right") else (across, along)
  grid = np.arange(size, dtype=np.float64)  # pixel centres at integer coordinates
  distance = _signed_distance(shape, grid[None, None, :] - x[:, None, None],
                              grid[None, :, None] - y[:, None, None], radius, angle)
  # Area coverage of each pixel by the shape, linear across a one-pixel band around the outline: the
  # anti-aliasing that makes sub-pixel motion visible.
  coverage = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # [T, H, W, 1]
  frames = background * (1.0 - coverage) + colour * coverage + frame_noise
  frames = np.clip(np.floor(frames + 0.5), 0, 255).astype(np.uint8)
  centres = np.stack([x, y], axis=-1)
  if direction in ("left", "up"):
    frames, centres = np.ascontiguousarray(frames[::-1]), np.ascontiguousarray(centres[::-1])
  return _Drawn(frames, background, centres, float(radius), float(speed))


def make_dataset(num_per_class: int, seed: int, num_frames: int = 16, size: int = 64,
                 noise: float = DEFAULT_NOISE) -> Iterator[tuple[str, int, np.ndarray]]:
  """`num_per_class` videos of each class, class by class: (name, label, `uint8 [T, size, size, 3]`).

  Names are "<class>/video_<i:04d>", e.g. "disk_left/video_0003". Video i of class `label` is drawn from its
  own generator, `np.random.default_rng([seed, label, i])`, so it does not depend on `num_per_class` or on
  the other videos; different seeds give different videos (use one seed for training, another for test).

  Raises:
    TypeError: `num_per_class` or `seed` is not an int.
    ValueError: `num_per_class` < 1, `seed` < 0, or a `make_video` argument is invalid.
  """
  check_int(num_per_class, "num_per_class")
  check_int(seed, "seed", low=0)
  _check_geometry(num_frames, size)  # fail before yielding anything
  _check_noise(noise)
  for label, name in enumerate(CLASSES):
    for i in range(num_per_class):
      rng = np.random.default_rng([int(seed), label, i])
      yield f"{name}/video_{i:04d}", label, make_video(label, rng, num_frames, size, noise)


def split_seed(seed: int, split: str) -> int:
  """The `make_dataset` seed of `split` ("train" or "test") for a config with `seed`.

  Hashed (`np.random.SeedSequence`) rather than `seed` and `seed + 1`, so that no split of one config is a
  split of the config with the next seed.

  Raises:
    TypeError: `seed` is not an int.
    ValueError: `seed` < 0, or `split` is neither "train" nor "test".
  """
  check_int(seed, "seed", low=0)
  if split not in ("train", "test"):
    raise ValueError(f"split is {split!r}; expected 'train' or 'test'")
  return int(np.random.SeedSequence([int(seed), ("train", "test").index(split)]).generate_state(1)[0])


@dataclasses.dataclass
class SyntheticMotionConfig(tfds.core.BuilderConfig):
  """How many videos of which size, from which seed, with which optical flow.

  Attributes:
    num_per_class_train, num_per_class_test: videos per class in each split.
    num_frames: T frames per video (T - 1 flow images).
    size: frame side in pixels.
    seed: the train and test videos come from `split_seed(seed, "train")` and `split_seed(seed, "test")`.
    flow: "farneback" (fast, the default), "dis", "tvl1" (the paper's, by the JAX op `arp_jax.flow.tvl1`)
      or "tvl1_opencv" (OpenCV's DualTVL1, slower).
    noise: per-pixel Gaussian noise of every frame, in grey levels.
  """
  num_per_class_train: int = 40
  num_per_class_test: int = 40
  num_frames: int = 16
  size: int = 64
  seed: int = 0
  flow: str = "farneback"
  noise: float = DEFAULT_NOISE

  def __post_init__(self):
    for field in ("num_per_class_train", "num_per_class_test"):
      check_int(getattr(self, field), field)
    _check_geometry(self.num_frames, self.size)
    check_int(self.seed, "seed", low=0)
    if self.flow not in flow_lib.FLOW_METHODS:
      raise ValueError(f"flow is {self.flow!r}; expected one of {flow_lib.FLOW_METHODS}")
    _check_noise(self.noise)


class SyntheticMotion(LocalBuilder):
  """The synthetic motion benchmark as frames + flow, with the features of `ucf101_frames`."""

  VERSION = tfds.core.Version("3.0.0")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "2.0.0": "Shapes brighter than the background, 16 frames, 40 test videos per class, TV-L1 "
                            "flow (default).",
                   "3.0.0": "80 training videos per class (default): the same first 40 and test videos."}
  BUILDER_CONFIGS = [
      SyntheticMotionConfig(
          name="default", description="12 classes x (80 train + 40 test) videos of 16 frames of 64 x 64, "
                                      "TV-L1 flow.",
          num_per_class_train=80, flow="tvl1"),
      # For tests and smoke runs (`runlocal`): a few seconds to build.
      SyntheticMotionConfig(
          name="tiny", description="12 classes x (2 train + 1 test) videos of 16 frames of 32 x 32, "
                                   "Farneback flow.",
          num_per_class_train=2, num_per_class_test=1, num_frames=16, size=32),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, *, workers: int | None = None, **kwargs):
    """`workers`: threads preparing videos (rendering aside: flow, JPEG), default one per core."""
    self.workers = check_int(workers, "workers") if workers is not None else os.cpu_count() or 1
    super().__init__(**kwargs)

  @property
  def options(self) -> ProcessOptions:
    """How the frames and flow are encoded: those of the UCF101 builders, with the config's flow method."""
    return ProcessOptions(flow=self.builder_config.flow)

  def _info(self):
    config = self.builder_config
    options = self.options
    return tfds.core.DatasetInfo(
        builder=self,
        description="Synthetic motion: one shape (disk, square, triangle) moving left, right, up or down over "
                    "a static textured background; the direction is told only by the order of the frames. "
                    "JPEG frames and quantised optical flow (bound 20 px, 128 = no motion), as ucf101_frames.",
        features=frames_features(tfds.features.ClassLabel(names=list(CLASSES))),
        # The keys of the UCF101 builders' metadata (short_side None: frames are made at their size), and
        # what makes the videos.
        metadata=tfds.core.MetadataDict(
            flow=options.flow_identity, flow_bound=options.bound, short_side=None, jpeg_quality=options.quality,
            num_frames=config.num_frames, size=config.size, seed=config.seed, noise=float(config.noise)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    config = self.builder_config
    return {"train": self._generate_examples(config.num_per_class_train, split_seed(config.seed, "train")),
            "test": self._generate_examples(config.num_per_class_test, split_seed(config.seed, "test"))}

  def _generate_examples(self, num_per_class: int, seed: int):
    config = self.builder_config
    options = self.options

    def example(video):
      name, label, frames = video
      flow_x, flow_y = encode_flow(frames, options)
      return name, dict(name=name, label=label, fps=np.float32(FPS), num_frames=np.int32(len(frames)),
                        frames=[encode_jpeg(frame, options.quality) for frame in frames],
                        flow_x=list(flow_x), flow_y=list(flow_y))

    # Threads preparing whole videos: on a CPU, XLA runs one video's TV-L1 on one core (its ops on 64 x 64
    # frames are too small to split), so only concurrent videos use the others (TV-L1 129 -> 218 pairs/s
    # on 2 cores; libjpeg releases the GIL too). The examples keep their order: the dataset is the same.
    videos = make_dataset(num_per_class, seed, config.num_frames, config.size, config.noise)
    yield from map_in_order(example, videos, workers=self.workers)


def build(data_dir, config: SyntheticMotionConfig | str | None = None,
          workers: int | None = None) -> SyntheticMotion:
  """Builds (or finds already built) the dataset under `data_dir` as array_record; returns the builder.

  Args:
    data_dir: the TFDS data folder; the dataset goes to `data_dir/synthetic_motion/<config>/<VERSION>`.
    config: None or "default" for the default config, or a `SyntheticMotionConfig` (give it its own name:
      a dataset is found again by its config name).
    workers: threads preparing videos (default: one per core); the dataset does not depend on it.

  Read it back with `tfds.data_source("synthetic_motion/<config name>", data_dir=data_dir)`.

  Raises:
    ValueError: `config` is neither None, a config name of the builder nor a `SyntheticMotionConfig`.
  """
  if config is None:
    config = SyntheticMotion.DEFAULT_CONFIG_NAME
  if isinstance(config, str):
    if config not in SyntheticMotion.builder_configs:
      raise ValueError(f"config is {config!r}; expected one of {sorted(SyntheticMotion.builder_configs)} "
                       "or a SyntheticMotionConfig")
  elif not isinstance(config, SyntheticMotionConfig):
    raise ValueError(f"config is a {type(config).__name__}; expected None, a config name or a "
                     "SyntheticMotionConfig")
  builder = SyntheticMotion(config=config, data_dir=os.fspath(data_dir), file_format="array_record",
                            workers=workers)
  builder.download_and_prepare()
  return builder


def add_arguments(parser) -> None:
  """`arp-jax synthetic-data`: --data-dir, --variant."""
  parser.add_argument("--data-dir", required=True,
                      help="the TFDS data folder; the dataset goes to DATA_DIR/synthetic_motion/VARIANT")
  parser.add_argument("--variant", default=SyntheticMotion.DEFAULT_CONFIG_NAME,
                      choices=sorted(SyntheticMotion.builder_configs),
                      help="default: 12 classes x (80 train + 40 test) videos; tiny: a few, for smoke runs")
  parser.add_argument("--workers", type=cli.positive_int, default=None,
                      help="threads preparing videos (default: one per core); the dataset does not depend "
                           "on it")


def run(args) -> int:
  """Builds the synthetic dataset (or finds it built) and prints where it is."""
  builder = build(args.data_dir, args.variant, workers=args.workers)
  print(f"synthetic_motion/{args.variant} prepared in {builder.data_dir}")
  return 0


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  # The dispatcher imports this module by name: let it find this one, since a second import would
  # register the TFDS builder `synthetic_motion` twice (an error).
  sys.modules.setdefault("data_prep.synthetic", sys.modules["__main__"])
  sys.exit(cli.main(["synthetic-data", *sys.argv[1:]]))
