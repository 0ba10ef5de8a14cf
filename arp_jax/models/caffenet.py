"""CaffeNet: the BVLC reference network (AlexNet with pooling before normalisation), the paper's first
backbone.

    model = CaffeNet(num_classes=101)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    logits = model.apply(variables, images)                                   # [B, 224, 224, 3] -> [B, 101]
    maps = model.apply(variables, images, stop="conv3")                       # [B, 13, 13, 256]
    logits = model.apply(variables, pooled_maps, start="conv3")               # the rest, same variables

Layout: NHWC. The flatten before fc6 is in H, W, C order (NumPy's order of the NHWC pool5 map), not
Caffe's C, H, W; `arp_jax.weights.from_caffe_npz` reorders fc6's weights accordingly.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from arp_jax.models import layers

# (name, features, kernel, stride, padding, groups, initial bias): see the class docstring.
_CONVS = (
    ("conv1", 96, 11, 4, 0, 1, 0.0),
    ("conv2", 256, 5, 1, 2, 2, 1.0),
    ("conv3", 384, 3, 1, 1, 1, 0.0),
    ("conv4", 384, 3, 1, 1, 2, 1.0),
    ("conv5", 256, 3, 1, 1, 2, 1.0),
)


class CaffeNet(nn.Module):
  """BVLC reference CaffeNet, runnable between named boundaries.

  conv1 96x11x11/4, ReLU, max-pool 3/2, LRN; conv2 256x5x5 pad 2 groups 2, ReLU, pool, LRN;
  conv3 384x3x3 pad 1, ReLU; conv4 384x3x3 pad 1 groups 2, ReLU; conv5 256x3x3 pad 1 groups 2, ReLU,
  pool; fc6 4096, ReLU, dropout; fc7 4096, ReLU, dropout; fc8. Max-pooling rounds up like Caffe's; LRN has
  local_size 5, alpha 1e-4, beta 0.75, k 1. A 227x227 input (Caffe's) or 224x224 (the paper's) gives the
  same 6x6x256 pool5 map (conv1's last 3 pixel columns and rows go unused at 224); 60,965,224 parameters
  with 1000 classes.

  Boundaries (`BOUNDARIES`), in order:
    "conv1": the input images [B, H, W, in_channels];
    "relu1", "relu2": the output of conv1's or conv2's ReLU, before its max-pool and LRN, e.g.
      [B, 55, 55, 96] at relu1 for a 227x227 input (54x54 at 224);
    "conv2", "conv3", "conv4", "conv5": the input of that convolution (after the previous block's ReLU,
      and pool and LRN for conv2 and conv3), e.g. [B, 27, 27, 96] at conv2;
    "merge": conv5's output before its ReLU [B, 13, 13, 256], where a video model merges the maps of
      its frames by temporal pooling;
    "logits": the output [B, num_classes], float32.
  The paper's depth "convX" is "before the X-th convolutional layer" (§5.6), boundary "convX"; "relu1"
  and "relu2" are the other reading of §5.7's "after the ReLU layer following the specified convolutional
  layer" for conv2 and conv3 (`arp_jax.paper_configs.PLACEMENTS`). Before conv4 and conv5 nothing sits
  between the ReLU and the convolution, so both readings meet there.

  Attributes:
    num_classes: outputs of fc8.
    in_channels: channels of the input (3 for RGB; 2 for optical flow u, v).
    dropout_rate: rate of the dropouts after fc6 and fc7 (active only with train=True).
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32, logits come back float32.

  Initialisation (for training from scratch), as in AlexNet's paper: weights N(0, 0.01^2); biases 1 in
  conv2, conv4, conv5, fc6 and fc7 (so that their ReLUs start in the active range), 0 elsewhere. fc8, the
  classifier to replace for a new label set, has 0.01 * N(0, 1) weights and zero bias either way.
  """

  num_classes: int = 1000
  in_channels: int = 3
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  BOUNDARIES = ("conv1", "relu1", "conv2", "relu2", "conv3", "conv4", "conv5", "merge", "logits")
  # Temporal pooling inserted in this backbone, as the reference does it (`models.video`): ARP's output
  # L2-normalised to 6000 and clipped to 128 at the input (mean-subtracted pixels' range), x 0.1 then
  # ReLU deeper (it replaces ReLU outputs); parametric pooling initialised constant, ending in a ReLU.
  POOLING = {"arp_scaling": ("l2_6000_clip_128", "x0.1_relu"), "pp_init": "constant",
             "pp_batch_norm": False}

  @nn.compact
  def __call__(self, x, train: bool = False, start: str | None = None, stop: str | None = None):
    """Runs from boundary `start` (default "conv1", the input) to `stop` (default "logits").

    Args:
      x: the activation at `start`, [B, H, W, C] (channels last).
      train: dropout on (needs a "dropout" rng); CaffeNet has no BatchNorm.
      start, stop: names from `BOUNDARIES`, `start` not after `stop`.

    Returns:
      the activation at `stop`: [B, h, w, c] in `dtype`, or float32 logits [B, num_classes].
    """
    i, j = layers.boundary_range(self.BOUNDARIES, start, stop, "CaffeNet")
    merge = self.BOUNDARIES.index("merge")
    if i < j:
      layers.check_feature_map(x, f"the input at {self.BOUNDARIES[i]!r}", "CaffeNet",
                               self.in_channels if i == 0 else None)

    for piece in self.BOUNDARIES[i:min(j, merge)]:
      if piece.startswith("relu"):
        # Caffe's CaffeNet pools, then normalises (AlexNet's paper does the reverse).
        x = layers.local_response_norm(layers.caffe_max_pool(x, 3, 2))
        continue
      name, features, kernel, stride, pad, groups, bias = _CONVS[int(piece[-1]) - 1]
      x = nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                  feature_group_count=groups, dtype=self.dtype, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.normal(0.01),
                  bias_init=nn.initializers.constant(bias), name=name)(x)
      if name != "conv5":  # "merge" is conv5's output before its ReLU, which the last piece applies
        x = nn.relu(x)
    if i <= merge < j:  # the piece from "merge" to "logits"
      x = nn.relu(x)
      x = layers.caffe_max_pool(x, 3, 2)
      x = x.reshape(x.shape[0], -1)  # H, W, C order (Caffe flattens C, H, W)
      for name in ("fc6", "fc7"):
        x = nn.Dense(4096, dtype=self.dtype, param_dtype=jnp.float32,
                     kernel_init=nn.initializers.normal(0.01), bias_init=nn.initializers.ones,
                     name=name)(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(x))
      x = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32,
                   kernel_init=layers.classifier_init, bias_init=nn.initializers.zeros, name="fc8")(x)
      x = x.astype(jnp.float32)
    return x
