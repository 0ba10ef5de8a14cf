"""One command per dataset: video archives -> TFDS datasets of frames, flow and dynamic images.

    arp-jax build --dataset ucf101 --manual_dir ~/ucf101 --data_dir ~/tensorflow_datasets \\
        [--split 1] [--flow tvl1|tvl1_opencv|farneback|dis|none] [--workers N] [--dynamic_images ...]

Two stages:
1. Every video of the split is prepared (decoded, flow computed, JPEG-encoded) into the cache under
   `<data_dir>/arp_jax_cache` (`data_prep.cache`), with a progress bar: with `--flow tvl1` (the JAX op, on
   the accelerator if any) `--workers` threads decode while the flow runs in batches in this process
   (`data_prep.batched_flow`), otherwise `--workers` processes prepare a video each. Each video is
   one atomically written file, so an interrupted build (Ctrl-C, a killed job) resumes where it stopped:
   nothing prepared is prepared again and no partial file is ever read. A video that cannot be prepared is
   recorded with the reason and skipped; it never aborts the build.
2. The TFDS builders (`data_prep.datasets`) write the array_record datasets from the cache: fast, and
   atomic too (TFDS writes into an `incomplete.*` folder and renames it when done). Each dataset lists its
   videos in its metadata: when the videos on disk changed since (a download completed, a corrupt file
   replaced: a failure older than its file is tried again), it is rewritten from the cache, and only the
   new videos are prepared.
Running the same command again changes nothing (idempotent). The closing report lists the videos
prepared, reused, skipped and why, the datasets rewritten and why, and the videos on disk that no split
file names; it is saved as JSON in `<data_dir>/arp_jax_reports/`.

SIGTERM stops a build as Ctrl-C does, and the worker processes end with the build even when it is killed
(kill -9). One build of a dataset at a time writes into a data_dir: a second one is refused at once with
exit code 2 (a lock file in the cache; it waits for nothing, run it again when the first is done). A
data_dir that cannot be written to is reported before any work.

With `--beam_pipeline_options` the first stage is skipped and TFDS runs the builders under Apache Beam
(`pip install arp_jax[beam]`): the same per-video function then runs on the Beam workers. A dataset written
under Beam does not list its videos, so a Beam rerun does not rewrite it when they change (a local run
does, once).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from pathlib import Path
import shutil
import signal
import sys
import time

try:
  import fcntl
except ImportError:  # Windows: no lock, as before
  fcntl = None

from arp_jax import cli
from arp_jax.flow.batching import DEFAULT_BATCH_PAIRS
from data_prep import splits as splits_lib
from data_prep.batched_flow import prepare_batched
from data_prep.process import FLOW_CHOICES, Outcome, ProcessOptions, prepare_into_cache
from data_prep.process_pool import prepare_in_processes

REPORT_FOLDER = "arp_jax_reports"
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg")
DYNAMIC_CHOICES = ("rgb_single", "rgb_w10s6", "flow_single", "flow_w10s6", "rgb_single_rp", "rgb_single_mean",
                   "rgb_single_max", "rgb_single_mhi")


def _progress(total: int, description: str):
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  # disable=None: a live bar on a terminal, silence in a log file.
  return tqdm(total=total, desc=description, unit="video", disable=None, dynamic_ncols=True)


class DataDirBusy(RuntimeError):
  """Another build of the same dataset holds the lock on the data_dir."""


def prepare_all(videos: list[str], video_root, cache, options: ProcessOptions, workers: int,
                batch_pairs: int = DEFAULT_BATCH_PAIRS) -> list[Outcome]:
  """Prepares every video of `videos` not yet in `cache`, `workers` at a time; one Outcome per video.

  Videos already prepared (or recorded as failed) are not touched. Flow "tvl1" (the JAX op): `workers`
  threads decode, the flow runs in batches of `batch_pairs` pairs in this process (`prepare_batched`);
  the other methods: `workers` processes (`prepare_in_processes`). On KeyboardInterrupt the workers are
  stopped and the interrupt propagates; what finished is kept and the rest is prepared on the next run.
  """
  outcomes, todo = {}, []
  for video in videos:
    if cache.status(video) is None:
      todo.append(video)
    else:
      outcomes[video] = prepare_into_cache(cache, video_root, video, options)  # reads the status only
  with _progress(len(todo), "preparing videos") as bar:
    if options.flow == "tvl1":
      prepared = prepare_batched(todo, video_root, cache, options, workers, batch_pairs)
    else:
      prepared = prepare_in_processes(todo, video_root, cache, options, workers)
    with contextlib.closing(prepared):  # interrupted between two videos: the workers stop all the same
      for outcome in prepared:
        outcomes[outcome.video] = outcome
        bar.update()
  return [outcomes[video] for video in videos]


def _remove_incomplete(builder) -> None:
  """Deletes the `incomplete.*` folders that a killed TFDS write leaves next to the dataset."""
  parent = Path(os.fspath(builder.data_path)).parent
  for stale in parent.glob("incomplete.*") if parent.is_dir() else ():
    shutil.rmtree(stale, ignore_errors=True)


def _check_existing(builder, options: ProcessOptions) -> None:
  """ValueError if the dataset exists but was built with other options (a build never mixes them)."""
  path = Path(os.fspath(builder.data_path)) / "metadata.json"
  if not path.is_file():
    return
  built = json.loads(path.read_text())
  wanted = dict(builder.build_metadata())
  differing = {k: (built.get(k), v) for k, v in wanted.items() if built.get(k) != v}
  if differing:
    raise ValueError(f"{builder.name}/{builder.builder_config.name} in {str(builder.data_dir_root)!r} was built "
                     f"with other options (built, asked): {differing}; use another --data_dir or the same options")


@contextlib.contextmanager
def _lock(data_dir: Path, dataset: str, wait: bool):
  """Holds `<data_dir>/arp_jax_cache/<dataset>.lock` while one build of `dataset` writes into `data_dir`.

  Two builds into one data_dir would both do all the work and delete each other's incomplete TFDS
  folders: the second one is refused (DataDirBusy) rather than made to wait an unknown time, unless
  `wait` (the processes of one training run, that each make sure the miniature dataset exists). The lock is
  the operating system's (flock), so a killed build never leaves it held. Creating the lock file is also
  the check that `data_dir` is writable, made before any work (ValueError).
  """
  from data_prep.datasets import CACHE_FOLDER  # pylint: disable=import-outside-toplevel
  path = data_dir / CACHE_FOLDER / f"{dataset}.lock"
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  except OSError as error:
    raise ValueError(f"data_dir {str(data_dir)!r} is not writable ({error.strerror or error}: "
                     f"{error.filename or path}); pass a folder you can write to") from None
  with file:
    if fcntl is not None:
      try:
        fcntl.flock(file, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "unknown"
        raise DataDirBusy(f"another build of {dataset} (pid {holder}) is writing into {str(data_dir)!r}; wait "
                          "for it to finish (it leaves a report), or pass another --data_dir") from None
      file.seek(0)
      file.truncate()
      file.write(str(os.getpid()))
      file.flush()
    yield


def _not_in_any_split(dataset: str, video_root: Path, split_dir: Path, named: set[str]) -> list[str]:
  """The video files under `video_root/<class>/` that no split file of `dataset` names (never used)."""
  named = set(named)
  for split in splits_lib.SPLITS:
    try:
      other = splits_lib.load_split(dataset, split_dir, split)
    except (ValueError, FileNotFoundError):  # another split's files may be absent: judge by those present
      continue
    named.update(e.video for e in other.train + other.test)
  on_disk = (p for p in video_root.glob("*/*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
  return sorted(v for v in (p.relative_to(video_root).as_posix() for p in on_disk) if v not in named)


def _videos_changed(builder, expected: set[str]) -> dict | None:
  """None if the dataset of `builder` does not exist or holds the `expected` videos, else what changed.

  The builders record the videos they wrote (and the prepared ones they had to leave out) in the
  dataset's metadata; a dataset from before that recorded nothing and counts as changed.
  """
  path = Path(os.fspath(builder.data_path)) / "metadata.json"
  if not path.is_file():
    return None
  built = json.loads(path.read_text())
  if "videos" not in built:
    return dict(added=sorted(expected), removed=[], note="the dataset did not list its videos")
  held = set(built["videos"]) | set(built.get("left_out", {}))
  if held == expected:
    return None
  return dict(added=sorted(expected - held), removed=sorted(held - expected))


def build_datasets(dataset: str, split: int, manual_dir, data_dir, options: ProcessOptions, dynamic=(),
                   workers: int = 1, beam_options=None, require_all: bool = False,
                   retry_failed: bool = False, wait_for_lock: bool = False,
                   batch_pairs: int = DEFAULT_BATCH_PAIRS) -> dict:
  """Both stages for one split (see the module docstring); returns the report (also saved as JSON).

  With `--flow tvl1` the flow runs in batches of `batch_pairs` consecutive pairs (`prepare_all`). With
  `wait_for_lock`, waits for another build of `dataset` into `data_dir` to finish instead of failing.

  Raises:
    ValueError, FileNotFoundError: a mistake in the arguments or the files (the message says which).
    DataDirBusy: another build of `dataset` is writing into `data_dir`.
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from data_prep import datasets  # pylint: disable=import-outside-toplevel  # registers the builders

  start = time.perf_counter()
  for name in dynamic:
    if name not in DYNAMIC_CHOICES:
      raise ValueError(f"dynamic image set {name!r} is unknown; expected some of {DYNAMIC_CHOICES}")
    if name.startswith("flow") and options.flow == "none":
      raise ValueError(f"dynamic image set {name!r} needs flow; pass --flow tvl1, tvl1_opencv, farneback or dis")
  video_root, split_dir = datasets.dataset_layout(dataset, manual_dir)
  data_dir = Path(os.fspath(data_dir)).expanduser()
  with _lock(data_dir, dataset, wait_for_lock):
    split_obj = splits_lib.load_split(dataset, split_dir, split)
    splits_lib.check_counts(split_obj, dataset, split)
    entries = split_obj.train + split_obj.test
    missing = splits_lib.require_videos(entries, video_root, fatal=require_all)
    unlisted = _not_in_any_split(dataset, video_root, split_dir, {e.video for e in entries})
    configs = [("frames", f"split{split}")] + [("dynamic_images", f"split{split}_{name}") for name in dynamic]
    builders = [datasets.BUILDERS[dataset, kind](config=config, data_dir=os.fspath(data_dir), options=options,
                                                 file_format="array_record") for kind, config in configs]
    for builder in builders:  # before any video is prepared: a dataset of other options is refused at once
      _check_existing(builder, options)

    cache = datasets.cache_for(data_dir, dataset, options)
    removed = cache.remove_partial()
    missing_set = set(missing)
    present = [e.video for e in entries if e.video not in missing_set]
    # A failure is forgotten when asked, or when its file changed since (a download completed, a file fixed).
    retried = [video for video in present if cache.status(video) == "failed"
               and (retry_failed or cache.failure_is_older(video, video_root / video))]
    for video in retried:
      cache.forget(video)
    outcomes = [] if beam_options else prepare_all(present, video_root, cache, options, workers, batch_pairs)

    usable = {o.video for o in outcomes if o.status in ("done", "cached")}
    for name, split_entries in (("train", split_obj.train), ("test", split_obj.test)):
      if outcomes and not usable & {e.video for e in split_entries}:
        raise ValueError(f"no usable {name} video of {dataset} split {split} under {str(video_root)!r} "
                         f"({len(missing)} of the split's videos are missing on disk); a dataset needs at least "
                         "one video in each of train and test")
    # What the builders will hold: every video of the split prepared in the cache.
    expected = {e.video for e in entries if cache.status(e.video) == "done"}
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir),
        beam_options=None if beam_options is None else _beam_pipeline_options(beam_options))
    built, rebuilt, skipped = {}, {}, {}
    for (_, config), builder in zip(configs, builders):
      _remove_incomplete(builder)
      changes = None if beam_options else _videos_changed(builder, expected)
      config_download = download_config
      if changes:  # rewritten from the cache: no video is prepared again
        rebuilt[f"{builder.name}/{config}"] = changes
        config_download = dataclasses.replace(download_config,
                                              download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
      builder.download_and_prepare(download_config=config_download)
      skipped.update(builder.skipped)
      built[f"{builder.name}/{config}"] = {name: info.num_examples for name, info in builder.info.splits.items()}

    if beam_options:  # the Beam workers prepared the videos: read what happened from the cache
      statuses = {v: cache.status(v) for v in present}
      outcomes = [Outcome(v, status, cache.failure(v) or "") for v, status in statuses.items() if status]
    failed = {o.video: o.detail for o in outcomes if o.status == "failed"}
    failed.update({video: reason for video, reason in skipped.items() if video not in missing_set})
    report = dict(
        dataset=dataset, split=split, options=dataclasses.asdict(options), videos_in_split=len(entries),
        prepared_now=sorted(o.video for o in outcomes if o.status == "done"),
        reused=sum(o.status == "cached" for o in outcomes), failed=failed, missing=missing,
        retried=sorted(retried), not_in_any_split=unlisted, partial_files_removed=len(removed), datasets=built,
        rebuilt=rebuilt, seconds=round(time.perf_counter() - start, 1))
    path = data_dir / REPORT_FOLDER / f"{dataset}_split{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)  # a killed build never leaves half a report
  report["report_path"] = str(path)
  return report


def _beam_pipeline_options(text: str):
  """`runner=DirectRunner,direct_num_workers=2` (the `tfds build` syntax) -> Beam PipelineOptions."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  flags = [f"--{item.strip()}" for item in text.split(",") if item.strip()]
  return PipelineOptions(flags)


def print_report(report: dict, file=sys.stdout) -> None:
  print(f"\n{report['dataset']} split {report['split']}: {report['videos_in_split']} videos in the split files; "
        f"{len(report['prepared_now'])} prepared now, {report['reused']} reused from the cache, "
        f"{len(report['failed'])} skipped as unusable, {len(report['missing'])} missing on disk "
        f"({report['seconds']} s).", file=file)
  for video, reason in list(report["failed"].items())[:20]:
    print(f"  skipped {video}: {reason}", file=file)
  if len(report["failed"]) > 20:
    print(f"  ... and {len(report['failed']) - 20} more", file=file)
  if report["missing"]:
    shown = ", ".join(report["missing"][:3])
    print(f"  missing: {shown}{' ...' if len(report['missing']) > 3 else ''}", file=file)
  if report["retried"]:
    print(f"  tried again (asked, or the file changed since it failed): {len(report['retried'])}", file=file)
  unlisted = report["not_in_any_split"]
  if unlisted:
    shown = ", ".join(unlisted[:3])
    print(f"  on disk but in no split file (not used): {len(unlisted)}: {shown}{' ...' if len(unlisted) > 3 else ''}",
          file=file)
  for name, counts in report["datasets"].items():
    line = f"  {name}: " + ", ".join(f"{split} {n}" for split, n in counts.items())
    changes = report["rebuilt"].get(name)
    if changes:
      line += (f" (dataset rebuilt: {len(changes['added'])} videos added, {len(changes['removed'])} removed"
               f"{'; ' + changes['note'] if 'note' in changes else ''})")
    print(line, file=file)
  print(f"  report: {report['report_path']}", file=file)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = __doc__.split("\n\n")[0]
  parser.formatter_class = argparse.RawDescriptionHelpFormatter
  parser.add_argument("--dataset", required=True, choices=splits_lib.DATASETS)
  parser.add_argument("--manual_dir", required=True, type=Path, help="the extracted archive and split files")
  parser.add_argument("--data_dir", required=True, type=Path, help="where the TFDS datasets are written")
  parser.add_argument("--split", default="1", choices=["1", "2", "3", "all"])
  parser.add_argument("--flow", default="tvl1", choices=FLOW_CHOICES,
                      help="tvl1: the paper's TV-L1 by the JAX op (default); tvl1_opencv: OpenCV's DualTVL1")
  parser.add_argument("--workers", type=cli.positive_int, default=os.cpu_count() or 1,
                      help="processes preparing videos in parallel, or with --flow tvl1 threads decoding them "
                           "(default: every core)")
  parser.add_argument("--flow_batch_pairs", type=cli.positive_int, default=DEFAULT_BATCH_PAIRS,
                      help="with --flow tvl1: consecutive frame pairs per batch of the flow (default: "
                           f"{DEFAULT_BATCH_PAIRS}; more fills a large accelerator, device memory grows with it)")
  parser.add_argument("--short_side", type=cli.positive_int, default=None,
                      help="resize frames so the shorter side has this many pixels (default: keep)")
  parser.add_argument("--jpeg_quality", type=cli.positive_int, default=95)
  parser.add_argument("--dynamic_images", default="",
                      help=f"comma-separated dynamic-image datasets to build too: {', '.join(DYNAMIC_CHOICES)}")
  parser.add_argument("--require_all", action="store_true",
                      help="fail when a video of the split files is missing on disk (default: report it)")
  parser.add_argument("--retry_failed", action="store_true", help="try videos that failed before again")
  parser.add_argument("--beam_pipeline_options", default=None,
                      help="run the builders under Apache Beam, e.g. 'runner=DirectRunner,direct_num_workers=4'")


def run(args: argparse.Namespace) -> int:
  """Builds the datasets and prints the report; 130 after Ctrl-C or SIGTERM (everything prepared is kept).

  A bad input (ValueError, FileNotFoundError) or a data_dir another build holds (`DataDirBusy`) is the
  user's to fix: `cli.main` prints it as one line and returns 2.
  """
  # SIGTERM (a job scheduler, `kill`) stops the build as Ctrl-C does: workers stopped, nothing half-written.
  previous = signal.signal(signal.SIGTERM, _interrupt)
  try:
    with cli.usage_errors(DataDirBusy):
      options = ProcessOptions(flow=args.flow, short_side=args.short_side, quality=args.jpeg_quality)
      dynamic = tuple(name.strip() for name in args.dynamic_images.split(",") if name.strip())
      for split in (1, 2, 3) if args.split == "all" else (int(args.split),):
        report = build_datasets(args.dataset, split, args.manual_dir, args.data_dir, options, dynamic,
                                args.workers, args.beam_pipeline_options, args.require_all, args.retry_failed,
                                batch_pairs=args.flow_batch_pairs)
        print_report(report)
  except KeyboardInterrupt:
    print("\ninterrupted: every video prepared so far is kept; run the same command again to resume",
          file=sys.stderr)
    return 130
  finally:
    signal.signal(signal.SIGTERM, previous)
  return 0


def _interrupt(signum, frame):  # pylint: disable=unused-argument
  raise KeyboardInterrupt


if __name__ == "__main__":
  sys.exit(cli.main(["build", *sys.argv[1:]]))
