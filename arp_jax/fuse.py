"""Late fusion of per-video scores from several streams, and the table of every combination (Table 8).

The paper trains one network per input and averages their scores: RGB frames ("SI", static images),
dynamic images ("DI"), optical flow ("OF") and dynamic optical flow ("DOF"); all four together reach
95.5 % on UCF101. Each stream is a `arp_jax.scores.Scores` file written by evaluation; `fuse` aligns the
streams video by video (by name, whatever order each was written in), then takes the weighted average of
the per-video softmax probabilities (default) or of the raw logits (`use_logits=True`).

Command line:
  arp-jax fuse SI.npz DI.npz OF.npz DOF.npz [--names SI,DI,OF,DOF] [--weights 1,1,2,2]
               [--logits] [--output fused.npz]
prints one line per stream and per combination of streams (singles, then pairs, ..., then all), with mean
class accuracy and top-1 accuracy in percent, and with --output saves the fusion of all the streams.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from arp_jax import cli, metrics
from arp_jax.scores import Scores, load_scores, save_scores

# How many differing video names an error message lists before "...".
_EXAMPLES = 3


def _check_streams(streams, stream_names) -> tuple[list[Scores], list[str]]:
  """The streams as a list of `Scores` and their display names, or TypeError/ValueError."""
  if isinstance(streams, Scores) or not isinstance(streams, Sequence):
    raise TypeError(f"streams is a {type(streams).__name__}; expected a sequence of Scores, one per stream")
  streams = list(streams)
  if not streams:
    raise ValueError("streams is empty; expected at least one Scores to fuse")
  for i, stream in enumerate(streams):
    if not isinstance(stream, Scores):
      raise TypeError(f"streams[{i}] is a {type(stream).__name__}; expected an arp_jax.scores.Scores")
  if stream_names is None:
    # 1-based, as a person counts the files given on the command line.
    return streams, [f"stream {i + 1}" for i in range(len(streams))]
  if isinstance(stream_names, str) or len(stream_names) != len(streams):
    raise ValueError(f"stream_names is {stream_names!r}; expected {len(streams)} names, one per stream")
  return streams, [str(name) for name in stream_names]


def _check_weights(weights, count: int) -> np.ndarray:
  """`weights` as float64 `[count]` (not yet normalised), all 1 when None, or ValueError."""
  if weights is None:
    return np.ones(count)
  if isinstance(weights, str):
    raise ValueError(f"weights is the string {weights!r}; expected {count} numbers, one per stream")
  try:
    array = np.asarray(weights, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"weights is {weights!r}; expected {count} numbers, one per stream") from None
  if array.shape != (count,):
    raise ValueError(f"weights has shape {array.shape}; expected {count} numbers, one per stream")
  # Positive only: a zero weight is a stream left out, which the combinations table already lists.
  if not (np.isfinite(array).all() and (array > 0).all()):
    raise ValueError(f"weights are {array.tolist()}; expected finite positive numbers")
  return array


def _examples(names) -> str:
  names = sorted(names)
  shown = ", ".join(repr(name) for name in names[:_EXAMPLES])
  return shown + (", ..." if len(names) > _EXAMPLES else "")


def _align(streams: list[Scores], stream_names: list[str]):
  """Checks that the streams score the same videos and classes, and puts them in the first one's order.

  Returns:
    `(names, labels, classes, logits)`: the first stream's video names and `int64 [N]` labels, the class
    names of the first stream that has them (or None), and one `float64 [N, K]` logits array per stream,
    rows in the order of `names`.

  Raises:
    ValueError: the streams differ in number of classes, class names, set of videos, or a video's label.
  """
  first, first_name = streams[0], stream_names[0]
  position = {name: row for row, name in enumerate(first.names)}
  classes = next((s.classes for s in streams if s.classes is not None), None)
  logits = [first.scores.astype(np.float64)]
  for stream, name in zip(streams[1:], stream_names[1:]):
    if stream.num_classes != first.num_classes:
      raise ValueError(f"{name!r} has {stream.num_classes} classes but {first_name!r} has "
                       f"{first.num_classes}; expected scores over the same classes in every stream")
    if stream.classes is not None and first.classes is not None and stream.classes != first.classes:
      k = next(k for k, (a, b) in enumerate(zip(first.classes, stream.classes)) if a != b)
      raise ValueError(f"class {k} is {first.classes[k]!r} in {first_name!r} but {stream.classes[k]!r} in "
                       f"{name!r}; expected the same class order in every stream")
    if len(stream.names) != len(first.names) or not all(n in position for n in stream.names):
      only_first = set(first.names).difference(stream.names)
      only_this = set(stream.names).difference(first.names)
      parts = [f"{len(videos)} only in {where!r} ({_examples(videos)})"
               for videos, where in ((only_first, first_name), (only_this, name)) if videos]
      raise ValueError(f"{first_name!r} and {name!r} hold different videos: {'; '.join(parts)}; expected "
                       "the scores of the same test videos in every stream")
    # Same set of distinct names: a permutation, which puts this stream's rows in the first one's order.
    order = np.empty(len(first.names), np.int64)
    order[[position[n] for n in stream.names]] = np.arange(len(stream.names))
    labels = stream.labels[order]
    differ = np.flatnonzero(labels != first.labels)
    if len(differ):
      row = differ[0]
      more = f" (and {len(differ) - 1} more videos disagree)" if len(differ) > 1 else ""
      raise ValueError(f"video {first.names[row]!r} has label {first.labels[row]} in {first_name!r} but "
                       f"{labels[row]} in {name!r}{more}; expected the same labels (the same split) in "
                       "every stream")
    logits.append(stream.scores[order].astype(np.float64))
  return first.names, np.array(first.labels), classes, logits


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  """`float64 [N, K]` -> log of the softmax over classes, finite for finite logits (no log of 0)."""
  shifted = logits - logits.max(axis=1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fuse(streams: Sequence[Scores], weights=None, use_logits: bool = False, *,
         stream_names: Sequence[str] | None = None) -> Scores:
  """Late fusion: the weighted average of the streams' per-video softmax scores (or of their logits).

  The streams are aligned by video name, so each may list the videos in its own order; the result is in
  the order of the first stream. With softmax averaging (the default) the fused `scores` are the log of
  the averaged probabilities, so that the result is again logits: `softmax(fused.scores)` is the weighted
  average of the streams' softmax probabilities, and its argmax the fused prediction.

  Args:
    streams: `S >= 1` `Scores` over the same videos, labels and number of classes `K`.
    weights: `S` positive numbers, one per stream (default all 1), normalised to sum to 1.
    use_logits: average the raw logits instead of the softmax probabilities. Logits of networks trained
      separately have different scales, so the stream with the largest logits dominates the average.
    stream_names: names of the streams for error messages (default "stream 1", "stream 2", ...).

  Returns:
    `Scores` with the first stream's names and labels, `scores: float32 [N, K]` as above, and the class
    names of the first stream that has them.

  Raises:
    TypeError: `streams` is not a sequence of `Scores`.
    ValueError: `streams` is empty; `weights` is not `S` finite positive numbers; the streams differ in
      their videos (the message names videos found in only one of them), in a video's label, or in their
      number or names of classes.
  """
  streams, stream_names = _check_streams(streams, stream_names)
  weights = _check_weights(weights, len(streams))
  weights = weights / weights.sum()
  names, labels, classes, logits = _align(streams, stream_names)
  stack = np.stack(logits)  # [S, N, K]
  if use_logits:
    fused = np.tensordot(weights, stack, axes=1)
  else:
    # log(sum_s w_s softmax_s) as a log-sum-exp over streams of log w_s + log softmax_s: finite even where
    # a probability underflows to 0, which a plain log of the average would turn into -inf.
    terms = np.log(weights)[:, None, None] + np.stack([_log_softmax(x) for x in stack])
    top = terms.max(axis=0)
    fused = top + np.log(np.exp(terms - top).sum(axis=0))
  return Scores(names=names, labels=labels, scores=fused.astype(np.float32), classes=classes)


def combinations_table(streams: Mapping[str, Scores], weights=None,
                       use_logits: bool = False) -> list[tuple[str, float, float]]:
  """Accuracy of every stream alone and of every combination of streams, as in the paper's Table 8.

  Rows come in the order: each stream alone (in the order of `streams`), then every pair, ..., then all
  streams together, each size in `itertools.combinations` order. A combination's weights are the streams'
  weights renormalised to sum to 1 within the combination. The accuracies are computed on the float64
  averages, before `fuse` rounds its result to float32.

  Args:
    streams: stream name -> `Scores`, e.g. `{"SI": ..., "DI": ..., "OF": ..., "DOF": ...}`.
    weights: None (all 1), one positive number per stream in the order of `streams`, or a mapping from
      every stream name to its weight.
    use_logits: average raw logits instead of softmax probabilities (see `fuse`).

  Returns:
    `2**S - 1` rows `(name, mean class accuracy %, top-1 accuracy %)`, the name joining the streams with
    " + ", e.g. "SI + DI + OF".

  Raises:
    TypeError: `streams` is not a mapping from str to `Scores`.
    ValueError: `streams` is empty, the weights do not match the streams, or the streams do not score the
      same videos (see `fuse`).
  """
  if not isinstance(streams, Mapping):
    raise TypeError(f"streams is a {type(streams).__name__}; expected a mapping from stream name to Scores")
  stream_names = list(streams)
  for name in stream_names:
    if not isinstance(name, str) or not name:
      raise TypeError(f"stream name {name!r} is not a non-empty string")
  if isinstance(weights, Mapping):
    if set(weights) != set(stream_names):
      raise ValueError(f"weights are given for {sorted(weights)}; expected one weight for each stream "
                       f"{stream_names}")
    weights = [weights[name] for name in stream_names]
  values, stream_names = _check_streams(list(streams.values()), stream_names)
  weights = _check_weights(weights, len(values))
  _, labels, _, logits = _align(values, stream_names)
  # Converted once per stream, not once per combination.
  inputs = logits if use_logits else [metrics.softmax(x, axis=1) for x in logits]
  rows = []
  for size in range(1, len(values) + 1):
    for members in itertools.combinations(range(len(values)), size):
      w = weights[list(members)]
      fused = sum((wi / w.sum()) * inputs[i] for wi, i in zip(w, members))
      rows.append((" + ".join(stream_names[i] for i in members),
                   100.0 * metrics.mean_class_accuracy(fused, labels),
                   100.0 * metrics.accuracy(fused, labels)))
  return rows


def format_table(rows: Sequence[tuple[str, float, float]]) -> str:
  """The rows of `combinations_table` as text: a header, then one line per stream or combination.

  Columns: streams, mean class accuracy %, top-1 accuracy %, with two decimals (one test video of UCF101
  is about 0.03 %, so one decimal would hide real differences between combinations).
  """
  header = ("streams", "mean class acc. %", "top-1 %")
  width = max(len(header[0]), *(len(row[0]) for row in rows)) if rows else len(header[0])
  lines = [f"{header[0]:<{width}}  {header[1]:>17}  {header[2]:>8}"]
  lines += [f"{name:<{width}}  {mean_class:>17.2f}  {top1:>8.2f}" for name, mean_class, top1 in rows]
  return "\n".join(lines)


def _split(text: str | None, count: int, option: str) -> list[str] | None:
  """The comma-separated items of an option, checked to be `count` non-empty items."""
  if text is None:
    return None
  items = [item.strip() for item in text.split(",")]
  if len(items) != count or not all(items):
    raise cli.UsageError(f"{option} {text!r} has {len(items)} comma-separated item(s); expected {count} "
                      "non-empty items, one per scores file")
  return items


def _stream_names(files: list[str], names_option: str | None) -> list[str]:
  names = _split(names_option, len(files), "--names")
  if names is None:
    names = [Path(file).stem for file in files]
    if len(set(names)) != len(names):
      twice = next(name for name in names if names.count(name) > 1)
      raise cli.UsageError(f"two scores files have the same name stem {twice!r}; name the streams with --names "
                        "(e.g. --names SI,DI,OF,DOF)")
  elif len(set(names)) != len(names):
    raise cli.UsageError(f"--names {names_option!r} repeats a name; expected distinct stream names")
  return names


def _weights(weights_option: str | None, count: int) -> list[float] | None:
  items = _split(weights_option, count, "--weights")
  if items is None:
    return None
  try:
    values = [float(item) for item in items]
  except ValueError:
    raise cli.UsageError(f"--weights {weights_option!r} is not a list of numbers; expected e.g. "
                      "1,1,2,2") from None
  if not all(math.isfinite(v) and v > 0 for v in values):
    raise cli.UsageError(f"--weights {weights_option!r}; expected finite positive numbers")
  return values


def _check_output(output: str) -> None:
  """UsageError unless a scores file can be written at `output`: checked before the work, so that a typo
  or a read-only folder does not come after the table."""
  path = Path(output)
  if path.is_dir():
    raise cli.UsageError(f"--output {output!r} is a folder; expected the path of a file to write, e.g. fused.npz")
  folder = path.resolve().parent
  if not folder.is_dir():
    raise cli.UsageError(f"the folder of --output {output!r} does not exist; expected an existing folder")
  try:
    # Creating a file is the one test that holds for permissions, read-only mounts and /proc alike.
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as error:
    raise cli.UsageError(f"cannot write in the folder {str(folder)!r} of --output {output!r} "
                      f"({error.strerror or error}); expected a folder where a file can be created") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = ("Fuse per-video scores of several streams (e.g. SI, DI, OF, DOF) and print the "
                        "accuracy of every stream and of every combination of streams.")
  parser.add_argument("files", nargs="+", metavar="SCORES.npz", help="scores files written by evaluation")
  parser.add_argument("--names", metavar="A,B,...",
                      help="stream names, comma-separated (default: file stems)")
  parser.add_argument("--weights", metavar="W1,W2,...",
                      help="positive weight per stream, comma-separated (default: all 1); renormalised "
                           "within each combination")
  parser.add_argument("--logits", action="store_true",
                      help="average raw logits instead of softmax probabilities")
  parser.add_argument("--output", metavar="FUSED.npz", help="save the fusion of all streams here")


def run(args: argparse.Namespace) -> int:
  """Prints the table of every combination and, with --output, saves the fusion of all the streams.

  User mistakes raise UsageError, ValueError or FileNotFoundError (`cli.main` prints them as one line and
  returns 2): a bad option (an --output that cannot be written included), a missing, damaged or folder
  scores file, or streams that do not match.
  """
  names = _stream_names(args.files, args.names)
  weights = _weights(args.weights, len(args.files))
  if args.output is not None:
    _check_output(args.output)
  streams = {name: load_scores(file) for name, file in zip(names, args.files)}
  rows = combinations_table(streams, weights=weights, use_logits=args.logits)
  print(format_table(rows))
  if args.output is not None:
    fused = fuse(list(streams.values()), weights=weights, use_logits=args.logits, stream_names=names)
    path = save_scores(args.output, fused)
    print(f"wrote {path} (fusion of {' + '.join(names)}, {fused.num_videos} videos)")
  return 0


if __name__ == "__main__":
  sys.exit(cli.main(["fuse", *sys.argv[1:]]))
