"""Classification metrics on per-video scores: top-1, per-class and mean class accuracy, confusion matrix.

NumPy only, so that evaluation and score fusion need no JAX compilation. The paper's tables (UCF101,
HMDB51) report *mean class accuracy*: the recall of each class, averaged over the classes that have test
videos. It differs from top-1 accuracy (the fraction of all videos classified correctly) when classes have
different numbers of test videos, as in UCF101 where a class has between 25 and 52 test videos per split.

Conventions: `scores: float [N, K]` are per-video class scores (logits or probabilities; only their order
within a row matters for the accuracies), `labels: int [N]` the true classes in `0..K-1`. The predicted
class is the argmax of a row; a tie goes to the lowest class index (`np.argmax`).
"""

from __future__ import annotations

import numpy as np

from arp_jax.checks import is_int


def _check_scores(scores, what: str = "scores") -> np.ndarray:
  """`scores` as float64 `[N, K]`, or ValueError saying what is wrong with it."""
  array = np.asarray(scores)
  if array.dtype.kind not in "fiu":
    raise ValueError(f"{what} has dtype {array.dtype}; expected real numbers (float [N, K])")
  if array.ndim != 2:
    raise ValueError(f"{what} has {array.ndim} dimensions (shape {array.shape}); expected [N, K], "
                     "one row of class scores per video")
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise ValueError(f"{what} is empty (shape {array.shape}); expected at least one video and one class")
  array = array.astype(np.float64)
  finite = np.isfinite(array).all(axis=1)
  if not finite.all():
    # The row number lets the caller find the video (e.g. `Scores.names[row]`) whose network diverged.
    bad = np.flatnonzero(~finite)
    kind = "NaN" if np.isnan(array[bad[0]]).any() else "infinity"
    others = f" (and {len(bad) - 1} more rows are not finite)" if len(bad) > 1 else ""
    raise ValueError(f"{what} row {bad[0]} holds {kind}{others}; expected finite scores")
  return array


def _check_num_classes(num_classes) -> int:
  if not is_int(num_classes) or num_classes < 1:
    raise ValueError(f"num_classes is {num_classes!r}; expected a positive int")
  return int(num_classes)


def _check_classes(values, num_videos: int | None, num_classes: int, what: str) -> np.ndarray:
  """`values` (labels or predictions) as int64 `[N]` in `0..K-1`, or ValueError naming the first bad entry.

  `num_videos` is the expected `N`, or None to accept any non-zero length.
  """
  array = np.asarray(values)
  if array.ndim != 1:
    raise ValueError(f"{what} has {array.ndim} dimensions (shape {array.shape}); expected [N], one class "
                     "index per video")
  if num_videos is not None and array.shape[0] != num_videos:
    raise ValueError(f"{what} has {array.shape[0]} entries but there are {num_videos} videos; expected "
                     "one per video")
  if array.shape[0] == 0:
    raise ValueError(f"{what} is empty; expected at least one video")
  # Float labels are refused rather than rounded: they usually mean a wrong array was passed.
  if array.dtype.kind not in "iu":
    raise ValueError(f"{what} has dtype {array.dtype}; expected integer class indices")
  outside = np.flatnonzero((array < 0) | (array >= num_classes))
  if len(outside):
    i = outside[0]
    raise ValueError(f"{what}[{i}] is {array[i]}; expected a class index in 0..{num_classes - 1} "
                     f"({num_classes} classes)")
  return array.astype(np.int64)


def predictions(scores) -> np.ndarray:
  """The predicted class of each video: the argmax of its scores.

  Args:
    scores: `float [N, K]`.

  Returns:
    `int64 [N]` in `0..K-1`; a tie goes to the lowest class index.

  Raises:
    ValueError: `scores` is not a non-empty real `[N, K]` array, or a row holds NaN or infinity.
  """
  return np.argmax(_check_scores(scores), axis=1).astype(np.int64)


def confusion_matrix(predictions, labels, num_classes: int) -> np.ndarray:
  """Counts of (true class, predicted class) pairs.

  Args:
    predictions: `int [N]` predicted classes in `0..K-1` (e.g. from `predictions(scores)`).
    labels: `int [N]` true classes in `0..K-1`.
    num_classes: `K`, the number of classes (classes without videos still get a row and a column).

  Returns:
    `int64 [K, K]`, `C[t, p]` = number of videos of true class `t` predicted as `p`: rows are true classes,
    columns predicted classes; row sums are the videos per class, the diagonal the correct ones.

  Raises:
    ValueError: `num_classes` is not a positive int; `predictions` or `labels` is not a non-empty integer
      `[N]` array in `0..K-1`, or they differ in length.
  """
  num_classes = _check_num_classes(num_classes)
  labels = _check_classes(labels, None, num_classes, "labels")
  predictions = _check_classes(predictions, len(labels), num_classes, "predictions")
  # One flat bincount over t * K + p is the whole matrix at once.
  counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
  return counts.reshape(num_classes, num_classes).astype(np.int64)


def accuracy(scores, labels) -> float:
  """Top-1 accuracy: the fraction of videos whose argmax score is their true class.

  Args:
    scores: `float [N, K]`.
    labels: `int [N]` in `0..K-1`.

  Returns:
    A float in `[0, 1]`.

  Raises:
    ValueError: `scores` is not a non-empty finite real `[N, K]` array, or `labels` is not an integer `[N]`
      array in `0..K-1` (see `predictions`, `confusion_matrix`).
  """
  scores = _check_scores(scores)
  labels = _check_classes(labels, scores.shape[0], scores.shape[1], "labels")
  return float(np.mean(np.argmax(scores, axis=1) == labels))


def per_class_accuracy(scores, labels) -> np.ndarray:
  """The accuracy (recall) of each class: correct videos of the class over videos of the class.

  Args:
    scores: `float [N, K]`; the number of classes `K` is taken from its columns.
    labels: `int [N]` in `0..K-1`.

  Returns:
    `float64 [K]`, NaN for a class with no video (its accuracy is undefined, not 0).

  Raises:
    ValueError: as `accuracy`.
  """
  scores = _check_scores(scores)
  num_classes = scores.shape[1]
  labels = _check_classes(labels, scores.shape[0], num_classes, "labels")
  confusion = confusion_matrix(np.argmax(scores, axis=1), labels, num_classes)
  videos = confusion.sum(axis=1)
  correct = np.diagonal(confusion)
  # max(videos, 1) only avoids a 0/0 warning; those classes get NaN anyway.
  return np.where(videos > 0, correct / np.maximum(videos, 1), np.nan)


def mean_class_accuracy(scores, labels) -> float:
  """Mean class accuracy, the metric of the paper's tables: per-class accuracy averaged over the classes
  that have at least one video.

  Every class counts the same whatever its number of videos, so it differs from top-1 accuracy when the
  classes are unbalanced. Classes with no video are left out of the mean instead of counting as 0.

  Args:
    scores: `float [N, K]`.
    labels: `int [N]` in `0..K-1`.

  Returns:
    A float in `[0, 1]`.

  Raises:
    ValueError: as `accuracy`.
  """
  per_class = per_class_accuracy(scores, labels)
  # At least one class has videos because N >= 1, so the mean is over a non-empty set.
  return float(np.mean(per_class[~np.isnan(per_class)]))


def softmax(logits, axis: int = -1) -> np.ndarray:
  """Numerically stable softmax: `exp(x - max) / sum(exp(x - max))` along `axis`.

  Subtracting the maximum first keeps `exp` from overflowing on large logits; the result is unchanged
  because softmax is invariant to adding a constant along `axis`.

  Args:
    logits: `float [...]` real array with at least one dimension.
    axis: the axis that holds the classes (default the last).

  Returns:
    `float64 [...]`, same shape, non-negative, summing to 1 along `axis`.

  Raises:
    ValueError: `logits` is not a real array, is 0-dimensional, has no entries along `axis`, `axis` is
      out of range, or `logits` holds NaN or infinity.
  """
  x = np.asarray(logits)
  if x.dtype.kind not in "fiu":
    raise ValueError(f"logits has dtype {x.dtype}; expected real numbers")
  if x.ndim == 0:
    raise ValueError("logits is a scalar; expected at least one dimension (the classes)")
  if not is_int(axis) or not -x.ndim <= axis < x.ndim:
    raise ValueError(f"axis is {axis!r}; expected an int in {-x.ndim}..{x.ndim - 1} for logits of shape "
                     f"{x.shape}")
  if x.shape[axis] == 0:
    raise ValueError(f"logits has no entries along axis {axis} (shape {x.shape}); expected at least one "
                     "class")
  x = x.astype(np.float64)
  if not np.isfinite(x).all():
    raise ValueError("logits holds NaN or infinity; expected finite values")
  # A difference beyond the float64 range (e.g. -1e308 - 1e308) overflows to -inf, whose exp is the right
  # limit, 0: the warning would only be noise.
  with np.errstate(over="ignore"):
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
  return shifted / np.sum(shifted, axis=axis, keepdims=True)
