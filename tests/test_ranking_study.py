"""Table 2's study (arp_jax.ranking_study): ranking accuracies equal the library's on the full vectors,
per-video results resume after an interruption, and bad videos are reported, not fatal."""

import json

import numpy as np
import pytest

import arp_jax
from arp_jax import ranking_study
from data_prep.dynamic import RP_C
from data_prep.jpeg import encode_jpeg
from test_rank_pooling import reference_frame_vectors


def _example(name: str, frames) -> dict:
  """A frames-dataset example as `input_pipeline.data_source` reads it (JPEG bytes)."""
  return {"name": name.encode(), "frames": [encode_jpeg(frame) for frame in frames]}


def test_accuracies_are_the_ranking_accuracy_of_each_method_on_its_vectors(small_clips):
  frames = small_clips[0][:40]
  result = ranking_study.compare_video(frames)
  features = frames.reshape(len(frames), -1).astype(np.float64)
  means = np.cumsum(features, axis=0) / np.arange(1, len(frames) + 1)[:, None]
  arp = arp_jax.ranking_accuracy(np.asarray(arp_jax.pool(frames)).reshape(-1), means.astype(np.float32))
  rp_d = np.asarray(arp_jax.rank_pool(features.astype(np.float32), C=RP_C))
  rp = arp_jax.ranking_accuracy(rp_d, reference_frame_vectors(features).astype(np.float32))
  assert result["arp"]["accuracy"] == pytest.approx(float(arp), abs=1e-6)
  assert result["rp"]["accuracy"] == pytest.approx(float(rp), abs=1e-6)
  assert 0.5 < result["rp"]["accuracy"] <= 1 and result["arp"]["seconds"] > 0 and result["rp"]["seconds"] > 0
  with pytest.raises(ValueError, match="T >= 2"):
    ranking_study.compare_video(frames[:1])


def test_run_resumes_and_reports_bad_videos(small_clips, tmp_path):
  ucf, hmdb = (clip[:24, ::2, ::2] for clip in small_clips)
  source = [_example("a.avi", ucf), _example("b.avi", hmdb), {"name": b"corrupt.avi", "frames": [b"not a jpeg"]},
            _example("still.avi", ucf[:1])]
  out = tmp_path / "table2.jsonl"
  first = ranking_study.run(source, out, max_videos=2)
  assert first["videos"] == 2 and first["skipped"] == {}
  lines = out.read_text().splitlines()
  assert [json.loads(line)["name"] for line in lines] == ["a.avi", "b.avi"]
  with out.open("a") as file:
    file.write('{"name": "corrupt.a')  # a run killed in the middle of a line

  result = ranking_study.run(source, out)
  records = [json.loads(line) for line in out.read_text().splitlines()[len(lines):]]  # the torn line is gone
  assert [r["name"] for r in records] == ["corrupt.avi", "still.avi"]  # a and b were not measured again
  assert result["videos"] == 2 and set(result["skipped"]) == {"corrupt.avi", "still.avi"}
  assert "cannot decode JPEG" in result["skipped"]["corrupt.avi"] and "T >= 2" in result["skipped"]["still.avi"]
  measured = [json.loads(line) for line in lines]
  for method in ranking_study.METHODS:
    accuracies = [100 * r[method]["accuracy"] for r in measured]
    assert result[method]["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert result[method]["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert result[method]["fps"] == pytest.approx(48 / sum(r[method]["seconds"] for r in measured))
  text = ranking_study.table(result)
  assert "| RP |" in text and "| ARP |" in text and "95.5 +- 0.6" in text and "2 skipped" in text
  with pytest.raises(ValueError, match="max_videos is 0"):
    ranking_study.run(source, out, max_videos=0)


def test_command_line_errors(tmp_path, capsys):
  assert ranking_study.main(["--dataset", "ucf101_frames/split1", "--data_dir", str(tmp_path),
                             "--out", str(tmp_path / "out.jsonl")]) == 2
  assert "is not prepared under" in capsys.readouterr().err
  with pytest.raises(SystemExit) as exit_info:
    ranking_study.main(["--dataset", "ucf101_dynamic_images/split1_rgb_single", "--out", "x.jsonl"])
  assert exit_info.value.code == 2 and "expected a frames dataset" in capsys.readouterr().err
