"""Table 6: static and dynamic images with a shallow (CaffeNet) and a deep (ResNeXt-50) network.

    python -m arp_jax.sweep experiments/table6_deeper.py:dataset=ucf101 --workdir runs/table6/ucf101

Points: split 1..3 x backbone (caffenet, resnext50_32x4d) x stream (si, di); SI + DI is their fusion
(`python -m arp_jax.fuse`). Initialise from converted ImageNet weights (`init_from`), as the paper does.
"""

from arp_jax import paper_configs

BACKBONES = ("caffenet", "resnext50_32x4d")
# Mean class accuracy %, 3 splits averaged (REFERENCE.md, Table 6): backbone -> stream -> (UCF101, HMDB51).
PAPER = {"caffenet": {"si": (68.5, 36.0), "di": (70.9, 37.2)},
         "resnext50_32x4d": {"si": (87.6, 53.5), "di": (86.6, 57.3)}}
PAPER_FUSION = {"caffenet": (76.5, 39.7), "resnext50_32x4d": (90.6, 61.3)}  # SI + DI


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, backbone=caffenet|resnext50_32x4d, stream=si|di,
  frame_streams=max_merge|softmax_mean (SI), caffenet_size=224|227, runlocal."""
  args = paper_configs.arguments(arg, backbone="resnext50_32x4d", stream="di",
                                 frame_streams=paper_configs.FRAME_STREAMS[0],
                                 caffenet_size=paper_configs.CAFFENET_SIZES[0])
  if args["backbone"] not in BACKBONES or args["stream"] not in ("si", "di"):
    raise ValueError(f"backbone={args['backbone']!r}, stream={args['stream']!r}; expected a backbone of "
                     f"{BACKBONES} and stream si or di")
  return paper_configs.stream_config(args["dataset"], args["split"], args["stream"], args["backbone"],
                                     args["runlocal"], frame_streams=args["frame_streams"],
                                     caffenet_size=args["caffenet_size"])


def get_hyper(h):
  return h.product([h.sweep("split", [1, 2, 3]), h.sweep("backbone", list(BACKBONES)),
                    h.sweep("stream", ["si", "di"])])


def paper_result(point):
  if "backbone" not in point or "stream" not in point:
    return None
  return PAPER[point["backbone"]][point["stream"]][1 if point.get("dataset") == "hmdb51" else 0]
