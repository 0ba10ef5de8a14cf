"""Table 2: approximate (ARP) against exact rank pooling (RP) on the videos of a dataset split.

    python -m arp_jax.ranking_study --dataset ucf101_frames/split1 --data_dir ~/tensorflow_datasets \\
        --out runs/table2/ucf101_split1.jsonl [--split test] [--max_videos N]

The paper's protocol (section 5.4): pool every video of the first test split of UCF101 whole, by RP
(VideoDarwin's SVR on all pixels of a frame, C = 10 as for dynamic images) and by ARP (eq. 3), and report
for each method the speed in frames per second and the pairwise ranking accuracy, mean and standard
deviation over the videos (the paper: RP 131 fps, 95.5 +- 0.6 %; ARP 5920 fps, 96.5 +- 0.5 %). A ranking
function is scored on the vectors it ranks: ARP on the time-varying means V_t of the frames (eq. 1), RP on
the preprocessed vectors it was fitted to (time-varying mean, signed square root, L2 per frame).
Classification accuracy, Table 2's last column, is the rp and arp points of
`experiments/table1_summary_images.py`.

Both methods run as `arp_jax.pool` on the video padded to a bucket of frames
(`data_prep.dynamic.pool_bucketed`), and each is timed on a second call, so compilation (once per
bucket) is not counted. One JSON line per video goes to `--out` as soon as it is measured: an
interrupted study resumes where it stopped, and a video that cannot be read is recorded with the reason
and skipped.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
import json
import math
import os
from pathlib import Path
import sys
import time

import numpy as np

import arp_jax
from arp_jax import input_pipeline
from data_prep.dynamic import pool_bucketed

METHODS = ("rp", "arp")
# Table 2 (UCF101 test split 1): frames per second, pairwise ranking accuracy mean and std (%).
PAPER = {"rp": (131, 95.5, 0.6), "arp": (5920, 96.5, 0.5)}


def ranking_scores(d, frames, method: str) -> np.ndarray:
  """S(t|d) = <d, V_t> for t = 1..T: V_t the time-varying means (ARP), or those after a signed square root
  and L2 normalisation (RP: the vectors VideoDarwin fits).

  Computed a frame at a time from running sums, so a long video needs no [T, D] float copy.

  Args:
    d: [D] a ranking function. frames: [T, ...] with prod(...) = D. method: "arp" or "rp".

  Returns:
    float64 [T].
  """
  d = np.asarray(d, np.float64).reshape(-1)
  total = np.zeros_like(d)
  scores = np.empty(len(frames))
  for t, frame in enumerate(frames, start=1):
    total += frame.reshape(-1)
    mean = total / t
    if method == "arp":
      scores[t - 1] = mean @ d
    else:
      vector = np.sign(mean) * np.sqrt(np.abs(mean))
      scores[t - 1] = (vector @ d) / max(np.linalg.norm(vector), 1e-12)
  return scores


def compare_video(frames) -> dict:
  """Both methods on one video: {method: {"accuracy": pairwise ranking accuracy in [0, 1], "seconds":
  pooling time, compilation excluded}}.

  Raises:
    ValueError: `frames` is not uint8 [T, H, W, C] with T >= 2 (ranking needs a pair of frames).
  """
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) < 2:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     "[T, H, W, C] with T >= 2")
  out = {}
  for method in METHODS:
    pool_bucketed(frames, method).block_until_ready()  # compiles once per bucket of lengths
    start = time.perf_counter()
    d = np.asarray(pool_bucketed(frames, method).block_until_ready())
    seconds = time.perf_counter() - start
    scores = ranking_scores(d, frames, method)
    # The fraction of pairs q > t with S(q) > S(t): ranking accuracy of the scores as 1-d features. The
    # order is blind to an offset; centring the float64 scores keeps their float32 differences exact
    # (ARP's scores share a large offset, <d, mean frame>).
    centred = (scores - scores.mean()).astype(np.float32)[:, None]
    accuracy = float(arp_jax.ranking_accuracy(np.ones(1, np.float32), centred))
    out[method] = {"accuracy": accuracy, "seconds": seconds}
  return out


def _name(example) -> str:
  name = example.get("name") if isinstance(example, Mapping) else None
  if isinstance(name, (bytes, np.bytes_)):
    return bytes(name).decode()
  return "" if name is None else str(name)


def _resume(path: Path) -> dict[str, dict]:
  """The records already in `path` by video name. A torn last line (a run killed while writing it) is cut
  off, so that the next record starts on a line of its own."""
  if not path.is_file():
    return {}
  text = path.read_text()
  complete = text[:text.rfind("\n") + 1]
  if complete != text:
    with path.open("r+") as file:
      file.truncate(len(complete.encode()))
  records = (json.loads(line) for line in complete.splitlines())
  return {record["name"]: record for record in records}


def run(source: Sequence, out_path, max_videos: int | None = None, log=sys.stderr) -> dict:
  """Measures every video of `source` not yet in `out_path` (JSON lines), then summarises them all.

  Args:
    source: examples of a frames dataset (`input_pipeline.data_source(...)` or a list of such dicts).
    out_path: the JSON-lines file of per-video records; created or resumed.
    max_videos: measure only the first N videos of `source` (None: all).

  Returns:
    `summary(records)` of every record in `out_path`.
  """
  if max_videos is not None and max_videos < 1:
    raise ValueError(f"max_videos is {max_videos}; expected >= 1 or None for all")
  path = Path(os.fspath(out_path))
  path.parent.mkdir(parents=True, exist_ok=True)
  records = _resume(path)
  count = len(source) if max_videos is None else min(max_videos, len(source))
  with path.open("a") as file:
    for index in range(count):
      example = source[index]
      name = _name(example) or f"#{index}"
      if name in records:
        continue
      try:
        frames = input_pipeline.decode_video(example, "rgb")
        record = {"name": name, "frames": len(frames), **compare_video(frames)}
      except ValueError as error:  # an unreadable or one-frame video: report it and go on
        record = {"name": name, "error": str(error)}
        print(f"skipped {name}: {error}", file=log)
      file.write(json.dumps(record) + "\n")
      file.flush()
      records[name] = record
  return summary(list(records.values()))


def summary(records: Sequence[dict]) -> dict:
  """Table 2's figures from per-video records: {method: {"fps", "accuracy_mean", "accuracy_std"}} (%),
  "videos" measured and "skipped" {name: reason}."""
  measured = [r for r in records if "error" not in r]
  frames = sum(r["frames"] for r in measured)
  out = {"videos": len(measured), "skipped": {r["name"]: r["error"] for r in records if "error" in r}}
  for method in METHODS:
    accuracies = np.array([100 * r[method]["accuracy"] for r in measured])
    seconds = sum(r[method]["seconds"] for r in measured)
    out[method] = {"fps": frames / seconds if seconds else math.nan,
                   "accuracy_mean": float(accuracies.mean()) if measured else math.nan,
                   "accuracy_std": float(accuracies.std()) if measured else math.nan}
  return out


def table(result: dict) -> str:
  """Table 2's layout, measured beside the paper's."""
  lines = [f"Table 2 on {result['videos']} videos ({len(result['skipped'])} skipped)",
           "| method | fps | ranking acc. % | paper fps | paper ranking acc. % |", "|---|---|---|---|---|"]
  for method in METHODS:
    m, (fps, mean, std) = result[method], PAPER[method]
    lines.append(f"| {method.upper()} | {m['fps']:.0f} | {m['accuracy_mean']:.1f} +- {m['accuracy_std']:.1f} | "
                 f"{fps} | {mean} +- {std} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", required=True, help="a frames dataset, e.g. ucf101_frames/split1")
  parser.add_argument("--data_dir", default=None, help="its TFDS data folder (default: TFDS's)")
  parser.add_argument("--split", default="test", help="train or test (the paper: test)")
  parser.add_argument("--out", required=True, help="JSON-lines file of per-video results (resumed)")
  parser.add_argument("--max_videos", type=int, default=None, help="only the first N videos")
  args = parser.parse_args(argv)
  if "frames" not in args.dataset.split("/")[0]:
    parser.error(f"--dataset {args.dataset!r}: expected a frames dataset (ucf101_frames/split1, "
                 "hmdb51_frames/split1, ...)")
  import data_prep.datasets  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import (registers them)
  try:
    source = input_pipeline.data_source(args.dataset, args.split, args.data_dir)
    result = run(source, args.out, args.max_videos)
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  print(table(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
