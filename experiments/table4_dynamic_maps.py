"""Tables 4 and 5: approximate rank pooling (dynamic maps) and parametric pooling inserted at depth
conv1 (the input: dynamic images) .. conv4 of CaffeNet, windows of 10 frames every 6.

    python -m arp_jax.sweep experiments/table4_dynamic_maps.py:dataset=hmdb51 --workdir runs/table4/hmdb51
    python -m arp_jax.train --config experiments/table4_dynamic_maps.py:depth=conv3,pooling=pp1 ...

Points: split 1..3 x depth conv1..conv4 x pooling arp (Table 4); experiments/table5_parametric_pooling.py
sweeps pp1 and pp2 (Table 5) with this same config. Deeper insertion runs every frame through the layers
before it, so a step costs up to 10x more than at conv1 (benchmarks/model_bench.py).

Depth "convX" is the input of CaffeNet's convolution X ("positioning the approximate rank before the X-th
convolutional layer", §5.6), for parametric pooling too ("Similar to the dynamic map experiments", §5.7).
`placement=after_relu` takes §5.7's "after the ReLU layer following the specified convolutional layer"
literally instead: conv2 and conv3 move before conv1's and conv2's max-pool and LRN (boundaries relu1,
relu2; `arp_jax.paper_configs.PLACEMENTS`).
"""

from arp_jax import paper_configs

DEPTHS = ("conv1", "conv2", "conv3", "conv4")
POOLINGS = ("arp", "pp1", "pp2")
# Mean class accuracy %, 3 splits averaged (REFERENCE.md, Tables 4/5): pooling -> (UCF101, HMDB51) per depth.
PAPER = {"arp": ((70.9, 68.5, 73.3, 67.6), (37.2, 38.0, 38.0, 37.4)),
         "pp1": ((67.6, 73.0, 71.9, 70.9), (34.7, 36.6, 38.4, 37.4)),
         "pp2": ((68.5, 73.9, 70.0, 69.1), (36.0, 36.9, 37.3, 37.4))}


def get_config(arg=None):
  """arg: dataset=ucf101|hmdb51, split=1..3, depth=conv1..conv4, pooling=arp|pp1|pp2,
  placement=conv_input|after_relu, caffenet_size=224|227, runlocal."""
  args = paper_configs.arguments(arg, depth="conv1", pooling="arp", placement="conv_input",
                                 caffenet_size=paper_configs.CAFFENET_SIZES[0])
  if args["depth"] not in DEPTHS or args["pooling"] not in POOLINGS:
    raise ValueError(f"depth={args['depth']!r}, pooling={args['pooling']!r}; expected a depth of {DEPTHS} "
                     f"and a pooling of {POOLINGS}")
  pool_at = paper_configs.insertion_boundary(args["depth"], args["placement"])
  return paper_configs.stream_config(args["dataset"], args["split"], "di", "caffenet", args["runlocal"],
                                     caffenet_size=args["caffenet_size"], pool_at=pool_at,
                                     pooling=args["pooling"])


def sweep_poolings(h, poolings):
  return h.product([h.sweep("split", [1, 2, 3]), h.sweep("pooling", list(poolings)),
                    h.sweep("depth", list(DEPTHS))])


def get_hyper(h):
  return sweep_poolings(h, ["arp"])


def paper_result(point):
  if "depth" not in point or "pooling" not in point:
    return None
  per_dataset = PAPER[point["pooling"]][1 if point.get("dataset") == "hmdb51" else 0]
  return per_dataset[DEPTHS.index(point["depth"])]
