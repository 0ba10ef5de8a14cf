"""Table 7: optical flow (OF) and dynamic optical flow (DOF) streams of ResNeXt-50.

    python -m arp_jax.sweep experiments/table7_flow.py:dataset=hmdb51 --workdir runs/table7/hmdb51

Points: split 1..3 x stream (of, dof); OF + DOF is their fusion (`python -m arp_jax.fuse`). Flow networks
start from ImageNet weights with conv1 adapted to 2 channels (`arp-jax convert ... --in-channels 2`).
"""

from arp_jax import paper_configs

# Mean class accuracy %, 3 splits averaged (REFERENCE.md, Table 7): stream -> (UCF101, HMDB51).
PAPER = {"of": (84.9, 55.8), "dof": (86.6, 58.9)}
PAPER_FUSION = (89.1, 62.6)  # OF + DOF


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, stream=of|dof,
  frame_streams=max_merge|softmax_mean (OF), runlocal."""
  return paper_configs.streams_config(arg, "resnext50_32x4d", tuple(PAPER), default="dof")


def get_hyper(h):
  return paper_configs.split_stream_sweep(h, tuple(PAPER))


def paper_result(point):
  if "stream" not in point:
    return None
  return PAPER[point["stream"]][1 if point.get("dataset") == "hmdb51" else 0]
