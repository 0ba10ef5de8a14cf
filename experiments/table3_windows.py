"""Table 3: multiple dynamic images, the window length tau and stride s (CaffeNet, DI at the input).

    python -m arp_jax.sweep experiments/table3_windows.py --workdir runs/table3/ucf101

Points (UCF101 split 1 in the paper; any dataset/split here): tau/s in 5/3, 10/3, 10/6, 20/6, 20/12. The
paper's "whole video" row (one dynamic image per video, 55.2 %) is not a window of the frames pipeline: it
is Table 2's ARP, the precomputed dynamic images of `experiments/table1_summary_images.py:summary=arp`.
"""

from arp_jax import paper_configs

# Mean class accuracy %, UCF101 split 1 (REFERENCE.md, Table 3).
PAPER = {(5, 3): 63.9, (10, 3): 66.9, (10, 6): 67.4, (20, 6): 60.7, (20, 12): 58.9}


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, window=tau, stride=s, caffenet_size=224|227, runlocal."""
  args = paper_configs.arguments(arg, window=10, stride=6, caffenet_size=paper_configs.CAFFENET_SIZES[0])
  return paper_configs.stream_config(args["dataset"], args["split"], "di", "caffenet", args["runlocal"],
                                     caffenet_size=args["caffenet_size"], window=args["window"],
                                     stride=args["stride"])


def get_hyper(h):
  return h.chainit([h.product([h.sweep("window", [tau]), h.sweep("stride", [s])]) for tau, s in PAPER])


def paper_result(point):
  if point.get("dataset", "ucf101") != "ucf101" or "window" not in point:
    return None
  return PAPER.get((int(point["window"]), int(point["stride"])))
