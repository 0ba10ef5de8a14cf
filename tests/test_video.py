"""Tests for arp_jax.video on the real clips in tests/data/clips (see tests/data/SOURCES.md)."""

import hashlib

import av
import numpy as np
import pytest
from PIL import Image

from arp_jax import video

from paths import DATA

CLIPS = DATA / "clips"
UCF_CLIP = CLIPS / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
HMDB_CLIPS = sorted((CLIPS / "hmdb51").glob("*.avi"))


def _header_frame_count(path) -> int:
  with av.open(str(path)) as container:
    return container.streams.video[0].frames


def _demux_decode(path) -> tuple[list[np.ndarray], list[int]]:
  """A second, independent decoding pass: packets by hand, with the frames' presentation timestamps."""
  frames, pts = [], []
  with av.open(str(path)) as container:
    stream = container.streams.video[0]
    for packet in container.demux(stream):
      # The last packet of demux is an empty flush packet; decoding it drains the decoder.
      for frame in packet.decode():
        frames.append(frame.to_ndarray(format="rgb24"))
        pts.append(frame.pts)
  return frames, pts


def test_ucf101_clip_frame_count_and_shape():
  frames = video.read_frames(UCF_CLIP)
  assert frames.shape == (164, 240, 320, 3)
  assert frames.dtype == np.uint8
  assert _header_frame_count(UCF_CLIP) == 164


@pytest.mark.parametrize("path", HMDB_CLIPS, ids=lambda p: p.name[:24])
def test_hmdb51_clips_decode_one_frame_fewer_than_header(path):
  frames = video.read_frames(path)
  assert frames.shape[0] == _header_frame_count(path) - 1
  assert frames.shape[1:] in ((240, 320, 3), (240, 424, 3))


def test_hmdb51_measured_counts():
  counts = {p.name: video.read_frames(p).shape for p in HMDB_CLIPS}
  assert counts == {
      "6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi": (81, 240, 320, 3),
      "AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi": (172, 240, 320, 3),
      "BaseballHitinSlowMotion_swing_baseball_f_nm_np1_fr_bad_0.avi": (140, 240, 424, 3),
  }


def test_decoded_pixels_checksums():
  """SHA-256 of all decoded RGB frames: pins the decoder (PyAV 18.1's FFmpeg) and conversion bit for bit."""
  checksums = {p.name: hashlib.sha256(video.read_frames(p).tobytes()).hexdigest()[:16]
               for p in HMDB_CLIPS + [UCF_CLIP]}
  assert checksums == {
      "6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi": "d018a164321743bf",
      "AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi": "f8e28ef1f5de7a24",
      "BaseballHitinSlowMotion_swing_baseball_f_nm_np1_fr_bad_0.avi": "607ae28323b9e392",
      "v_ApplyEyeMakeup_g01_c01.avi": "2189d4cec6e5c7a2",
  }


def test_frames_in_order_match_independent_demux_pass():
  frames = video.read_frames(UCF_CLIP)
  expected, _ = _demux_decode(UCF_CLIP)
  np.testing.assert_array_equal(frames, np.stack(expected))
  # The first frame is the key frame: decoding the first packet alone (plus a flush) gives it.
  with av.open(str(UCF_CLIP)) as container:
    stream = container.streams.video[0]
    first_packet = next(container.demux(stream))
    key = [f.to_ndarray(format="rgb24") for f in (*stream.decode(first_packet), *stream.decode(None))][0]
  np.testing.assert_array_equal(frames[0], key)


def test_decoder_order_is_display_order_not_pts_order():
  """The clips store packed B-frames in AVI, whose frame pts come out shuffled ([1, 2, 4, 3, 5, 7, 6, ...]).

  The decoder already emits display order; sorting by those pts would swap frames. Evidence: the video
  changes less from frame to frame in decoder order than in pts order.
  """
  frames = video.read_frames(UCF_CLIP).astype(np.float32)
  _, pts = _demux_decode(UCF_CLIP)
  assert pts != sorted(pts)
  by_pts = frames[np.argsort(pts, kind="stable")]

  def variation(x):
    return float(np.abs(np.diff(x, axis=0)).mean())

  assert variation(frames) < 0.8 * variation(by_pts)


def test_iter_frames_yields_same_frames_lazily():
  it = video.iter_frames(UCF_CLIP)
  first = next(it)
  assert first.shape == (240, 320, 3) and first.dtype == np.uint8
  np.testing.assert_array_equal(first, video.read_frames(UCF_CLIP)[0])
  it.close()


def test_read_video_dispatches(tmp_path):
  np.testing.assert_array_equal(video.read_video(UCF_CLIP), video.read_frames(UCF_CLIP))
  frame = np.full((4, 5, 3), 7, np.uint8)
  Image.fromarray(frame).save(tmp_path / "frame_1.png")
  np.testing.assert_array_equal(video.read_video(tmp_path), frame[None])


def test_frame_dir_natural_order(tmp_path):
  rng = np.random.default_rng(0)
  numbers = list(range(1, 13))
  # Creation order is shuffled, so neither creation time nor lexicographic order gives 1..12.
  for n in rng.permutation(numbers):
    Image.fromarray(np.full((6, 8, 3), int(n) * 10, np.uint8)).save(tmp_path / f"frame_{n}.png")
  (tmp_path / "notes.txt").write_text("not a frame")
  frames = video.read_frame_dir(tmp_path)
  assert frames.shape == (12, 6, 8, 3) and frames.dtype == np.uint8
  assert frames[:, 0, 0, 0].tolist() == [n * 10 for n in numbers]


def test_frame_dir_converts_to_rgb(tmp_path):
  Image.fromarray(np.full((3, 4), 90, np.uint8), mode="L").save(tmp_path / "a_1.bmp")
  Image.fromarray(np.full((3, 4, 4), 200, np.uint8), mode="RGBA").save(tmp_path / "a_2.png")
  Image.fromarray(np.full((3, 4, 3), 30, np.uint8)).save(tmp_path / "a_3.JPG", quality=100)
  frames = video.read_frame_dir(tmp_path)
  assert frames.shape == (3, 3, 4, 3)
  assert frames[0].max() == frames[0].min() == 90
  assert frames[1].max() == frames[1].min() == 200
  assert abs(int(frames[2].mean()) - 30) <= 1


def test_natural_key():
  names = ["frame_10.jpg", "frame_2.jpg", "frame_1.jpg", "img_3.jpg", "frame_02.jpg"]
  assert sorted(names, key=video.natural_key) == [
      "frame_1.jpg", "frame_02.jpg", "frame_2.jpg", "frame_10.jpg", "img_3.jpg"]


def test_missing_path_raises_file_not_found(tmp_path):
  missing = tmp_path / "nope.avi"
  for reader in (video.read_frames, video.read_frame_dir, video.read_video):
    with pytest.raises(FileNotFoundError, match="nope.avi"):
      reader(missing)


def test_corrupt_video_raises_value_error_naming_file(tmp_path):
  corrupt = tmp_path / "corrupt.avi"
  corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
  with pytest.raises(ValueError, match="corrupt.avi"):
    video.read_frames(corrupt)


def test_text_file_raises_value_error(tmp_path):
  text = tmp_path / "readme.txt"
  text.write_text("hello, not a video\n" * 20)
  with pytest.raises(ValueError, match="readme.txt"):
    video.read_video(text)


def test_empty_folder_raises(tmp_path):
  with pytest.raises(ValueError, match="no frame images"):
    video.read_frame_dir(tmp_path)


def test_folder_with_mismatched_sizes_names_file(tmp_path):
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "f_1.png")
  Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "f_2.png")
  with pytest.raises(ValueError, match="f_2.png"):
    video.read_frame_dir(tmp_path)


def test_unreadable_image_names_file(tmp_path):
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "f_1.png")
  (tmp_path / "f_2.jpg").write_bytes(b"definitely not a jpeg")
  with pytest.raises(ValueError, match="f_2.jpg"):
    video.read_frame_dir(tmp_path)


def test_readers_reject_the_wrong_kind_of_path(tmp_path):
  with pytest.raises(ValueError, match="folder"):
    video.read_frames(tmp_path)
  with pytest.raises(ValueError, match="not a folder"):
    video.read_frame_dir(UCF_CLIP)


def test_decode_fps_duration_and_frames():
  decoded = video.decode(UCF_CLIP)
  assert decoded.fps == 25.0
  assert decoded.duration == pytest.approx(164 / 25)
  np.testing.assert_array_equal(decoded.frames, video.read_frames(UCF_CLIP))


def test_decode_hmdb51_duration_uses_decoded_count():
  path = HMDB_CLIPS[0]
  decoded = video.decode(path)
  assert decoded.fps == pytest.approx(30.0)
  assert decoded.duration == pytest.approx(decoded.frames.shape[0] / decoded.fps)
  assert decoded.frames.shape[0] == _header_frame_count(path) - 1


def test_decode_short_side_resizes_during_decoding():
  decoded = video.decode(UCF_CLIP, short_side=128)
  # 320 * 128 / 240 = 170.67, rounded half up to 171.
  assert decoded.frames.shape == (164, 128, 171, 3) and decoded.frames.dtype == np.uint8
  assert decoded.fps == 25.0 and decoded.duration == pytest.approx(164 / 25)
  # Same picture as resizing the full-size frame afterwards (different resamplers: loose tolerance).
  full = video.read_frames(UCF_CLIP)[10]
  resized = np.asarray(Image.fromarray(full).resize((171, 128), Image.BILINEAR), dtype=np.float32)
  assert np.abs(decoded.frames[10].astype(np.float32) - resized).mean() < 3.0


def test_resized_size_rounding_and_orientation():
  assert video.resized_size(240, 320, None) == (240, 320)
  assert video.resized_size(240, 320, 128) == (128, 171)
  assert video.resized_size(240, 320, 256) == (256, 341)  # 341.33
  assert video.resized_size(240, 424, 256) == (256, 452)  # 452.27
  assert video.resized_size(320, 240, 128) == (171, 128)  # portrait: width is the short side
  assert video.resized_size(4, 3, 2) == (3, 2)  # 2.67 -> 3; 3 * 2 / 3 = 2 exactly
  assert video.resized_size(2, 3, 1) == (1, 2)  # 1.5 rounds half up to 2


@pytest.mark.parametrize("short_side", [0, -5, 1.5, True])
def test_decode_rejects_bad_short_side(short_side):
  with pytest.raises(ValueError, match="short_side"):
    video.decode(UCF_CLIP, short_side=short_side)


def test_decode_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.avi"):
    video.decode(tmp_path / "nope.avi")
  with pytest.raises(ValueError, match="folder"):
    video.decode(tmp_path)
  corrupt = tmp_path / "corrupt.avi"
  corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
  with pytest.raises(ValueError, match="corrupt.avi"):
    video.decode(corrupt)


def test_iter_frames_short_side():
  it = video.iter_frames(UCF_CLIP, short_side=120)
  assert next(it).shape == (120, 160, 3)
  it.close()
