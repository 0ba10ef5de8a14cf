r"""Table 8: the four streams (SI, DI, OF, DOF) of ResNeXt-50 and their fusion, UCF101 and HMDB51.

    python -m arp_jax.train --config experiments/table8_four_stream.py:dataset=hmdb51,split=2,stream=dof \
        --workdir runs/table8/hmdb51/split=2,stream=dof
    python -m arp_jax.sweep experiments/table8_four_stream.py:dataset=ucf101 --workdir runs/table8/ucf101
    python -m arp_jax.fuse runs/table8/ucf101/split=1,stream={si,di,of,dof}/scores.npz --names SI,DI,OF,DOF

The sweep trains each stream on each split (12 runs per dataset); `arp_jax.fuse` then gives the table's
combinations per split. Set `init_from` to a converted ImageNet ResNeXt-50 (`arp-jax convert --arch
resnext50_32x4d ... --num-classes 101`, `--in-channels 2` for the flow streams), as the paper does.
"""

from arp_jax import paper_configs

# Mean class accuracy %, averaged over the 3 splits (REFERENCE.md, Table 8): (UCF101, HMDB51).
PAPER = {"si": (87.6, 53.5), "di": (86.6, 57.3), "of": (84.9, 55.8), "dof": (86.6, 58.9)}
PAPER_FUSION = {"SI + OF": (93.9, 67.5), "SI + DI": (90.6, 61.3), "OF + DOF": (89.1, 62.6),
                "SI + DI + OF + DOF": (95.0, 71.5)}


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, stream=si|di|of|dof,
  frame_streams=max_merge|softmax_mean (SI, OF), runlocal."""
  return paper_configs.streams_config(arg, "resnext50_32x4d")


def get_hyper(h):
  return paper_configs.split_stream_sweep(h)


def paper_result(point):
  """The paper's figure for a point ({"stream": ..., "dataset": ...}; UCF101 when unnamed)."""
  if "stream" not in point:
    return None
  return PAPER[point["stream"]][1 if point.get("dataset") == "hmdb51" else 0]
