"""TFDS builders: UCF101 and HMDB51 as frames + flow, and as precomputed dynamic images.

    ucf101_frames/split{1,2,3}, hmdb51_frames/split{1,2,3}
        per video: name, label, fps, num_frames, frames (JPEG RGB), flow_x, flow_y (grey JPEG, quantised
        with bound 20 as in the paper; T - 1 of each).
    ucf101_dynamic_images/split{k}_{rgb,flow}_{single,w10s6}, hmdb51_dynamic_images/...
        per video: name, label, fps, num_frames, the dynamic images (one, or one per window of tau frames
        every s, training windows from frame 3 and test windows from frame 1 as the reference samples them),
        as 8-bit JPEG with the float range of each (`low`, `high`; see `data_prep.dynamic`).
    ucf101_dynamic_images/split{k}_rgb_single_{rp,mean,max,mhi}, hmdb51_dynamic_images/...
        the other summary images of Tables 1 and 2, one per video: exact rank pooling, mean image, max
        image, motion history image (same features).

Files are array_record, written and read without TensorFlow; training reads them with random access:

    import data_prep.datasets  # registers the builders
    source = tfds.data_source("ucf101_frames/split1", data_dir=DATA_DIR)["train"]

Videos are read from a `manual_dir` holding the archives as extracted (`dataset_layout`). The per-video
work (`data_prep.process.prepare_video`) goes through a `VideoCache` under `<data_dir>/arp_jax_cache`,
shared by the three splits, so each video is decoded and its flow computed once. `python -m
data_prep.build` fills that cache in parallel first; called directly (`tfds.builder(...).download_and_prepare`)
a builder prepares videos itself, one at a time, or under Apache Beam when a Beam runner or options are
given in the `DownloadConfig`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import sys

import numpy as np
import tensorflow_datasets as tfds

from arp_jax.jpeg import decode_jpeg, encode_jpeg
from arp_jax.video import decode
from data_prep import splits as splits_lib
from data_prep.cache import VideoCache
from data_prep.dynamic import SUMMARIES, VALUE_RANGES, summary_images, to_uint8
from data_prep.process import ProcessOptions, prepare_into_cache

# Where each dataset keeps its videos and split files under `manual_dir`, first match wins: the archives'
# own folder names, then the manual_dir itself for the videos.
_LAYOUTS = {
    "ucf101": (("UCF-101", "."), ("ucfTrainTestlist",)),
    "hmdb51": (("hmdb51", "."), ("testTrainMulti_7030_splits", "hmdb51_testTrainMulti_7030_splits")),
}

CACHE_FOLDER = "arp_jax_cache"


def dataset_layout(dataset: str, manual_dir) -> tuple[Path, Path]:
  """(video root holding `<class>/<video>.avi`, split folder) of `dataset` under `manual_dir`.

  UCF101: `manual_dir/UCF-101/<Class>/v_*.avi` and `manual_dir/ucfTrainTestlist/`.
  HMDB51: `manual_dir/<class>/*.avi` (or `manual_dir/hmdb51/<class>/`) and
  `manual_dir/testTrainMulti_7030_splits/`.

  Raises:
    FileNotFoundError: `manual_dir` or the split folder does not exist (the message shows the layout).
  """
  dataset = splits_lib._check_dataset(dataset)  # pylint: disable=protected-access
  manual_dir = Path(os.fspath(manual_dir)).expanduser()
  video_names, split_names = _LAYOUTS[dataset]
  expected = (f"expected {dataset} extracted as {video_names[0]}/<class>/<video>.avi and "
              f"{split_names[0]}/ inside it")
  if not manual_dir.is_dir():
    raise FileNotFoundError(f"manual_dir {str(manual_dir)!r} does not exist; {expected}")
  split_dir = next((manual_dir / n for n in split_names if (manual_dir / n).is_dir()), None)
  if split_dir is None:
    raise FileNotFoundError(f"no split folder ({' or '.join(split_names)}) in {str(manual_dir)!r}; {expected}")
  video_root = next(manual_dir / n for n in video_names if (manual_dir / n).is_dir())
  return video_root, split_dir


def cache_for(data_dir, dataset: str, options: ProcessOptions) -> VideoCache:
  """The cache of prepared videos that every builder of `dataset` with `options` shares."""
  return VideoCache(Path(os.fspath(data_dir)) / CACHE_FOLDER / dataset / options.tag)


def frames_features(label: tfds.features.ClassLabel) -> tfds.features.FeaturesDict:
  """The features of every frames dataset (UCF101, HMDB51, synthetic_motion), so one pipeline reads all."""
  return tfds.features.FeaturesDict({
      "name": tfds.features.Text(),
      "label": label,
      "fps": tfds.features.Scalar(np.float32),
      "num_frames": tfds.features.Scalar(np.int32),
      "frames": jpeg_sequence(3),
      "flow_x": jpeg_sequence(1),
      "flow_y": jpeg_sequence(1),
  })


def _label_feature(dataset: str) -> tfds.features.ClassLabel:
  num_classes = {"ucf101": 101, "hmdb51": len(splits_lib.HMDB51_CLASSES)}[dataset]
  return tfds.features.ClassLabel(num_classes=num_classes)


def jpeg_sequence(channels: int) -> tfds.features.Sequence:
  """A feature holding a list of JPEG images with `channels` channels (3: RGB, 1: grey), any size."""
  return tfds.features.Sequence(tfds.features.Image(shape=(None, None, channels), encoding_format="jpeg"))


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder of local files (nothing downloads): its own log line instead of TFDS's "Downloading and
  preparing dataset Unknown size (download: Unknown size, ...)", and progress bars only on a terminal
  (in a log file they are cursor codes once a second)."""

  def download_and_prepare(self, *args, **kwargs):
    tfds.display_progress_bar(sys.stderr.isatty())
    return super().download_and_prepare(*args, **kwargs)

  def _log_download_bytes(self) -> None:
    print(f"Writing {self.info.full_name} into {os.fspath(self.data_dir_root)!r}")

  def _log_download_done(self) -> None:
    pass  # the line above and the caller's report say it all


class _VideoBuilder(LocalBuilder, skip_registration=True):
  """What the frames and dynamic-image builders share: the manual_dir layout, splits, cache and Beam."""

  DATASET = ""  # "ucf101" or "hmdb51"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  def __init__(self, *, options: ProcessOptions | None = None, **kwargs):
    """`options` say how videos are prepared (default `ProcessOptions()`: TV-L1 flow, original size)."""
    self.options = options or ProcessOptions()
    self.skipped: dict[str, str] = {}  # video -> reason, filled while generating (not under Beam)
    self.written: list[str] = []  # the videos written, filled while generating (not under Beam)
    self._use_beam = False
    super().__init__(**kwargs)

  @property
  def MANUAL_DOWNLOAD_INSTRUCTIONS(self):  # pylint: disable=invalid-name
    video_names, split_names = _LAYOUTS[self.DATASET]
    return (f"Download and extract {self.DATASET} into manual_dir: the videos as "
            f"{video_names[0]}/<class>/<video>.avi and the official split files as {split_names[0]}/.")

  @property
  def cache(self) -> VideoCache:
    return cache_for(self.data_dir_root, self.DATASET, self.options)

  def build_metadata(self) -> tfds.core.MetadataDict:
    """How the videos were prepared, saved with the dataset (metadata.json) for readers and rebuilds; the
    flow as its identity (`ProcessOptions.flow_identity`), so that a dataset of another flow is refused."""
    return tfds.core.MetadataDict(flow=self.options.flow_identity, flow_bound=self.options.bound,
                                  short_side=self.options.short_side, jpeg_quality=self.options.quality)

  def _download_and_prepare(self, dl_manager, download_config):  # pylint: disable=arguments-renamed
    # TFDS runs a builder under Beam only when `_generate_examples` returns a Beam transform; return one
    # exactly when the caller asked for Beam (`tfds build --beam_pipeline_options=...`, DownloadConfig).
    self._use_beam = download_config.beam_runner is not None or download_config.beam_options is not None
    self.skipped, self.written = {}, []
    super()._download_and_prepare(dl_manager, download_config)
    # TFDS saves the info after this returns. Which videos the dataset holds lets `data_prep.build` see that
    # the videos on disk changed and rebuild; `left_out`: prepared videos this builder could not use (a
    # video with no flow, say), so that they do not count as new next time. Unknown under Beam.
    metadata = self.info.metadata
    for key in ("videos", "left_out"):
      metadata.pop(key, None)
    if not self._use_beam:
      cache = self.cache
      metadata["videos"] = sorted(self.written)
      metadata["left_out"] = {video: reason for video, reason in sorted(self.skipped.items())
                              if cache.status(video) == "done"}

  def _split_generators(self, dl_manager):
    video_root, split_dir = dataset_layout(self.DATASET, dl_manager.manual_dir)
    split = splits_lib.load_split(self.DATASET, split_dir, self.builder_config.split)
    label = self.info.features["label"]
    if not label.names or label.names[0] == "0":
      label.names = list(split.classes)
    return {"train": self._generate_examples(split.train, video_root, True),
            "test": self._generate_examples(split.test, video_root, False)}

  def _generate_examples(self, entries, video_root, training: bool):
    example_fn = _ExampleFn(self, str(video_root), training)
    if self._use_beam:
      import apache_beam as beam  # pylint: disable=import-outside-toplevel  # the optional [beam] extra
      return beam.Create(list(entries)) | beam.FlatMap(example_fn)
    return self._local_examples(entries, example_fn)

  def _local_examples(self, entries, example_fn):
    for entry in entries:
      try:
        yield from example_fn(entry, raise_skip=True)
      except _Skip as skip:
        self.skipped[entry.video] = str(skip)
      else:
        self.written.append(entry.video)

  def _example(self, entry, video_root: str, training: bool) -> dict:
    raise NotImplementedError


class _Skip(Exception):
  """A video that is left out of the dataset, with the reason."""


@dataclasses.dataclass
class _ExampleFn:
  """`entry -> [(key, example)]` (empty for a skipped video): a picklable callable for Beam workers."""
  builder: _VideoBuilder
  video_root: str
  training: bool

  def __call__(self, entry, raise_skip: bool = False):
    try:
      return [(entry.video, self.builder._example(entry, self.video_root, self.training))]  # pylint: disable=protected-access
    except _Skip:
      if raise_skip:
        raise
      return []

  def __getstate__(self):
    # Beam pickles this for its workers: send the builder's recipe, not the builder.
    builder = self.builder
    config = builder.builder_config
    # A registered config travels by name: TFDS refuses a copy of it passed as an object.
    config = config.name if config.name in builder.builder_configs else config
    return dict(cls=type(builder), config=config, data_dir=os.fspath(builder.data_dir_root),
                options=builder.options, video_root=self.video_root, training=self.training)

  def __setstate__(self, state):
    self.builder = state["cls"](config=state["config"], data_dir=state["data_dir"], options=state["options"],
                                file_format="array_record")
    self.video_root, self.training = state["video_root"], state["training"]


def _prepared(builder: _VideoBuilder, entry, video_root: str):
  """The cached `VideoRecord` of `entry`, prepared now if needed; _Skip if missing or unusable."""
  cache = builder.cache
  for attempt in range(2):
    outcome = prepare_into_cache(cache, video_root, entry.video, builder.options)
    if outcome.status in ("failed", "missing"):
      raise _Skip(outcome.detail)
    try:
      return cache.load(entry.video)
    except ValueError:  # a damaged entry (disk trouble: writes are atomic): prepare the video again, once
      if attempt:
        raise
      cache.forget(entry.video)


@dataclasses.dataclass
class FramesConfig(tfds.core.BuilderConfig):
  split: int = 1


class _FramesBuilder(_VideoBuilder, skip_registration=True):
  """Frames and flow of every video of one official split."""

  BUILDER_CONFIGS = [FramesConfig(name=f"split{s}", split=s, description=f"Official split {s}.")
                     for s in splits_lib.SPLITS]

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"{self.DATASET} videos as JPEG frames and quantised optical flow (TSN/denseflow "
                    "convention, bound 20 px, 128 = no motion).",
        features=frames_features(_label_feature(self.DATASET)),
        metadata=self.build_metadata(),
        homepage="https://www.crcv.ucf.edu/data/UCF101.php" if self.DATASET == "ucf101"
        else "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/",
    )

  def _example(self, entry, video_root: str, training: bool) -> dict:
    record = _prepared(self, entry, video_root)
    return dict(name=entry.video, label=entry.label, fps=np.float32(record.fps),
                num_frames=np.int32(record.num_frames), frames=list(record.frames),
                flow_x=list(record.flow_x), flow_y=list(record.flow_y))


@dataclasses.dataclass
class DynamicImagesConfig(tfds.core.BuilderConfig):
  """split 1..3; modality "rgb" or "flow"; window None for one image per video, else tau frames every
  `stride`, from the 0-based frame `start_train` in training and `start_test` at test; method one of
  `data_prep.dynamic.SUMMARIES` ("arp": dynamic images)."""
  split: int = 1
  modality: str = "rgb"
  window: int | None = None
  stride: int | None = None
  start_train: int = 2  # frame 3 (1-based), the reference's training start
  start_test: int = 0
  method: str = "arp"

  def __post_init__(self):
    if self.modality not in ("rgb", "flow"):
      raise ValueError(f"modality is {self.modality!r}; expected 'rgb' or 'flow'")
    if self.method not in SUMMARIES:
      raise ValueError(f"method is {self.method!r}; expected one of {SUMMARIES}")


# The summary images of Tables 1 and 2 beside the dynamic image (RGB, one per video).
_BASELINES = {"rp": "One dynamic image per video by exact rank pooling in section 5.3's order (square root, "
                    "time-varying mean, one SVR per channel, C = 10).",
              "mean": "One mean image per video.", "max": "One max image per video.",
              "mhi": "One motion history image per video (grey, repeated over the channels)."}


# The rp images changed with their order of operations: a dataset prepared at 1.0.0 must be rebuilt.
_RP_VERSION = dict(version="1.1.0", release_notes={
    "1.0.0": "First release (exact rank pooling in VideoDarwin's order: mean, signed square root, L2, one SVR).",
    "1.1.0": "Exact rank pooling in section 5.3's order (arp_jax.pooling.bucketed.RP_OPTIONS)."})


def _dynamic_configs():
  configs = []
  for split in splits_lib.SPLITS:
    for modality in ("rgb", "flow"):
      configs.append(DynamicImagesConfig(name=f"split{split}_{modality}_single", split=split, modality=modality,
                                         start_train=0, description="One dynamic image per video."))
      configs.append(DynamicImagesConfig(
          name=f"split{split}_{modality}_w10s6", split=split, modality=modality, window=10, stride=6,
          description="Windows of 10 frames, stride 6 (Table 3's best), the last one padded."))
    for method, description in _BASELINES.items():
      configs.append(DynamicImagesConfig(name=f"split{split}_rgb_single_{method}", split=split, modality="rgb",
                                         start_train=0, method=method, description=description,
                                         **(_RP_VERSION if method == "rp" else {})))
  return configs


class _DynamicImagesBuilder(_VideoBuilder, skip_registration=True):
  """Dynamic images (RGB) or dynamic optical flow (flow) of every video of one split."""

  BUILDER_CONFIGS = _dynamic_configs()

  def _info(self):
    config = self.builder_config
    if config.modality == "rgb":
      images = {"images": jpeg_sequence(3)}
    else:
      images = {"images_x": jpeg_sequence(1), "images_y": jpeg_sequence(1)}
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"{self.DATASET} precomputed summary images of the {config.modality} frames "
                    f"({config.description}), scaled to 8 bits (dynamic images: min-max per image); "
                    "value = low + q / 255 * (high - low).",
        features=tfds.features.FeaturesDict({
            "name": tfds.features.Text(),
            "label": _label_feature(self.DATASET),
            "fps": tfds.features.Scalar(np.float32),
            "num_frames": tfds.features.Scalar(np.int32),
            **images,
            "low": tfds.features.Sequence(np.float32),
            "high": tfds.features.Sequence(np.float32),
        }),
        metadata=self.build_metadata(),
    )

  def _example(self, entry, video_root: str, training: bool) -> dict:
    config = self.builder_config
    if config.modality == "rgb":
      try:
        video = decode(f"{video_root}/{entry.video}", short_side=self.options.short_side)
      except (ValueError, FileNotFoundError) as error:
        raise _Skip(f"{type(error).__name__}: {error}") from None
      frames, fps, num_frames = video.frames, video.fps, len(video.frames)
    else:
      record = _prepared(self, entry, video_root)
      if not record.flow_x:
        raise _Skip("no flow (a single frame, or prepared with flow 'none')")
      frames = np.stack([np.stack([decode_jpeg(x, grey=True), decode_jpeg(y, grey=True)], -1)
                         for x, y in zip(record.flow_x, record.flow_y)])
      fps, num_frames = record.fps, record.num_frames
    start = config.start_train if training else config.start_test
    if config.window is None:
      pooled = summary_images(frames, config.method)
    else:
      pooled = summary_images(frames, config.method, config.window, config.stride, min(start, len(frames) - 1))
    images, low, high = to_uint8(pooled, VALUE_RANGES.get(config.method))
    if config.modality == "rgb":
      encoded = {"images": [encode_jpeg(image, self.options.quality) for image in images]}
    else:
      encoded = {"images_x": [encode_jpeg(image[..., 0], self.options.quality) for image in images],
                 "images_y": [encode_jpeg(image[..., 1], self.options.quality) for image in images]}
    return dict(name=entry.video, label=entry.label, fps=np.float32(fps), num_frames=np.int32(num_frames),
                low=low, high=high, **encoded)


class Ucf101Frames(_FramesBuilder):
  DATASET = "ucf101"


class Hmdb51Frames(_FramesBuilder):
  DATASET = "hmdb51"


class Ucf101DynamicImages(_DynamicImagesBuilder):
  DATASET = "ucf101"


class Hmdb51DynamicImages(_DynamicImagesBuilder):
  DATASET = "hmdb51"


BUILDERS = {
    ("ucf101", "frames"): Ucf101Frames, ("hmdb51", "frames"): Hmdb51Frames,
    ("ucf101", "dynamic_images"): Ucf101DynamicImages, ("hmdb51", "dynamic_images"): Hmdb51DynamicImages,
}
