"""CaffeNet weights from a NumPy `.npz` dump of the Caffe model (e.g. bvlc_reference_caffenet)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax.weights.layout import (Target, abstract_variables, adapt_input_channels, check_converter_args,
                                    classifier_size, conv_to_flax, convert_arrays, dense_to_flax,
                                    existing_file, flatten, fresh_classifier, same, source_layout, to_numpy)

CAFFENET_KEYS = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "conv3_w", "conv3_b", "conv4_w", "conv4_b",
                 "conv5_w", "conv5_b", "fc6_w", "fc6_b", "fc7_w", "fc7_b", "fc8_w", "fc8_b")


def from_caffe_npz(path, num_classes: int | None = None, in_channels: int = 3, flow_init: str = "first",
                   rng: jax.Array | None = None) -> dict:
  """CaffeNet variables from a NumPy `.npz` dump of the Caffe model (e.g. bvlc_reference_caffenet).

  The file holds one array per blob, in Caffe's layouts (1000 classes shown):

      conv1_w [96, 3, 11, 11]   conv1_b [96]       conv2_w [256, 48, 5, 5]   conv2_b [256]
      conv3_w [384, 256, 3, 3]  conv3_b [384]      conv4_w [384, 192, 3, 3]  conv4_b [384]
      conv5_w [256, 192, 3, 3]  conv5_b [256]      fc6_w [4096, 9216]        fc6_b [4096]
      fc7_w [4096, 4096]        fc7_b [4096]       fc8_w [1000, 4096]        fc8_b [1000]

  Convolutions are [out, in / groups, kh, kw]; fully connected layers [out, in], with fc6's input being
  pool5 flattened in C, H, W order (fc6_w may also be given as [4096, 256, 6, 6]). The converter reorders
  fc6 to the H, W, C flattening of `CaffeNet`, and turns conv1 to RGB: Caffe's conv1 reads B, G, R (its
  images come from OpenCV), so a 3-channel conv1_w has its input-channel axis reversed, and the
  converted CaffeNet takes R, G, B images in 0..255 minus BVLC's mean (the "caffe" convention of
  `arp_jax.normalization`, which `convert` records). This happens before a flow conv1 is built:
  flow_init "first" then keeps the R and G filters (u, v), as from any RGB checkpoint (in Caffe's own
  order it would be B and G); "mean" does not depend on the order. A conv1_w that does not have 3 input
  channels is taken as it is.

  Args:
    path: the `.npz` file (or a mapping with the same keys).
    num_classes, in_channels, flow_init, rng: as in `from_torch` (the classifier is fc8, the first
      convolution conv1).

  Returns:
    {"params": ...} for `CaffeNet(num_classes=..., in_channels=...)`, float32 JAX arrays.

  Raises:
    FileNotFoundError: no such file. ValueError: a missing, unexpected or wrongly shaped array (the
    message names the key).
  """
  check_converter_args(num_classes, in_channels, flow_init)
  if isinstance(path, Mapping):
    arrays = dict(path)
  else:
    with np.load(existing_file(path), allow_pickle=False) as npz:
      arrays = {key: npz[key] for key in npz.files}

  num_classes, fresh = classifier_size(num_classes, arrays, "fc8_w")
  if "conv1_w" in arrays:
    conv1 = to_numpy(arrays["conv1_w"], "conv1_w")
    if conv1.ndim == 4 and conv1.shape[1] == 3:
      conv1 = conv1[:, ::-1]  # B, G, R -> R, G, B
    arrays["conv1_w"] = adapt_input_channels(conv1, in_channels, flow_init, "conv1_w")
  if "fc6_w" in arrays and np.ndim(arrays["fc6_w"]) == 4:
    arrays["fc6_w"] = to_numpy(arrays["fc6_w"], "fc6_w").reshape(np.shape(arrays["fc6_w"])[0], -1)

  params = flatten(abstract_variables("caffenet", num_classes, in_channels)["params"])
  pool5 = (6, 6, 256)  # H, W, C of the map fc6 reads

  def fc6_to_flax(w: np.ndarray) -> np.ndarray:
    # Caffe's input index is c * 36 + h * 6 + w; ours is (h * 6 + w) * 256 + c.
    return w.reshape(w.shape[0], pool5[2], pool5[0], pool5[1]).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])

  targets: dict[str, Target] = {}
  for (layer, leaf), value in params.items():
    if fresh and layer == "fc8":
      continue
    key = f"{layer}_{'w' if leaf == 'kernel' else 'b'}"
    if leaf == "bias":
      targets[key] = ("params", (layer, leaf), value.shape, same)
    elif layer == "fc6":
      targets[key] = ("params", (layer, leaf), source_layout(value.shape), fc6_to_flax)
    else:
      targets[key] = ("params", (layer, leaf), source_layout(value.shape),
                      conv_to_flax if len(value.shape) == 4 else dense_to_flax)
  if fresh:
    arrays.pop("fc8_w", None)
    arrays.pop("fc8_b", None)
  variables = convert_arrays(arrays, targets, f"caffenet with in_channels={in_channels}")
  if fresh:
    kernel, bias = fresh_classifier(rng, params[("fc8", "kernel")].shape[0], num_classes)
    variables["params"]["fc8"] = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
  return variables
