"""Tables 1 and 2: one summary image per video (CaffeNet): mean, max, motion history and dynamic images.

    python -m data_prep.build --dataset ucf101 --manual_dir ~/ucf101 --data_dir ~/tensorflow_datasets \\
        --dynamic_images rgb_single_mean,rgb_single_max,rgb_single_mhi,rgb_single_rp,rgb_single
    python -m arp_jax.sweep experiments/table1_summary_images.py --workdir runs/table1/ucf101

As in the paper ("all pooling methods are applied offline and the resulting summary images are cached"),
each video becomes one image when the dataset is prepared (`data_prep.dynamic.summary_images`), stored as
an 8-bit image (dynamic images min-max scaled to 0..255, the paper's step iv; mean and max images in the
frames' own range; the motion history image from 0..1) and fed to CaffeNet like a frame, minus the mean
(`input.offline_values="image"`). Points (`summary=`):

  mean, max, mhi  Table 1's baselines (mean image, max image, motion history image);
  rp              the dynamic image by exact rank pooling in section 5.3's order (square root, time-varying
                  mean, one SVR per channel, C = 10): Table 1's "Dynamic Image" (57.2 %) and Table 2's RP
                  row (57.9 %);
  arp             approximate rank pooling, eq. 3: Table 2's ARP row (55.2 %; Table 3's "whole video").

Table 2's other columns, frames per second and the pairwise ranking accuracy of RP and ARP over the test
videos, are measured by `python -m arp_jax.ranking_study --dataset ucf101_frames/split1 --out FILE`.
"""

from arp_jax import paper_configs

SUMMARIES = ("mean", "max", "mhi", "rp", "arp")
# Mean class accuracy %, UCF101 split 1 (REFERENCE.md, Tables 1 and 2; rp: Table 1's, Table 2 has 57.9).
PAPER = {"mean": 52.6, "max": 48.0, "mhi": 46.6, "rp": 57.2, "arp": 55.2}
# The `data_prep` dataset of each summary image (`--dynamic_images` of `python -m data_prep.build`).
DATASET_VARIANTS = {"mean": "rgb_single_mean", "max": "rgb_single_max", "mhi": "rgb_single_mhi",
                    "rp": "rgb_single_rp", "arp": "rgb_single"}


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, summary=mean|max|mhi|rp|arp, caffenet_size=224|227, runlocal."""
  args = paper_configs.arguments(arg, summary="arp", caffenet_size=paper_configs.CAFFENET_SIZES[0])
  if args["summary"] not in SUMMARIES:
    raise ValueError(f"summary is {args['summary']!r}; expected one of {SUMMARIES}")
  config = paper_configs.stream_config(args["dataset"], args["split"], "si", "caffenet",
                                       caffenet_size=args["caffenet_size"])
  variant = DATASET_VARIANTS[args["summary"]]
  config.dataset.name = f"{args['dataset']}_dynamic_images/split{args['split']}_{variant}"
  config.input.update(offline=True, offline_values="image", train_windows=1, test_windows=1)
  config.eval.aggregate = "network"  # one image per video: nothing to average
  return paper_configs.shrink(config) if args["runlocal"] else config


def get_hyper(h):
  return h.sweep("summary", list(SUMMARIES))


def paper_result(point):
  if point.get("dataset", "ucf101") != "ucf101":
    return None
  return PAPER.get(point.get("summary"))
