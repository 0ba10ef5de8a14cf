r"""Table 5: parametric pooling (PP1, PP2) at depth conv1..conv4 of CaffeNet; the config is Table 4's
(experiments/table4_dynamic_maps.py), only the sweep differs.

    python -m arp_jax.sweep experiments/table5_parametric_pooling.py:dataset=ucf101 \
        --workdir runs/table5/ucf101

The pooling parameters train with the reference's learning-rate multiplier 0.1 (config.optim.multipliers).
§5.7 places parametric pooling "after the ReLU layer following the specified convolutional layer"; by
default that is Table 4's depth (the input of convX, "Similar to the dynamic map experiments"), and
`placement=after_relu` puts conv2 and conv3 right after conv1's and conv2's ReLU, before their max-pool
and LRN (see experiments/table4_dynamic_maps.py):

    python -m arp_jax.sweep experiments/table5_parametric_pooling.py:placement=after_relu \
        --workdir runs/table5_after_relu/ucf101
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("table4_dynamic_maps",
                                               Path(__file__).with_name("table4_dynamic_maps.py"))
table4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table4)

get_config = table4.get_config
paper_result = table4.paper_result


def get_hyper(h):
  return table4.sweep_poolings(h, ["pp1", "pp2"])
