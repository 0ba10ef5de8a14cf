"""Miniature UCF101 and HMDB51 folders in the layout of the extracted archives, from the real clips.

What the tests and every config's `runlocal` mode train on: `build_mini(dataset, data_dir)` lays out
the miniature and prepares it with `data_prep.build` (DIS flow, 64-pixel short side: seconds).

The official split files (tests/data/splits) are copied whole, so a mini dataset names all 13,320 (6,766)
videos but holds only a few: the rest are reported missing, as in a partly downloaded dataset. The clips
are real UCF101 and HMDB51 videos (tests/data/SOURCES.md); where a split names more videos than we ship,
a real clip of another class stands in under the official name.
"""

from __future__ import annotations

from pathlib import Path
import shutil

# The clips and split files ship with the repository's tests (tests/data/SOURCES.md), not with the package.
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
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


def build_mini(dataset: str, data_dir, dynamic_images: tuple[str, ...] = ()) -> Path:
  """Prepares the miniature `dataset` ("ucf101" or "hmdb51"), split 1, into `data_dir` (TFDS datasets
  `<dataset>_frames/split1` and the `dynamic_images` configs, e.g. ("rgb_w10s6",)); idempotent.

  Raises:
    FileNotFoundError: the repository's tests/data is not there (an installed package without it).
    ValueError: an unknown dataset.
  """
  from data_prep import build  # pylint: disable=import-outside-toplevel
  from data_prep.process import ProcessOptions  # pylint: disable=import-outside-toplevel

  if dataset not in ("ucf101", "hmdb51"):
    raise ValueError(f"dataset is {dataset!r}; expected 'ucf101' or 'hmdb51'")
  if not DATA.is_dir():
    raise FileNotFoundError(f"{DATA} is missing: the miniature datasets are made from the repository's "
                            "test clips (run from a clone of the repository)")
  data_dir = Path(data_dir)
  manual_dir = data_dir / f"mini_{dataset}_manual"
  if not manual_dir.is_dir():
    tmp = data_dir / f"mini_{dataset}_manual.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (make_mini_ucf101 if dataset == "ucf101" else make_mini_hmdb51)(tmp)
    tmp.rename(manual_dir)
  # The processes of one training run may all call this: each waits for the first to build, then reuses it.
  build.build_datasets(dataset, 1, manual_dir, data_dir, ProcessOptions(flow="dis", short_side=64),
                       tuple(dynamic_images), wait_for_lock=True)
  return data_dir


def add_arguments(parser) -> None:
  """`arp-jax mini-data`: --dataset, --data-dir, --dynamic-images."""
  parser.add_argument("--dataset", default="ucf101", choices=("ucf101", "hmdb51"))
  parser.add_argument("--data-dir", required=True, help="the TFDS data folder (a runlocal config's "
                      "<workdir>/mini_data, or its config.dataset.data_dir)")
  parser.add_argument("--dynamic-images", default="", metavar="CONFIGS",
                      help="comma-separated dynamic-image datasets to prepare too, e.g. rgb_w10s6,rgb_single")


def run(args) -> int:
  """Prepares the miniature dataset (split 1) and prints where it is."""
  dynamic = tuple(filter(None, (part.strip() for part in args.dynamic_images.split(","))))
  data_dir = build_mini(args.dataset, args.data_dir, dynamic)
  print(f"miniature {args.dataset} (split 1{', ' + ', '.join(dynamic) if dynamic else ''}) prepared in "
        f"{data_dir}")
  return 0


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  from arp_jax import cli  # pylint: disable=g-import-not-at-top
  sys.exit(cli.main(["mini-data", *sys.argv[1:]]))
