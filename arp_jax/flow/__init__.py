"""Optical flow for the flow streams: computed between consecutive frames, quantised to 8 bits, stored.

The paper's flow streams use TV-L1 flow (Zach, Pock, Bischof 2007) with each displacement clipped to
+-20 px and rescaled linearly to 0..255 (`quantize`), stored as one grey JPEG per component in the
TSN/denseflow layout (`layout.write_flow_jpegs`, `layout.read_flow_jpegs`). Components are (u, v): u positive to the
right, v downwards; flow k goes from frame k to frame k+1.

  methods.py       `compute_flow(frames, method)`: "tvl1" (the JAX op), "tvl1_opencv", "farneback", "dis";
                   `FLOW_IDENTITIES`, what prepared data records as its flow
  tvl1.py          `tvl1`, TV-L1 flow as a batched JAX op (pyramid.py: its image helpers)
  batching.py      `flow_of_videos`: `tvl1` of many videos in batches of consecutive pairs
  opencv.py        flow by OpenCV (DualTVL1, Farneback, DIS); OpenCV loads on first use
  quantization.py  `quantize` / `dequantize` between pixels and 8-bit codes
  layout.py        the x_00001.jpg / y_00001.jpg files (imported on its own: it needs PIL and PyAV)
"""

from arp_jax.flow.batching import flow_of_videos
from arp_jax.flow.methods import FLOW_IDENTITIES, FLOW_METHODS, compute_flow
from arp_jax.flow.opencv import FARNEBACK_PARAMS
from arp_jax.flow.quantization import DEFAULT_BOUND, dequantize, quantize
from arp_jax.flow.tvl1 import tvl1

__all__ = ["DEFAULT_BOUND", "FARNEBACK_PARAMS", "FLOW_IDENTITIES", "FLOW_METHODS", "compute_flow", "dequantize",
           "flow_of_videos", "quantize", "tvl1"]
