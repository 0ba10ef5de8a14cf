"""Table 2's study (arp_jax.ranking_study): both methods scored S(t|d) = <d, V_t> on the same vectors by
default, each on its own as a variant, the "+-" candidates labelled, per-video results resume after an
interruption (older records are measured again), and bad videos are reported, not fatal."""

import io
import json

import numpy as np
import pytest

import arp_jax
from arp_jax import cli, ranking_study
from arp_jax.jpeg import encode_jpeg
from arp_jax.pooling.bucketed import RP_C
from arp_jax.pooling.rank_pooling import rank_pool_pixels


def _example(name: str, frames) -> dict:
  """A frames-dataset example as `input_pipeline.data_source` reads it (JPEG bytes)."""
  return {"name": name.encode(), "frames": [encode_jpeg(frame) for frame in frames]}


def pairwise_accuracy(scores) -> float:
  """Fraction of pairs q > t with scores[q] > scores[t], in float64."""
  T = len(scores)
  return float(np.mean([scores[q] > scores[t] for q in range(T) for t in range(q)]))


def running_means(frames, psi=lambda x: x):
  """float64 [T, H*W, C]: V_t = (1/t) sum_{i<=t} psi(I_i)."""
  x = psi(frames.reshape(len(frames), -1, frames.shape[-1]).astype(np.float64))
  return np.cumsum(x, axis=0) / np.arange(1, len(x) + 1)[:, None, None]


def test_each_protocol_scores_its_methods_on_its_vectors(small_clips):
  frames = small_clips[0][:40]
  result = ranking_study.compare_video(frames)
  assert list(result) == list(ranking_study.PROTOCOLS) == ["like_for_like", "per_method"]
  roots, means = running_means(frames, np.sqrt), running_means(frames)
  rp = np.asarray(rank_pool_pixels(frames, RP_C), np.float64).reshape(-1, 3)  # section 5.3's order
  arp_of_roots = np.asarray(arp_jax.pool(np.sqrt(frames.astype(np.float32))), np.float64).reshape(-1, 3)
  arp = np.asarray(arp_jax.pool(frames), np.float64).reshape(-1, 3)
  # like-for-like: S(t|d) = <d, V_t>, V_t the time-varying mean of sqrt(I_t), for both methods.
  expected = {"like_for_like": {"rp": pairwise_accuracy(np.einsum("tpc,pc->t", roots, rp)),
                                "arp": pairwise_accuracy(np.einsum("tpc,pc->t", roots, arp_of_roots))},
              # per method: ARP of the raw pixels on their means; RP on the vectors it fitted (per channel
              # L2-normalised root means).
              "per_method": {"rp": pairwise_accuracy(np.sum(np.einsum("tpc,pc->tc", roots, rp)
                                                            / np.linalg.norm(roots, axis=1), axis=1)),
                             "arp": pairwise_accuracy(np.einsum("tpc,pc->t", means, arp))}}
  for protocol, methods in expected.items():
    for method, accuracy in methods.items():
      assert result[protocol][method]["accuracy"] == pytest.approx(accuracy, abs=1e-6), (protocol, method)
      assert result[protocol][method]["seconds"] > 0
  assert result["like_for_like"]["rp"]["seconds"] == result["per_method"]["rp"]["seconds"]  # one RP
  assert 0.5 < result["like_for_like"]["rp"]["accuracy"] <= 1
  with pytest.raises(ValueError, match="T >= 2"):
    ranking_study.compare_video(frames[:1])


def test_like_for_like_scoring_ranks_a_brightening_video_perfectly():
  """Two pixels brighten steadily, sqrt(I_t) = t, while six flicker between 155 and 255. On the square-root
  means both ranking functions order all 12 frames; ARP of the raw pixels scored on their raw means (the
  old protocol, kept as per_method) is misled by the flicker, 100 grey levels against sqrt's 3.5, and
  inverts 5 of the 66 pairs."""
  t = np.arange(1, 13)
  frames = np.zeros((12, 1, 8, 3), np.uint8)
  frames[:, 0, :2] = (t ** 2)[:, None, None]
  frames[:, 0, 2:] = np.where(t % 2 == 0, 255, 155)[:, None, None]
  result = ranking_study.compare_video(frames)
  assert result["like_for_like"]["rp"]["accuracy"] == 1.0
  assert result["like_for_like"]["arp"]["accuracy"] == 1.0
  assert result["per_method"]["arp"]["accuracy"] == pytest.approx(61 / 66, abs=1e-6)


def test_run_resumes_remeasures_older_records_and_reports_bad_videos(small_clips, tmp_path):
  ucf, hmdb = (clip[:24, ::2, ::2] for clip in small_clips)
  source = [_example("Apply/a.avi", ucf), _example("Shoot/b.avi", hmdb),
            {"name": b"corrupt.avi", "frames": [b"not a jpeg"]}, _example("still.avi", ucf[:1])]
  out = tmp_path / "table2.jsonl"
  # A record of the study's first version: one protocol, RP in VideoDarwin's order, no "version".
  old = {"name": "Apply/a.avi", "frames": 24, "rp": {"accuracy": 0.5, "seconds": 1.0},
         "arp": {"accuracy": 0.5, "seconds": 1.0}}
  out.write_text(json.dumps(old) + "\n")
  log = io.StringIO()
  first = ranking_study.measure(source, out, max_videos=2, log=log)
  assert "1 records" in log.getvalue() and "measuring those videos again" in log.getvalue()
  assert first["videos"] == 2 and first["classes"] == 2 and first["skipped"] == {} and first["outdated"] == 0
  lines = out.read_text().splitlines()
  assert [json.loads(line)["name"] for line in lines] == ["Apply/a.avi", "Apply/a.avi", "Shoot/b.avi"]
  measured = [json.loads(line) for line in lines[1:]]
  assert [r["class"] for r in measured] == ["Apply", "Shoot"]
  assert all(r["version"] == ranking_study.RECORD_VERSION for r in measured)
  with out.open("a") as file:
    file.write('{"name": "corrupt.a')  # a run killed in the middle of a line

  result = ranking_study.measure(source, out)
  records = [json.loads(line) for line in out.read_text().splitlines()[len(lines):]]  # the torn line is gone
  assert [r["name"] for r in records] == ["corrupt.avi", "still.avi"]  # a and b were not measured again
  assert result["videos"] == 2 and set(result["skipped"]) == {"corrupt.avi", "still.avi"}
  assert "cannot decode JPEG" in result["skipped"]["corrupt.avi"] and "T >= 2" in result["skipped"]["still.avi"]
  for protocol in ranking_study.PROTOCOLS:
    for method in ranking_study.METHODS:
      accuracies = [100 * r[protocol][method]["accuracy"] for r in measured]
      figures = result[protocol][method]
      assert figures["accuracy_mean"] == pytest.approx(np.mean(accuracies))
      assert figures["std_videos"] == pytest.approx(np.std(accuracies, ddof=1))
      # One video per class: the class means are the videos, the clustered s.e. is std / sqrt(n).
      assert figures["std_class_means"] == pytest.approx(figures["std_videos"])
      assert figures["se_mean"] == pytest.approx(figures["std_videos"] / np.sqrt(2))
      assert figures["fps"] == pytest.approx(48 / sum(r[protocol][method]["seconds"] for r in measured))
  outdated = ranking_study.summary([old])  # older records alone: nothing measured under this protocol
  assert outdated["videos"] == 0 and outdated["outdated"] == 1 and np.isnan(outdated["like_for_like"]["rp"]["fps"])
  text = ranking_study.table(result)
  for row in ("| like_for_like | RP |", "| like_for_like | ARP |", "| per_method | RP |", "| per_method | ARP |",
              "95.5 +- 0.6", "2 skipped", "std videos | std class means | s.e. mean"):
    assert row in text
  with pytest.raises(ValueError, match="max_videos is 0"):
    ranking_study.measure(source, out, max_videos=0)


def test_accuracy_statistics_label_the_candidates_for_the_papers_plus_minus():
  accuracies, classes = [90.0, 94.0, 80.0, 84.0, 100.0], ["A", "A", "B", "B", "C"]
  got = ranking_study.accuracy_statistics(accuracies, classes)
  assert got["accuracy_mean"] == pytest.approx(89.6)
  assert got["std_videos"] == pytest.approx(np.std(accuracies, ddof=1))
  assert got["class_means"] == {"A": 92.0, "B": 82.0, "C": 100.0}
  assert got["std_class_means"] == pytest.approx(np.std([92.0, 82.0, 100.0], ddof=1))
  # Sums of deviations per class: 4.8, -15.2, 10.4; K = 3 clusters, n = 5 videos.
  assert got["se_mean"] == pytest.approx(np.sqrt(3 / 2 * (4.8 ** 2 + 15.2 ** 2 + 10.4 ** 2)) / 5)
  single = ranking_study.accuracy_statistics([95.0], ["A"])
  assert single["accuracy_mean"] == 95.0 and np.isnan(single["std_videos"]) and np.isnan(single["se_mean"])


def test_command_line_errors(tmp_path, capsys):
  assert cli.main(["ranking-study", "--dataset", "ucf101_frames/split1", "--data_dir", str(tmp_path),
                   "--out", str(tmp_path / "out.jsonl")]) == 2
  assert "is not prepared under" in capsys.readouterr().err
  assert cli.main(["ranking-study", "--dataset", "ucf101_dynamic_images/split1_rgb_single", "--out",
                   "x.jsonl"]) == 2
  assert "expected a frames dataset" in capsys.readouterr().err
