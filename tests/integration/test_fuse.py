"""Tests for arp_jax.scores (the per-video scores file) and arp_jax.fuse (late fusion, Table 8, CLI)."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arp_jax import cli, fuse, metrics
from arp_jax.scores import Scores, load_scores, save_scores

from paths import REPO


def _softmax(row):
  """Softmax of one row by hand, with math.exp, independent of the code under test."""
  e = [math.exp(v) for v in row]
  return [v / sum(e) for v in e]


def _random_scores(seed: int, n: int = 40, k: int = 5, names=None, labels=None, boost: float = 1.0) -> Scores:
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, k, n) if labels is None else labels
  names = [f"c{label}/v_{i:03d}.avi" for i, label in enumerate(labels)] if names is None else names
  logits = rng.normal(size=(n, k))
  logits[np.arange(n), labels] += boost
  return Scores(names=names, labels=labels, scores=logits)


def _permuted(scores: Scores, seed: int) -> Scores:
  order = np.random.default_rng(seed).permutation(len(scores))
  return Scores(names=[scores.names[i] for i in order], labels=scores.labels[order],
                scores=scores.scores[order], classes=scores.classes)


# Two complementary streams over 2 classes: A is sure and right on videos 0 and 1 and unsure and wrong on
# 2 and 3; B the other way round. Each alone gets 2 of 4; their softmax average gets all 4.
NAMES = ("a/v0.avi", "b/v1.avi", "a/v2.avi", "b/v3.avi")
LABELS = np.array([0, 1, 0, 1])
STREAM_A = Scores(NAMES, LABELS, [[3.0, 0.0], [0.0, 3.0], [0.0, 0.5], [0.5, 0.0]], classes=("a", "b"))
STREAM_B = Scores(NAMES, LABELS, [[0.0, 0.5], [0.5, 0.0], [3.0, 0.0], [0.0, 3.0]], classes=("a", "b"))


# Scores -------------------------------------------------------------------------------------------------


def test_scores_normalises_and_freezes_its_fields():
  logits = np.array([[1.0, 2.0], [3.0, 4.0]])
  labels = np.array([1, 0], np.int32)
  s = Scores(names=["x/1.avi", "y/2.avi"], labels=labels, scores=logits, classes=["x", "y"])
  assert s.names == ("x/1.avi", "y/2.avi") and s.classes == ("x", "y")
  assert s.labels.dtype == np.int64 and s.scores.dtype == np.float32
  assert (s.num_videos, s.num_classes, len(s)) == (2, 2, 2)
  with pytest.raises(ValueError):
    s.scores[0, 0] = 7.0  # read-only
  logits[0, 0] = 9.0  # a copy: the caller's array does not reach inside
  assert s.scores[0, 0] == 1.0
  with pytest.raises(AttributeError):
    s.names = ("z",)


@pytest.mark.parametrize("change, match", [
    (dict(names=["a", "a", "b"]), r"video 'a' appears more than once"),
    (dict(names=["a", "b"]), r"scores has shape \(3, 2\); expected \[N, K\] = \[2, K\]"),
    (dict(names=["a", 3, "c"]), r"names\[1\] is 3; expected a non-empty string"),
    (dict(names="abc"), r"single string"),
    (dict(names=[]), r"names is empty"),
    (dict(labels=[0, 2, 1]), r"label 2 of video 'b' is outside 0..1"),
    (dict(labels=[0, 1]), r"labels has shape \(2,\); expected \[3\]"),
    (dict(labels=[0.0, 1.0, 1.0]), r"labels has dtype float64"),
    (dict(scores=[[0.0, 1.0], [np.nan, 0.0], [1.0, 0.0]]), r"scores of video 'b' \(row 1\) hold NaN"),
    (dict(scores=[[0.0, 1.0], [0.0, 1e300], [1.0, 0.0]]), r"scores of video 'b' \(row 1\) hold NaN or inf"),
    (dict(scores=[0.0, 1.0, 2.0]), r"scores has shape \(3,\)"),
    (dict(classes=["x"]), r"classes has 1 names but scores have K = 2"),
    (dict(classes=["x", "x"]), r"class 'x' appears more than once"),
])
def test_scores_refuses_inconsistent_fields(change, match):
  fields = dict(names=["a", "b", "c"], labels=[0, 1, 1], scores=[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
  fields.update(change)
  with pytest.raises(ValueError, match=match):
    Scores(**fields)


def test_save_load_round_trip(tmp_path):
  original = _random_scores(0)
  original = Scores(original.names, original.labels, original.scores, classes=[f"c{k}" for k in range(5)])
  path = save_scores(tmp_path / "rgb.npz", original)
  assert path == tmp_path / "rgb.npz"
  loaded = load_scores(str(path))
  assert loaded.names == original.names and loaded.classes == original.classes
  np.testing.assert_array_equal(loaded.labels, original.labels)
  np.testing.assert_array_equal(loaded.scores, original.scores)
  assert loaded.scores.dtype == np.float32 and loaded.labels.dtype == np.int64
  # The documented layout, readable without pickle.
  with np.load(path, allow_pickle=False) as archive:
    assert sorted(archive.files) == ["classes", "labels", "names", "scores"]
    assert archive["names"].dtype.kind == "U"
    assert archive["names"][0] == original.names[0]


def test_save_without_classes_has_no_classes_key(tmp_path):
  save_scores(tmp_path / "s.npz", STREAM_A)
  without = Scores(NAMES, LABELS, STREAM_A.scores)
  save_scores(tmp_path / "s.npz", without)  # replaces the file
  with np.load(tmp_path / "s.npz", allow_pickle=False) as archive:
    assert "classes" not in archive.files
  assert load_scores(tmp_path / "s.npz").classes is None


def test_save_leaves_no_temporary_file(tmp_path):
  save_scores(tmp_path / "a.npz", STREAM_A)
  save_scores(tmp_path / "a.npz", STREAM_B)
  assert os.listdir(tmp_path) == ["a.npz"]
  np.testing.assert_array_equal(load_scores(tmp_path / "a.npz").scores, STREAM_B.scores)


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
  path = save_scores(tmp_path / "a.npz", STREAM_A)
  before = path.read_bytes()

  def interrupted_savez(file, **arrays):
    file.write(b"PK\x03\x04 half an archive")
    raise KeyboardInterrupt

  monkeypatch.setattr(np, "savez", interrupted_savez)
  with pytest.raises(KeyboardInterrupt):
    save_scores(path, STREAM_B)
  assert os.listdir(tmp_path) == ["a.npz"]
  assert path.read_bytes() == before


def test_save_refuses_bad_targets(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    save_scores(tmp_path / "missing" / "a.npz", STREAM_A)
  with pytest.raises(ValueError, match="is a folder"):
    save_scores(tmp_path, STREAM_A)
  with pytest.raises(TypeError, match="expected an arp_jax.scores.Scores"):
    save_scores(tmp_path / "a.npz", {"names": NAMES})


def test_load_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"nothing\.npz.*does not exist"):
    load_scores(tmp_path / "nothing.npz")


def test_load_garbage_bytes(tmp_path):
  path = tmp_path / "garbage.npz"
  path.write_bytes(b"\x00\x01 this is not an archive at all" * 10)
  with pytest.raises(ValueError, match=r"garbage\.npz.*not an \.npz archive"):
    load_scores(path)


def test_load_truncated_and_corrupted_archives(tmp_path):
  whole = save_scores(tmp_path / "whole.npz", _random_scores(1)).read_bytes()
  truncated = tmp_path / "truncated.npz"
  truncated.write_bytes(whole[: len(whole) // 2])
  with pytest.raises(ValueError, match=r"truncated\.npz.*damaged"):
    load_scores(truncated)
  # Flipped bytes inside the scores member: the zip directory is intact, the CRC check fails on reading.
  corrupted = bytearray(whole)
  start = whole.index(b"scores.npy") + 200
  corrupted[start:start + 16] = bytes(16)
  (tmp_path / "corrupted.npz").write_bytes(bytes(corrupted))
  with pytest.raises(ValueError, match=r"corrupted\.npz.*damaged"):
    load_scores(tmp_path / "corrupted.npz")


def test_load_wrong_contents(tmp_path):
  np.savez(tmp_path / "keys.npz", names=np.array(["a"]), logits=np.zeros((1, 2)))
  with pytest.raises(ValueError, match=r"keys\.npz.*lacks the key\(s\) labels, scores"):
    load_scores(tmp_path / "keys.npz")
  np.save(tmp_path / "array.npy", np.zeros(3))
  with pytest.raises(ValueError, match=r"array\.npy.*single \.npy array"):
    load_scores(tmp_path / "array.npy")
  np.savez(tmp_path / "labels.npz", names=np.array(["a", "b"]), labels=np.array([0, 3]),
           scores=np.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"labels\.npz.*label 3 of video 'b'"):
    load_scores(tmp_path / "labels.npz")
  np.savez(tmp_path / "numbers.npz", names=np.array([1, 2]), labels=np.array([0, 1]), scores=np.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"numbers\.npz': names has dtype int64; expected unicode"):
    load_scores(tmp_path / "numbers.npz")


# fuse ---------------------------------------------------------------------------------------------------


def test_fusion_of_complementary_streams_beats_each_stream():
  for stream in (STREAM_A, STREAM_B):
    assert metrics.accuracy(stream.scores, LABELS) == 0.5
  fused = fuse.fuse([STREAM_A, STREAM_B])
  assert metrics.accuracy(fused.scores, LABELS) == 1.0
  assert metrics.mean_class_accuracy(fused.scores, LABELS) == 1.0
  # The fused scores are the log of the averaged probabilities, computed here by hand.
  expected = [[(p + q) / 2 for p, q in zip(_softmax(a), _softmax(b))]
              for a, b in zip(STREAM_A.scores.tolist(), STREAM_B.scores.tolist())]
  np.testing.assert_allclose(np.exp(fused.scores), expected, rtol=1e-6)
  np.testing.assert_allclose(expected[0], [0.665057, 0.334943], atol=1e-5)
  assert fused.names == NAMES and fused.classes == ("a", "b")
  np.testing.assert_array_equal(fused.labels, LABELS)


def test_logits_and_softmax_averages_differ():
  # A is sure of class 0 over 2; B a little surer of 1 than of 2. Their probabilities average to class 0;
  # their logits to class 2, which both streams rank second.
  names, labels = ("x/1.avi",), np.array([0])
  a = Scores(names, labels, [[10.0, 0.0, 9.0]])
  b = Scores(names, labels, [[0.0, 9.5, 9.0]])
  by_softmax = fuse.fuse([a, b])
  by_logits = fuse.fuse([a, b], use_logits=True)
  np.testing.assert_allclose(by_logits.scores, [[5.0, 4.75, 9.0]])
  expected = [(p + q) / 2 for p, q in zip(_softmax([10.0, 0.0, 9.0]), _softmax([0.0, 9.5, 9.0]))]
  np.testing.assert_allclose(np.exp(by_softmax.scores[0]), expected, rtol=1e-6)
  assert metrics.predictions(by_softmax.scores)[0] == 0
  assert metrics.predictions(by_logits.scores)[0] == 2


def test_weights_are_normalised_and_can_flip_the_prediction():
  names, labels = ("x/1.avi",), np.array([1])
  a = Scores(names, labels, [[2.0, 0.0]])
  b = Scores(names, labels, [[0.0, 1.0]])
  pa, pb = _softmax([2.0, 0.0]), _softmax([0.0, 1.0])
  equal = fuse.fuse([a, b])
  heavy_b = fuse.fuse([a, b], weights=[1, 3])
  np.testing.assert_allclose(np.exp(heavy_b.scores[0]), [0.25 * p + 0.75 * q for p, q in zip(pa, pb)],
                             rtol=1e-6)
  np.testing.assert_allclose(fuse.fuse([a, b], weights=[2.0, 6.0]).scores, heavy_b.scores)
  assert metrics.predictions(equal.scores)[0] == 0  # (0.88 + 0.27) / 2 > (0.12 + 0.73) / 2
  assert metrics.predictions(heavy_b.scores)[0] == 1
  np.testing.assert_allclose(fuse.fuse([a, b], weights=[1, 3], use_logits=True).scores, [[0.5, 0.75]])


def test_single_stream_keeps_its_predictions():
  s = _random_scores(2)
  np.testing.assert_allclose(metrics.softmax(fuse.fuse([s]).scores), metrics.softmax(s.scores), atol=1e-6)
  np.testing.assert_array_equal(fuse.fuse([s], use_logits=True).scores, s.scores)


def test_streams_are_aligned_by_name():
  a, b = _random_scores(3), _random_scores(4)
  b = Scores(a.names, a.labels, b.scores)
  shuffled = _permuted(b, seed=5)
  assert shuffled.names != b.names
  for use_logits in (False, True):
    np.testing.assert_array_equal(fuse.fuse([a, shuffled], use_logits=use_logits).scores,
                                  fuse.fuse([a, b], use_logits=use_logits).scores)
  # The result follows the first stream's order.
  assert fuse.fuse([shuffled, a]).names == shuffled.names
  np.testing.assert_allclose(fuse.fuse([shuffled, a]).scores, _permuted(fuse.fuse([a, b]), seed=5).scores,
                             rtol=1e-6)


def test_different_videos_are_named_in_the_error():
  b = Scores(("a/v0.avi", "b/v1.avi", "a/v2.avi", "c/extra.avi"), LABELS, STREAM_B.scores)
  with pytest.raises(ValueError, match=r"'SI' and 'DI' hold different videos: 1 only in 'SI' \('b/v3.avi'\); "
                                       r"1 only in 'DI' \('c/extra.avi'\)"):
    fuse.fuse([STREAM_A, b], stream_names=["SI", "DI"])
  fewer = Scores(NAMES[:2], LABELS[:2], STREAM_B.scores[:2])
  with pytest.raises(ValueError, match=r"'stream 1' and 'stream 2' hold different videos: 2 only in "
                                       r"'stream 1' \('a/v2.avi', 'b/v3.avi'\)"):
    fuse.fuse([STREAM_A, fewer])


def test_many_different_videos_are_abbreviated():
  a = _random_scores(6, n=20, names=[f"v/{i:02d}.avi" for i in range(20)])
  b = Scores([f"other/{i:02d}.avi" for i in range(20)], a.labels, a.scores)
  # Sorted, three of them, then "...".
  with pytest.raises(ValueError, match=r"20 only in 'stream 1' \('v/00.avi', 'v/01.avi', 'v/02.avi', "
                                       r"\.\.\.\); 20 only in 'stream 2' \('other/00.avi', 'other/01.avi', "
                                       r"'other/02.avi', \.\.\.\)"):
    fuse.fuse([a, b])


def test_mismatched_labels_classes_and_weights_are_refused():
  relabelled = Scores(NAMES, [0, 1, 1, 1], STREAM_B.scores)
  with pytest.raises(ValueError, match=r"video 'a/v2.avi' has label 0 in 'stream 1' but 1 in 'stream 2'"):
    fuse.fuse([STREAM_A, relabelled])
  three = Scores(NAMES, LABELS, np.zeros((4, 3)))
  with pytest.raises(ValueError, match=r"'stream 2' has 3 classes but 'stream 1' has 2"):
    fuse.fuse([STREAM_A, three])
  renamed = Scores(NAMES, LABELS, STREAM_B.scores, classes=("a", "z"))
  with pytest.raises(ValueError, match=r"class 1 is 'b' in 'stream 1' but 'z' in 'stream 2'"):
    fuse.fuse([STREAM_A, renamed])
  for weights, match in (([1.0], r"shape \(1,\); expected 2"), ([1.0, 0.0], r"finite positive"),
                         ([1.0, np.nan], r"finite positive"), ("1,2", r"string")):
    with pytest.raises(ValueError, match=match):
      fuse.fuse([STREAM_A, STREAM_B], weights=weights)
  with pytest.raises(ValueError, match=r"streams is empty"):
    fuse.fuse([])
  with pytest.raises(TypeError, match=r"streams\[1\] is a dict"):
    fuse.fuse([STREAM_A, {}])


def test_classes_come_from_the_stream_that_has_them():
  unnamed = Scores(NAMES, LABELS, STREAM_B.scores)
  assert fuse.fuse([unnamed, STREAM_A]).classes == ("a", "b")
  assert fuse.fuse([unnamed, unnamed]).classes is None


# combinations_table -------------------------------------------------------------------------------------


def _three_streams():
  """Three streams over the same 60 unbalanced videos (class k has 5 + 5k videos), each in its own order."""
  labels = np.repeat(np.arange(4), [5, 10, 15, 30])
  streams = {name: _random_scores(seed, n=60, k=4, labels=labels, boost=1.0)
             for seed, name in enumerate(("SI", "DI", "OF"), start=10)}
  names = streams["SI"].names
  return {name: _permuted(Scores(names, labels, s.scores), seed=i) if i else Scores(names, labels, s.scores)
          for i, (name, s) in enumerate(streams.items())}


def test_combinations_table_lists_every_combination_in_order():
  streams = _three_streams()
  rows = fuse.combinations_table(streams)
  assert [row[0] for row in rows] == ["SI", "DI", "OF", "SI + DI", "SI + OF", "DI + OF", "SI + DI + OF"]
  for name, s in streams.items():
    row = next(r for r in rows if r[0] == name)
    assert row[1] == pytest.approx(100 * metrics.mean_class_accuracy(s.scores, s.labels))
    assert row[2] == pytest.approx(100 * metrics.accuracy(s.scores, s.labels))
  everything = fuse.fuse(list(streams.values()))
  assert rows[-1][1] == pytest.approx(100 * metrics.mean_class_accuracy(everything.scores, everything.labels))
  assert rows[-1][2] == pytest.approx(100 * metrics.accuracy(everything.scores, everything.labels))
  # Unbalanced classes: the two metrics differ somewhere.
  assert any(abs(mean_class - top1) > 0.5 for _, mean_class, top1 in rows)


def test_combinations_table_renormalises_weights_within_each_combination():
  streams = _three_streams()
  weights = {"SI": 1.0, "DI": 3.0, "OF": 100.0}
  rows = fuse.combinations_table(streams, weights=weights, use_logits=True)
  for name, mean_class, top1 in rows:
    members = name.split(" + ")
    fused = fuse.fuse([streams[m] for m in members], weights=[weights[m] for m in members], use_logits=True)
    assert (mean_class, top1) == pytest.approx((100 * metrics.mean_class_accuracy(fused.scores, fused.labels),
                                                100 * metrics.accuracy(fused.scores, fused.labels))), name
  # The weights change the combinations with OF, so the loop above did test them.
  unweighted = fuse.combinations_table(streams, use_logits=True)
  assert [row[1:] for row in rows if "OF" in row[0]] != [row[1:] for row in unweighted if "OF" in row[0]]
  assert fuse.combinations_table(streams, weights=[1.0, 3.0, 100.0], use_logits=True) == \
      fuse.combinations_table(streams, weights=weights, use_logits=True)
  with pytest.raises(ValueError, match=r"weights are given for \['DI', 'SI'\]"):
    fuse.combinations_table(streams, weights={"SI": 1.0, "DI": 1.0})


def test_combinations_table_names_the_streams_in_errors():
  streams = _three_streams()
  streams["OF"] = Scores(streams["OF"].names[:-1], streams["OF"].labels[:-1], streams["OF"].scores[:-1])
  with pytest.raises(ValueError, match=r"'SI' and 'OF' hold different videos: 1 only in 'SI'"):
    fuse.combinations_table(streams)


# Command line -------------------------------------------------------------------------------------------


def _fuse(argv) -> int:
  """`arp-jax fuse ARGV`, in-process: the exit status."""
  return cli.main(["fuse", *argv])


@pytest.fixture
def stream_files(tmp_path):
  paths = []
  for name, s in _three_streams().items():
    paths.append(str(save_scores(tmp_path / f"{name}.npz", s)))
  return paths


def test_cli_prints_every_combination(stream_files, capsys):
  assert _fuse(stream_files) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split()[0] == "streams"
  rows = fuse.combinations_table({Path(p).stem: load_scores(p) for p in stream_files})
  assert len(lines) == 1 + 7
  for line, (name, mean_class, top1) in zip(lines[1:], rows):
    assert line.startswith(name + " ")
    assert line.split()[-2:] == [f"{mean_class:.2f}", f"{top1:.2f}"]


def test_cli_names_weights_logits_and_output(stream_files, tmp_path, capsys):
  output = tmp_path / "fused.npz"
  argv = stream_files + ["--names", "rgb,dyn,flow", "--weights", "1,2,3", "--logits", "--output", str(output)]
  assert _fuse(argv) == 0
  out = capsys.readouterr().out
  assert "rgb + dyn + flow" in out and f"wrote {output}" in out
  streams = [load_scores(p) for p in stream_files]
  expected = fuse.fuse(streams, weights=[1, 2, 3], use_logits=True)
  fused = load_scores(output)
  assert fused.names == expected.names
  np.testing.assert_array_equal(fused.scores, expected.scores)
  table = dict((r[0], r[1:]) for r in fuse.combinations_table(
      dict(zip(["rgb", "dyn", "flow"], streams)), weights=[1, 2, 3], use_logits=True))
  last = out.splitlines()[7]
  assert last.split()[-2:] == [f"{v:.2f}" for v in table["rgb + dyn + flow"]]


@pytest.mark.parametrize("extra, match", [
    (["--names", "a,b"], r"--names 'a,b' has 2 comma-separated item\(s\); expected 3"),
    (["--names", "a,a,b"], r"repeats a name"),
    (["--weights", "1,x,2"], r"not a list of numbers"),
    (["--weights", "1,0,2"], r"finite positive"),
    (["--output", "/no/such/folder/f.npz"], r"folder of --output"),
    (["--bogus"], r"unrecognized arguments: --bogus"),
])
def test_cli_refuses_bad_options(stream_files, capsys, extra, match):
  assert _fuse(stream_files + extra) == 2
  captured = capsys.readouterr()
  assert captured.out == ""
  assert captured.err.startswith("arp-jax fuse: error: ")
  assert len(captured.err.splitlines()) == 1
  assert re.search(match, captured.err), captured.err


def test_cli_missing_file_returns_2(stream_files, tmp_path, capsys):
  missing = str(tmp_path / "DOF.npz")
  assert _fuse(stream_files + [missing]) == 2
  captured = capsys.readouterr()
  assert captured.out == ""
  assert captured.err.startswith("arp-jax fuse: error: scores file ") and "DOF.npz" in captured.err
  assert "does not exist" in captured.err


def test_cli_same_stems_need_names(tmp_path, capsys):
  (tmp_path / "rgb").mkdir()
  (tmp_path / "flow").mkdir()
  a = save_scores(tmp_path / "rgb" / "scores.npz", STREAM_A)
  b = save_scores(tmp_path / "flow" / "scores.npz", STREAM_B)
  assert _fuse([str(a), str(b)]) == 2
  assert "--names" in capsys.readouterr().err
  assert _fuse([str(a), str(b), "--names", "SI,OF"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [line.split()[0] for line in lines[1:]] == ["SI", "OF", "SI"]
  assert lines[-1].split()[-2:] == ["100.00", "100.00"] and lines[1].split()[-2:] == ["50.00", "50.00"]


def test_cli_runs_as_a_module(stream_files):
  result = subprocess.run([sys.executable, "-m", "arp_jax.fuse", *stream_files[:2], "--names", "SI,DI"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert [line.split()[0] for line in result.stdout.splitlines()] == ["streams", "SI", "DI", "SI"]
  missing = subprocess.run([sys.executable, "-m", "arp_jax.fuse", "nowhere.npz"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
  assert missing.returncode == 2 and missing.stderr.startswith("arp-jax fuse: error: ")
