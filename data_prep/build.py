"""One command per dataset: video archives -> TFDS datasets of frames, flow and dynamic images.

    python -m data_prep.build --dataset ucf101 --manual_dir ~/ucf101 --data_dir ~/tensorflow_datasets \\
        [--split 1] [--flow tvl1|farneback|dis|none] [--workers N] [--dynamic_images rgb_w10s6,flow_w10s6]

Two stages:
1. Every video of the split is prepared (decoded, flow computed, JPEG-encoded) by `--workers` processes
   into the cache under `<data_dir>/arp_jax_cache` (`data_prep.cache`), with a progress bar. Each video is
   one atomically written file, so an interrupted build (Ctrl-C, a killed job) resumes where it stopped:
   nothing prepared is prepared again and no partial file is ever read. A video that cannot be prepared is
   recorded with the reason and skipped; it never aborts the build.
2. The TFDS builders (`data_prep.datasets`) write the array_record datasets from the cache: fast, and
   atomic too (TFDS writes into an `incomplete.*` folder and renames it when done).
Running the same command again changes nothing (idempotent). The closing report lists the videos
prepared, reused, skipped and why, and is saved as JSON in `<data_dir>/arp_jax_reports/`.

With `--beam_pipeline_options` the first stage is skipped and TFDS runs the builders under Apache Beam
(`pip install arp_jax[beam]`): the same per-video function then runs on the Beam workers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
from pathlib import Path
import shutil
import sys
import time

from data_prep import splits as splits_lib
from data_prep.process import FLOW_CHOICES, Outcome, ProcessOptions, prepare_into_cache

REPORT_FOLDER = "arp_jax_reports"
DYNAMIC_CHOICES = ("rgb_single", "rgb_w10s6", "flow_single", "flow_w10s6", "rgb_single_rp", "rgb_single_mean",
                   "rgb_single_max", "rgb_single_mhi")


def _progress(total: int, description: str):
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  # disable=None: a live bar on a terminal, silence in a log file.
  return tqdm(total=total, desc=description, unit="video", disable=None, dynamic_ncols=True)


def _init_worker() -> None:
  # One process per core already: OpenCV's own threads would only oversubscribe the cores.
  import cv2  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(1)


def prepare_all(videos: list[str], video_root, cache, options: ProcessOptions, workers: int) -> list[Outcome]:
  """Prepares every video of `videos` not yet in `cache`, `workers` at a time; one Outcome per video.

  Videos already prepared (or recorded as failed) are not touched. On KeyboardInterrupt the workers are
  stopped and the interrupt propagates; what finished is kept and the rest is prepared on the next run.
  """
  outcomes, todo = {}, []
  for video in videos:
    if cache.status(video) is None:
      todo.append(video)
    else:
      outcomes[video] = prepare_into_cache(cache, video_root, video, options)  # reads the status only
  with _progress(len(todo), "preparing videos") as bar:
    if workers == 1:
      for video in todo:
        outcomes[video] = prepare_into_cache(cache, video_root, video, options)
        bar.update()
    else:
      # "spawn": the workers need only OpenCV and PyAV, and must not inherit the parent's threads.
      context = multiprocessing.get_context("spawn")
      executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
      try:
        futures = [executor.submit(prepare_into_cache, cache, str(video_root), video, options) for video in todo]
        for future in concurrent.futures.as_completed(futures):
          outcome = future.result()
          outcomes[outcome.video] = outcome
          bar.update()
      finally:
        executor.shutdown(wait=True, cancel_futures=True)
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


def build_datasets(dataset: str, split: int, manual_dir, data_dir, options: ProcessOptions, dynamic=(),
                   workers: int = 1, beam_options=None, require_all: bool = False,
                   retry_failed: bool = False) -> dict:
  """Both stages for one split (see the module docstring); returns the report (also saved as JSON)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from data_prep import datasets  # pylint: disable=import-outside-toplevel  # registers the builders

  start = time.perf_counter()
  video_root, split_dir = datasets.dataset_layout(dataset, manual_dir)
  split_obj = splits_lib.load_split(dataset, split_dir, split)
  splits_lib.check_counts(split_obj, dataset, split)
  entries = split_obj.train + split_obj.test
  missing = splits_lib.require_videos(entries, video_root, fatal=require_all)
  for name in dynamic:
    if name not in DYNAMIC_CHOICES:
      raise ValueError(f"dynamic image set {name!r} is unknown; expected some of {DYNAMIC_CHOICES}")
    if name.startswith("flow") and options.flow == "none":
      raise ValueError(f"dynamic image set {name!r} needs flow; pass --flow tvl1, farneback or dis")

  cache = datasets.cache_for(data_dir, dataset, options)
  removed = cache.remove_partial()
  missing_set = set(missing)
  present = [e.video for e in entries if e.video not in missing_set]
  if retry_failed:
    for video in present:
      if cache.status(video) == "failed":
        cache.forget(video)
  outcomes = [] if beam_options else prepare_all(present, video_root, cache, options, workers)

  usable = {o.video for o in outcomes if o.status in ("done", "cached")}
  for name, split_entries in (("train", split_obj.train), ("test", split_obj.test)):
    if outcomes and not usable & {e.video for e in split_entries}:
      raise ValueError(f"no usable {name} video of {dataset} split {split} under {str(video_root)!r} "
                       f"({len(missing)} of the split's videos are missing on disk); a dataset needs at least "
                       "one video in each of train and test")
  download_config = tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir),
      beam_options=None if beam_options is None else _beam_pipeline_options(beam_options))
  built = {}
  configs = [("frames", f"split{split}")] + [("dynamic_images", f"split{split}_{name}") for name in dynamic]
  skipped = {}
  for kind, config in configs:
    builder = datasets.BUILDERS[dataset, kind](config=config, data_dir=os.fspath(data_dir), options=options,
                                               file_format="array_record")
    _check_existing(builder, options)
    _remove_incomplete(builder)
    builder.download_and_prepare(download_config=download_config)
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
      partial_files_removed=len(removed), datasets=built, seconds=round(time.perf_counter() - start, 1))
  path = Path(os.fspath(data_dir)) / REPORT_FOLDER / f"{dataset}_split{split}.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(report, indent=1))
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
  for name, counts in report["datasets"].items():
    print(f"  {name}: " + ", ".join(f"{split} {n}" for split, n in counts.items()), file=file)
  print(f"  report: {report['report_path']}", file=file)


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
  return value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data_prep.build", description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dataset", required=True, choices=splits_lib.DATASETS)
  parser.add_argument("--manual_dir", required=True, type=Path, help="the extracted archive and split files")
  parser.add_argument("--data_dir", required=True, type=Path, help="where the TFDS datasets are written")
  parser.add_argument("--split", default="1", choices=["1", "2", "3", "all"])
  parser.add_argument("--flow", default="tvl1", choices=FLOW_CHOICES)
  parser.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                      help="processes preparing videos in parallel (default: every core)")
  parser.add_argument("--short_side", type=_positive_int, default=None,
                      help="resize frames so the shorter side has this many pixels (default: keep)")
  parser.add_argument("--jpeg_quality", type=_positive_int, default=95)
  parser.add_argument("--dynamic_images", default="",
                      help=f"comma-separated dynamic-image datasets to build too: {', '.join(DYNAMIC_CHOICES)}")
  parser.add_argument("--require_all", action="store_true",
                      help="fail when a video of the split files is missing on disk (default: report it)")
  parser.add_argument("--retry_failed", action="store_true", help="try videos that failed before again")
  parser.add_argument("--beam_pipeline_options", default=None,
                      help="run the builders under Apache Beam, e.g. 'runner=DirectRunner,direct_num_workers=4'")
  args = parser.parse_args(argv)
  try:
    options = ProcessOptions(flow=args.flow, short_side=args.short_side, quality=args.jpeg_quality)
    dynamic = tuple(name.strip() for name in args.dynamic_images.split(",") if name.strip())
    for split in (1, 2, 3) if args.split == "all" else (int(args.split),):
      report = build_datasets(args.dataset, split, args.manual_dir, args.data_dir, options, dynamic,
                              args.workers, args.beam_pipeline_options, args.require_all, args.retry_failed)
      print_report(report)
  except (ValueError, FileNotFoundError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("\ninterrupted: every video prepared so far is kept; run the same command again to resume",
          file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
