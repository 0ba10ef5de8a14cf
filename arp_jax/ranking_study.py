"""Table 2: approximate (ARP) against exact rank pooling (RP) on the videos of a dataset split.

    arp-jax ranking-study --dataset ucf101_frames/split1 --data_dir ~/tensorflow_datasets \\
        --out runs/table2/ucf101_split1.jsonl [--split test] [--max_videos N]

The paper's protocol (section 5.4): pool every video of the first test split of UCF101 whole, by RP and by
ARP, and report for each method the speed in frames per second and the pairwise ranking accuracy, "the
mean and the standard deviations" (the paper: RP 131 fps, 95.5 +- 0.6 %; ARP 5920 fps, 96.5 +- 0.5 %). RP
is the dynamic image of section 5.3 (`arp_jax.pooling.bucketed.RP_OPTIONS`: square root of the pixels,
time-varying mean, one SVR per channel, C = 10); ARP is eq. (3). A ranking function d scores frame t by
S(t|d) = <d, V_t> (section 3.1), on the vectors V_t of one of two protocols (`PROTOCOLS`):

  like_for_like (the default): both methods on the same vectors, V_t the time-varying mean of psi(I_t) =
    sqrt(I_t) over all pixels and channels. These are the vectors section 5.3's RP ranks, and ARP takes the
    same psi (d = sum_t alpha_t sqrt(I_t), the first gradient step of the same eq. (1)), so both rank one
    sequence. RP's per-channel hyperplanes score as one d over all pixels: S = sum_c <d_c, V_t^c>.
  per_method: each method on its own vectors, as this study scored them before: ARP of the raw pixels (the
    dynamic image of the other tables) on the time-varying means of the raw pixels; RP on the vectors its
    SVRs fitted (the square-root means L2-normalised per frame and channel: S = sum_c <d_c, V_t^c> /
    |V_t^c|).

The paper does not say over what its "+-" is taken, and +-0.6 is too small for a standard deviation over
UCF101's test videos or classes (REFERENCE.md). `summary` reports, labelled: the standard deviation over
the videos, the standard deviation of the per-class means, and the standard error of the mean with the
classes as clusters (videos of one class share their motion, periodic actions rank worse, so they are not
independent draws; with one video per class this is the usual std / sqrt(n)).
Classification accuracy, Table 2's last column, is the rp and arp points of
`experiments/table1_summary_images.py`.

Every pooling runs as `arp_jax.pool` on the video padded to a bucket of frames
(`arp_jax.pooling.bucketed.pad_to_bucket`), and each is timed on a second call, so compilation (once per
bucket) is not counted. One JSON line per video goes to `--out` as soon as it is measured: an
interrupted study resumes where it stopped, and a video that cannot be read is recorded with the reason
and skipped. Measured records of an earlier version of the study (without `"version": RECORD_VERSION`:
one protocol, RP in VideoDarwin's order) are measured again, the new line superseding the old.
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

import jax
import jax.numpy as jnp
import numpy as np

import arp_jax
from arp_jax import cli, input as input_lib
from arp_jax.checks import check_int
from arp_jax.pooling.bucketed import pad_to_bucket, pool_bucketed

METHODS = ("rp", "arp")
PROTOCOLS = ("like_for_like", "per_method")  # the first is the default (see the module's docstring)
# The vectors V_t a ranking function is scored on (`ranking_scores`).
VECTORS = ("root_means", "means", "rp_inputs")
# For each protocol and method: the pooling (a key of _POOLINGS) and the vectors it is scored on.
_SCORING = {"like_for_like": {"rp": ("rp", "root_means"), "arp": ("arp_of_roots", "root_means")},
            "per_method": {"rp": ("rp", "rp_inputs"), "arp": ("arp", "means")}}
# Records without this version (one protocol, RP in VideoDarwin's order) are measured again.
RECORD_VERSION = 2
# Table 2 (UCF101 test split 1): frames per second, pairwise ranking accuracy mean and "+-" (%).
PAPER = {"rp": (131, 95.5, 0.6), "arp": (5920, 96.5, 0.5)}


def ranking_scores(d, frames, vectors: str = "root_means") -> np.ndarray:
  """S(t|d) = <d, V_t> for t = 1..T, for one or several ranking functions d.

  Computed a frame at a time from running sums in float64, so a long video needs no [T, D] float copy.

  Args:
    d: [..., H, W, C] ranking functions (pooled images).
    frames: [T, H, W, C] the video, 0..255.
    vectors: "root_means", V_t = (1/t) sum_{i<=t} sqrt(I_i) over all pixels and channels (like-for-like,
      both methods); "means", the same of I_i (ARP's own); "rp_inputs", the root means L2-normalised per
      channel, S = sum_c <d_c, V_t^c> / |V_t^c| (the vectors section 5.3's RP fits; a zero channel scores 0).

  Returns:
    float64 [..., T].
  """
  if vectors not in VECTORS:
    raise ValueError(f"vectors is {vectors!r}; expected one of {VECTORS}")
  channels = frames.shape[-1]
  d = np.asarray(d, np.float64)
  if d.shape[d.ndim - 3:] != frames.shape[1:]:
    raise ValueError(f"d has shape {d.shape}; expected [..., H, W, C] with [H, W, C] = {frames.shape[1:]}, "
                     "a frame's shape")
  batch = d.shape[:-3]
  d = d.reshape((-1, math.prod(frames.shape[1:-1]), channels))  # [K, pixels, C]
  total = np.zeros(d.shape[1:])
  scores = np.empty((len(d), len(frames)))
  for t, frame in enumerate(frames, start=1):
    x = frame.reshape(total.shape).astype(np.float64)
    total += x if vectors == "means" else np.sqrt(x)
    mean = total / t
    per_channel = np.einsum("pc,kpc->kc", mean, d)
    if vectors == "rp_inputs":
      norms = np.linalg.norm(mean, axis=0)
      per_channel = np.where(norms > 0, per_channel / np.where(norms > 0, norms, 1.0), 0.0)
    scores[:, t - 1] = per_channel.sum(-1)
  return scores.reshape(batch + (len(frames),))


@jax.jit
def _arp_of_padded_roots(padded, lengths):
  return arp_jax.pool(jnp.sqrt(padded.astype(jnp.float32)), "arp", axis=1, lengths=lengths)[0]


def _arp_of_roots(frames):
  """ARP with psi = sqrt (section 5.3's psi): sum_t alpha_t sqrt(I_t), [T, H, W, C] -> [H, W, C]."""
  return _arp_of_padded_roots(*pad_to_bucket(frames))


_POOLINGS = {"rp": lambda frames: pool_bucketed(frames, "rp"),
             "arp": lambda frames: pool_bucketed(frames, "arp"),
             "arp_of_roots": _arp_of_roots}


def _pairwise_accuracy(scores) -> float:
  """The fraction of pairs q > t with S(q) > S(t), ties wrong: ranking accuracy of the scores as 1-d
  features. The order is blind to an offset; centring the float64 scores keeps their float32 differences
  exact (ARP's scores share a large offset, <d, mean frame>)."""
  centred = (scores - scores.mean()).astype(np.float32)[:, None]
  return float(arp_jax.ranking_accuracy(np.ones(1, np.float32), centred))


def compare_video(frames) -> dict:
  """Both methods on one video under both protocols: {protocol: {method: {"accuracy": pairwise ranking
  accuracy in [0, 1], "seconds": pooling time, compilation excluded}}}.

  Raises:
    ValueError: `frames` is not uint8 [T, H, W, C] with T >= 2 (ranking needs a pair of frames).
  """
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) < 2:
    raise ValueError(f"frames has shape {frames.shape} and dtype {frames.dtype}; expected uint8 "
                     "[T, H, W, C] with T >= 2")
  pooled, seconds = {}, {}
  for pooling, pool in _POOLINGS.items():
    pool(frames).block_until_ready()  # compiles once per bucket of lengths
    start = time.perf_counter()
    pooled[pooling] = np.asarray(pool(frames).block_until_ready())
    seconds[pooling] = time.perf_counter() - start
  scored = [(protocol, method, pooling, vectors)
            for protocol, methods in _SCORING.items() for method, (pooling, vectors) in methods.items()]
  out = {protocol: dict.fromkeys(METHODS) for protocol in PROTOCOLS}
  for vectors in VECTORS:  # one pass over the frames for every d scored on the same vectors
    group = [entry for entry in scored if entry[3] == vectors]
    scores = ranking_scores(np.stack([pooled[pooling] for _, _, pooling, _ in group]), frames, vectors)
    for (protocol, method, pooling, _), s in zip(group, scores):
      out[protocol][method] = {"accuracy": _pairwise_accuracy(s), "seconds": seconds[pooling]}
  return out


def _class_of(example, name: str) -> str:
  """The class folder of `name` ("<class>/<video>.avi", as the frames datasets name videos), else the
  example's label, else the name itself (a class of one video)."""
  if "/" in name:
    return name.split("/")[0]
  label = example.get("label") if isinstance(example, Mapping) else None
  return name if label is None else str(int(label))


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


def _is_outdated(record: dict) -> bool:
  """A measured record of an earlier version of the study (its figures are not this protocol's)."""
  return "error" not in record and record.get("version") != RECORD_VERSION


def measure(source: Sequence, out_path, max_videos: int | None = None, log=sys.stderr) -> dict:
  """Measures every video of `source` not yet in `out_path` (JSON lines), then summarises them all.

  Args:
    source: examples of a frames dataset (`arp_jax.input.data_source(...)` or a list of such dicts).
    out_path: the JSON-lines file of per-video records; created or resumed. Its measured records of an
      earlier version of the study are measured again (the new line supersedes the old one).
    max_videos: measure only the first N videos of `source` (None: all).

  Returns:
    `summary(records)` of every record in `out_path`.
  """
  if max_videos is not None:
    check_int(max_videos, "max_videos")
  path = Path(os.fspath(out_path))
  path.parent.mkdir(parents=True, exist_ok=True)
  records = _resume(path)
  outdated = sum(map(_is_outdated, records.values()))
  if outdated:
    print(f"{outdated} records in {path} are of an earlier version of the study (no "
          f'"version": {RECORD_VERSION}); measuring those videos again', file=log)
  count = len(source) if max_videos is None else min(max_videos, len(source))
  with path.open("a") as file:
    for index in range(count):
      example = source[index]
      name = _name(example) or f"#{index}"
      if name in records and not _is_outdated(records[name]):
        continue
      try:
        frames = input_lib.decode_video(example, "rgb")
        record = {"name": name, "class": _class_of(example, name), "frames": len(frames),
                  "version": RECORD_VERSION, **compare_video(frames)}
      except ValueError as error:  # an unreadable or one-frame video: report it and go on
        record = {"name": name, "error": str(error)}
        print(f"skipped {name}: {error}", file=log)
      file.write(json.dumps(record) + "\n")
      file.flush()
      records[name] = record
  return summary(list(records.values()))


def accuracy_statistics(accuracies, classes) -> dict:
  """The mean of per-video accuracies and three candidates for its "+-", labelled.

  Args:
    accuracies: [n] per-video ranking accuracies (%). classes: [n] the class of each video.

  Returns:
    {"accuracy_mean": mean over the videos (the paper's "mean"), "std_videos": sample standard deviation
    over the videos, "std_class_means": sample standard deviation of the per-class means, "se_mean":
    standard error of accuracy_mean with the classes as clusters, sqrt(K / (K - 1) sum_k (sum_{i in k}
    (a_i - mean))^2) / n over K classes (std_videos / sqrt(n) when each class has one video),
    "class_means": {class: mean}}. NaN where fewer than two videos (or classes) make it undefined.
  """
  a = np.asarray(accuracies, np.float64)
  classes = [str(c) for c in classes]
  names = sorted(set(classes))
  class_means = {c: float(np.mean([x for x, k in zip(a, classes) if k == c])) for c in names}
  nan = math.nan
  if len(a) == 0:
    return {"accuracy_mean": nan, "std_videos": nan, "std_class_means": nan, "se_mean": nan,
            "class_means": {}}
  mean = float(a.mean())
  K = len(names)
  cluster_sums = np.array([np.sum(a[[k == c for k in classes]] - mean) for c in names])
  return {"accuracy_mean": mean,
          "std_videos": float(a.std(ddof=1)) if len(a) > 1 else nan,
          "std_class_means": float(np.std(list(class_means.values()), ddof=1)) if K > 1 else nan,
          "se_mean": float(np.sqrt(K / (K - 1) * np.sum(cluster_sums ** 2)) / len(a)) if K > 1 else nan,
          "class_means": class_means}


def summary(records: Sequence[dict]) -> dict:
  """Table 2's figures from per-video records: {protocol: {method: {"fps", **accuracy_statistics}}}
  (accuracies in %), "videos" measured, "classes", "skipped" {name: reason} and "outdated" (measured
  records of an earlier version of the study: not counted)."""
  measured = [r for r in records if "error" not in r and not _is_outdated(r)]
  frames = sum(r["frames"] for r in measured)
  classes = [r["class"] for r in measured]
  out = {"videos": len(measured), "classes": len(set(classes)),
         "skipped": {r["name"]: r["error"] for r in records if "error" in r},
         "outdated": sum(map(_is_outdated, records))}
  for protocol in PROTOCOLS:
    out[protocol] = {}
    for method in METHODS:
      seconds = sum(r[protocol][method]["seconds"] for r in measured)
      out[protocol][method] = {
          "fps": frames / seconds if seconds else math.nan,
          **accuracy_statistics([100 * r[protocol][method]["accuracy"] for r in measured], classes)}
  return out


def table(result: dict) -> str:
  """Table 2's layout, measured under both protocols beside the paper's."""
  outdated = f", {result['outdated']} outdated records ignored" if result.get("outdated") else ""
  lines = [f"Table 2 on {result['videos']} videos of {result['classes']} classes ({len(result['skipped'])} "
           f"skipped{outdated}); ranking accuracy %: mean over videos, std over videos, std of the class "
           "means, standard error of the mean (classes as clusters)",
           "| protocol | method | fps | ranking acc. % | std videos | std class means | s.e. mean "
           "| paper fps | paper ranking acc. % |", "|---|---|---|---|---|---|---|---|---|"]
  for protocol in PROTOCOLS:
    for method in METHODS:
      m, (fps, mean, pm) = result[protocol][method], PAPER[method]
      lines.append(f"| {protocol} | {method.upper()} | {m['fps']:.0f} | {m['accuracy_mean']:.1f} | "
                   f"{m['std_videos']:.1f} | {m['std_class_means']:.1f} | {m['se_mean']:.2f} | {fps} | "
                   f"{mean} +- {pm} |")
  lines.append("like_for_like (default): both scored S(t|d) = <d, V_t>, V_t the time-varying mean of "
               "sqrt(I_t), ARP of sqrt(I_t); per_method: ARP of I_t on the means of I_t, RP on its "
               "per-channel L2-normalised V_t.")
  return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = __doc__.splitlines()[0]
  parser.add_argument("--dataset", required=True, help="a frames dataset, e.g. ucf101_frames/split1")
  parser.add_argument("--data_dir", default=None, help="its TFDS data folder (default: TFDS's)")
  parser.add_argument("--split", default="test", help="train or test (the paper: test)")
  parser.add_argument("--out", required=True, help="JSON-lines file of per-video results (resumed)")
  parser.add_argument("--max_videos", type=cli.positive_int, default=None, help="only the first N videos")


def run(args: argparse.Namespace) -> int:
  """Measures the videos of the dataset not yet in --out and prints Table 2."""
  if "frames" not in args.dataset.split("/")[0]:
    raise cli.UsageError(f"--dataset {args.dataset!r}: expected a frames dataset (ucf101_frames/split1, "
                         "hmdb51_frames/split1, ...)")
  source = input_lib.data_source(args.dataset, args.split, args.data_dir)
  print(table(measure(source, args.out, args.max_videos)))
  return 0


if __name__ == "__main__":
  sys.exit(cli.main(["ranking-study", *sys.argv[1:]]))
