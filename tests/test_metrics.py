"""Tests for arp_jax.metrics on small hand-computed cases."""

import numpy as np
import pytest

from arp_jax import metrics


def _scores_for(predictions, num_classes: int) -> np.ndarray:
  """float [N, K] scores whose argmax is `predictions`, with distinct non-trivial values elsewhere."""
  predictions = np.asarray(predictions)
  rng = np.random.default_rng(len(predictions))
  scores = rng.uniform(-1.0, 1.0, (len(predictions), num_classes))
  scores[np.arange(len(predictions)), predictions] = 2.0
  return scores


# Three classes, unbalanced: class 0 has 4 videos (all right), class 1 has 1 (wrong), class 2 has 1 (right).
UNBALANCED_LABELS = np.array([0, 0, 0, 0, 1, 2])
UNBALANCED_PREDICTIONS = np.array([0, 0, 0, 0, 0, 2])


def test_top1_and_mean_class_accuracy_differ_on_unbalanced_classes():
  scores = _scores_for(UNBALANCED_PREDICTIONS, 3)
  # Top-1: 5 of 6 videos. Mean class: (4/4 + 0/1 + 1/1) / 3.
  assert metrics.accuracy(scores, UNBALANCED_LABELS) == pytest.approx(5 / 6)
  np.testing.assert_allclose(metrics.per_class_accuracy(scores, UNBALANCED_LABELS), [1.0, 0.0, 1.0])
  assert metrics.mean_class_accuracy(scores, UNBALANCED_LABELS) == pytest.approx(2 / 3)
  assert isinstance(metrics.accuracy(scores, UNBALANCED_LABELS), float)
  assert isinstance(metrics.mean_class_accuracy(scores, UNBALANCED_LABELS), float)


def test_partial_recall_per_class():
  # Class 0: 2 of 3 right; class 1: 1 of 2 right. Top-1 3/5, mean class (2/3 + 1/2) / 2 = 7/12.
  labels = np.array([0, 0, 0, 1, 1])
  scores = _scores_for([0, 1, 0, 1, 0], 2)
  np.testing.assert_allclose(metrics.per_class_accuracy(scores, labels), [2 / 3, 1 / 2])
  assert metrics.accuracy(scores, labels) == pytest.approx(3 / 5)
  assert metrics.mean_class_accuracy(scores, labels) == pytest.approx(7 / 12)


def test_class_without_videos_is_nan_and_left_out_of_the_mean():
  scores = _scores_for(UNBALANCED_PREDICTIONS, 4)  # class 3 has no video
  per_class = metrics.per_class_accuracy(scores, UNBALANCED_LABELS)
  assert per_class.shape == (4,) and per_class.dtype == np.float64
  np.testing.assert_allclose(per_class[:3], [1.0, 0.0, 1.0])
  assert np.isnan(per_class[3])
  # Counting the empty class as 0 would give 2/4 instead.
  assert metrics.mean_class_accuracy(scores, UNBALANCED_LABELS) == pytest.approx(2 / 3)


def test_predictions_is_argmax_and_ties_go_to_the_lowest_class():
  scores = np.array([[0.1, 0.7, 0.2], [5.0, 5.0, 1.0], [-3.0, -2.0, -1.0]])
  predictions = metrics.predictions(scores)
  np.testing.assert_array_equal(predictions, [1, 0, 2])
  assert predictions.dtype == np.int64


def test_confusion_matrix_by_hand():
  predictions = np.array([1, 0, 2, 2, 1, 0])
  labels = np.array([0, 0, 2, 1, 1, 0])
  expected = np.array([[2, 1, 0],   # true 0: predicted 1, 0, 0
                       [0, 1, 1],   # true 1: predicted 2, 1
                       [0, 0, 1]])  # true 2: predicted 2
  confusion = metrics.confusion_matrix(predictions, labels, 3)
  np.testing.assert_array_equal(confusion, expected)
  assert confusion.dtype == np.int64


def test_confusion_matrix_keeps_classes_without_videos():
  confusion = metrics.confusion_matrix(UNBALANCED_PREDICTIONS, UNBALANCED_LABELS, 4)
  np.testing.assert_array_equal(confusion, [[4, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


def test_metrics_agree_with_confusion_matrix_and_scikit_learn():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 7, 300)
  scores = rng.normal(size=(300, 7))
  scores[np.arange(300), labels] += rng.uniform(0, 2, 300)
  confusion = metrics.confusion_matrix(metrics.predictions(scores), labels, 7)
  np.testing.assert_allclose(metrics.per_class_accuracy(scores, labels),
                             np.diag(confusion) / confusion.sum(1))
  assert metrics.accuracy(scores, labels) == pytest.approx(np.trace(confusion) / 300)
  sklearn_metrics = pytest.importorskip("sklearn.metrics")
  predicted = scores.argmax(1)
  np.testing.assert_array_equal(confusion,
                                sklearn_metrics.confusion_matrix(labels, predicted, labels=range(7)))
  assert metrics.mean_class_accuracy(scores, labels) == pytest.approx(
      sklearn_metrics.balanced_accuracy_score(labels, predicted))


def test_labels_as_python_lists_and_integer_scores():
  assert metrics.accuracy([[1, 0], [0, 1], [1, 0]], [0, 1, 1]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("bad, match", [
    (np.nan, r"scores row 2 holds NaN"),
    (np.inf, r"scores row 2 holds infinity"),
])
def test_non_finite_scores_name_the_row(bad, match):
  scores = _scores_for([0, 1, 0, 1], 2)
  scores[2, 1] = bad
  for function in (metrics.accuracy, metrics.mean_class_accuracy, metrics.per_class_accuracy):
    with pytest.raises(ValueError, match=match):
      function(scores, [0, 1, 0, 1])
  with pytest.raises(ValueError, match=match):
    metrics.predictions(scores)


def test_non_finite_rows_are_counted():
  scores = np.zeros((5, 3))
  scores[[1, 3, 4], 0] = np.nan
  with pytest.raises(ValueError, match=r"row 1 holds NaN \(and 2 more rows"):
    metrics.accuracy(scores, [0] * 5)


@pytest.mark.parametrize("scores, labels, match", [
    (np.zeros(4), [0, 1, 0, 1], r"scores has 1 dimensions.*expected \[N, K\]"),
    (np.zeros((2, 3, 4)), [0, 1], r"scores has 3 dimensions"),
    (np.zeros((0, 3)), [], r"scores is empty"),
    (np.zeros((3, 0)), [0, 0, 0], r"scores is empty"),
    (np.zeros((3, 2)), [0, 1], r"labels has 2 entries but there are 3 videos"),
    (np.zeros((3, 2)), [[0, 1, 1]], r"labels has 2 dimensions"),
    (np.zeros((3, 2)), [0, 2, 1], r"labels\[1\] is 2; expected a class index in 0..1"),
    (np.zeros((3, 2)), [0, 1, -1], r"labels\[2\] is -1"),
    (np.zeros((3, 2)), [0.0, 1.0, 1.0], r"labels has dtype float64; expected integer"),
    (np.array([["a", "b"]]), [0], r"scores has dtype <U1; expected real numbers"),
    (np.zeros((1, 2), bool), [0], r"scores has dtype bool"),
])
def test_bad_inputs_are_refused(scores, labels, match):
  with pytest.raises(ValueError, match=match):
    metrics.mean_class_accuracy(scores, labels)
  with pytest.raises(ValueError, match=match):
    metrics.accuracy(scores, labels)


@pytest.mark.parametrize("predictions, labels, num_classes, match", [
    ([0, 1], [0, 1, 1], 2, r"predictions has 2 entries but there are 3 videos"),
    ([0, 3], [0, 1], 3, r"predictions\[1\] is 3; expected a class index in 0..2"),
    ([0, 1], [5, 1], 3, r"labels\[0\] is 5"),
    ([], [], 3, r"labels is empty"),
    ([0, 1], [0, 1], 0, r"num_classes is 0; expected a positive int"),
    ([0, 1], [0, 1], 2.0, r"num_classes is 2.0"),
    ([0, 1], [0, 1], True, r"num_classes is True"),
])
def test_confusion_matrix_refuses_bad_inputs(predictions, labels, num_classes, match):
  with pytest.raises(ValueError, match=match):
    metrics.confusion_matrix(predictions, labels, num_classes)


def test_softmax_by_hand():
  probabilities = metrics.softmax(np.array([[0.0, np.log(3.0)], [1.0, 1.0]], np.float32))
  assert probabilities.dtype == np.float64
  np.testing.assert_allclose(probabilities, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-6)


def test_softmax_is_stable_for_large_logits():
  # exp(1000) overflows float64; subtracting the maximum makes it exp(0) and exp(-1).
  probabilities = metrics.softmax([1000.0, 999.0])
  e = np.exp(-1.0)
  np.testing.assert_allclose(probabilities, [1 / (1 + e), e / (1 + e)])
  assert np.isfinite(metrics.softmax([[-1e308, 1e308]])).all()


def test_softmax_along_another_axis():
  logits = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]])
  np.testing.assert_allclose(metrics.softmax(logits, axis=0), metrics.softmax(logits.T, axis=-1).T)
  np.testing.assert_allclose(metrics.softmax(logits, axis=0).sum(axis=0), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("logits, axis, match", [
    ([1.0, np.nan], -1, r"NaN or infinity"),
    ([1.0, np.inf], -1, r"NaN or infinity"),
    (3.0, -1, r"scalar"),
    ([[1.0, 2.0]], 2, r"axis is 2; expected an int in -2..1"),
    (np.zeros((2, 0)), -1, r"no entries along axis -1"),
    (["a"], -1, r"dtype <U1"),
])
def test_softmax_refuses_bad_inputs(logits, axis, match):
  with pytest.raises(ValueError, match=match):
    metrics.softmax(logits, axis=axis)
