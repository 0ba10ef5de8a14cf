"""Table 9: the four streams with ResNeXt-101 (against ResNeXt-50, experiments/table8_four_stream.py).

    python -m arp_jax.sweep experiments/table9_resnext101.py:dataset=ucf101 --workdir runs/table9/ucf101
    python -m arp_jax.fuse runs/table9/ucf101/split=1,stream={si,di,of,dof}/scores.npz --names SI,DI,OF,DOF

The paper reports only the fusion of the four streams: ResNeXt-101 95.5 % (UCF101) / 72.5 % (HMDB51),
ResNeXt-50 95.0 / 71.5 (with IDT features 96.0 / 74.9 and 95.4 / 74.2; IDT is not part of this library).
"""

from arp_jax import paper_configs

PAPER_FUSION = {"resnext101_32x4d": (95.5, 72.5), "resnext50_32x4d": (95.0, 71.5)}  # (UCF101, HMDB51)


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, stream=si|di|of|dof,
  frame_streams=max_merge|softmax_mean (SI, OF), runlocal."""
  return paper_configs.streams_config(arg, "resnext101_32x4d")


def get_hyper(h):
  return paper_configs.split_stream_sweep(h)


def paper_result(point):
  del point  # single streams are not reported for ResNeXt-101
  return None
