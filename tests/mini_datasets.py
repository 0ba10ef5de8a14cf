"""Miniature UCF101 and HMDB51 folders in the layout of the extracted archives, from the real clips.

The official split files (tests/data/splits) are copied whole, so a mini dataset names all 13,320 (6,766)
videos but holds only a few: the rest are reported missing, as in a partly downloaded dataset. The clips
are real UCF101 and HMDB51 videos (tests/data/SOURCES.md); where a split names more videos than we ship,
a real clip of another class stands in under the official name.
"""

from __future__ import annotations

from pathlib import Path
import shutil

DATA = Path(__file__).resolve().parent / "data"
UCF_CLIP = DATA / "clips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
HMDB_BOW = DATA / "clips" / "hmdb51" / "6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi"
HMDB_SWING = DATA / "clips" / "hmdb51" / "BaseballHitinSlowMotion_swing_baseball_f_nm_np1_fr_bad_0.avi"
HMDB_PUNCH = DATA / "clips" / "hmdb51" / "AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi"

# UCF101 split 1: (official name, clip). g01..g07 are test videos in split 1, g08..g25 training videos.
UCF101_VIDEOS = {
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": UCF_CLIP,  # test, the real one
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": HMDB_BOW,  # train
    "ApplyLipstick/v_ApplyLipstick_g08_c01.avi": HMDB_SWING,  # train
    "ApplyLipstick/v_ApplyLipstick_g01_c01.avi": HMDB_BOW,  # test
}
# A name of split 1 (training) that the corrupt variant fills with a truncated file.
UCF101_CORRUPT = "Archery/v_Archery_g08_c01.avi"

# The real HMDB51 names; in split 1 the first two are training videos and the punch one a test video.
HMDB51_VIDEOS = {
    "shoot_bow/6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi": HMDB_BOW,
    "punch/AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi": HMDB_PUNCH,
    "swing_baseball/BaseballHitinSlowMotion_swing_baseball_f_nm_np1_fr_bad_0.avi": HMDB_SWING,
}


def make_mini_ucf101(root: Path, corrupt: bool = False) -> Path:
  """`root/UCF-101/<Class>/<video>.avi` and `root/ucfTrainTestlist/`; returns root (the manual_dir)."""
  shutil.copytree(DATA / "splits" / "ucfTrainTestlist", root / "ucfTrainTestlist")
  for name, clip in UCF101_VIDEOS.items():
    (root / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, root / "UCF-101" / name)
  if corrupt:
    target = root / "UCF-101" / UCF101_CORRUPT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(UCF_CLIP.read_bytes()[:3000])  # the header and a few packets of a real AVI
  return root


def make_mini_hmdb51(root: Path) -> Path:
  """`root/<class>/<video>.avi` and `root/testTrainMulti_7030_splits/`; returns root (the manual_dir)."""
  shutil.copytree(DATA / "splits" / "hmdb51_testTrainMulti_7030_splits", root / "testTrainMulti_7030_splits")
  for name, clip in HMDB51_VIDEOS.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, root / name)
  return root
