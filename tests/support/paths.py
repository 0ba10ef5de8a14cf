"""Where things are, for tests at any depth of tests/."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DATA = TESTS / "data"  # real clips, splits and reference outputs (attribution: tests/data/SOURCES.md)
SUPPORT = TESTS / "support"
EXPERIMENTS = REPO / "experiments"
UCF_CLIP = DATA / "clips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
HMDB_CLIP = DATA / "clips" / "hmdb51" / "6arrowswithin30seconds_shoot_bow_f_nm_np1_fr_med_3.avi"
