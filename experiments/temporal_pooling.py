"""How the windows' representations are merged (REFERENCE.md "Windows"): mean, max or ARP after the last
convolution block (CaffeNet, dynamic images of windows of 10 frames every 6).

    python -m arp_jax.sweep experiments/temporal_pooling.py --workdir runs/temporal_pooling/ucf101
"""

from arp_jax import paper_configs

# Mean class accuracy %, UCF101 split 1.
PAPER = {"mean": 66.2, "max": 68.3, "arp": 65.2}


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, merge=mean|max|arp, caffenet_size=224|227, runlocal."""
  args = paper_configs.arguments(arg, merge="max", caffenet_size=paper_configs.CAFFENET_SIZES[0])
  return paper_configs.stream_config(args["dataset"], args["split"], "di", "caffenet", args["runlocal"],
                                     caffenet_size=args["caffenet_size"], merge=args["merge"])


def get_hyper(h):
  return h.sweep("merge", list(PAPER))


def paper_result(point):
  if point.get("dataset", "ucf101") != "ucf101" or "merge" not in point:
    return None
  return PAPER[point["merge"]]
