"""Parametric pooling (PP1, PP2): learned temporal pooling over a fixed window, the paper's learned
cousins of ARP. Pure functions of explicit parameters; `arp_jax.models.TemporalPooling` owns them in Flax.

PP1 is one learned weight per frame and a bias, `ReLU(sum_t a_t x_t + b)`: a window x 1 temporal
fully-connected layer, ARP with learned coefficients. PP2 is a window x window then window x 1 temporal
layer with a ReLU between. The layers act on the time axis alone and share their weights over pixels and
channels.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from arp_jax import checks

KINDS = {"pp1": 1, "pp2": 2}  # kind -> number of temporal layers


def init_parametric_pooling(key, kind: str, window: int = 10, init: str = "constant",
                            scale: float = 0.1) -> dict[str, dict[str, jax.Array]]:
  """Parameters of PP1 or PP2 with the reference initialisation.

  Args:
    key: PRNG key (used by init="normal").
    kind: "pp1" or "pp2".
    window: frames per window (10 in the paper).
    init: "constant" (every weight `scale`: the reference for CaffeNet) or "normal" (`scale` * N(0, 1):
      the reference for ResNeXt, where BatchNorm follows).
    scale: 0.1 in the reference.

  Returns:
    {"layer0": {"kernel": float32 [in, out], "bias": float32 [out]}, "layer1": ...}: [window, 1] for
    PP1; [window, window] and [window, 1] for PP2. Biases start at 0. (Nested dicts, not a list, so that
    the parameters flatten into named leaves inside a Flax parameter tree.)
  """
  if kind not in KINDS:
    raise ValueError(f"unknown parametric pooling {kind!r}; expected one of {tuple(KINDS)}")
  if init not in ("constant", "normal"):
    raise ValueError(f"unknown init {init!r}; expected 'constant' or 'normal'")
  if not checks.is_int(window) or window < 1:
    raise ValueError(f"window={window!r}; expected an int >= 1 (frames per window)")
  shapes = [(window, 1)] if kind == "pp1" else [(window, window), (window, 1)]
  layers = {}
  for i, (shape, layer_key) in enumerate(zip(shapes, jax.random.split(key, len(shapes)))):
    kernel = (jnp.full(shape, scale, jnp.float32) if init == "constant"
              else scale * jax.random.normal(layer_key, shape, jnp.float32))
    layers[f"layer{i}"] = {"kernel": kernel, "bias": jnp.zeros(shape[1:], jnp.float32)}
  return layers


def parametric_pooling(x, layers: Mapping[str, Mapping], axis: int = 0,
                       final_relu: bool = True) -> jax.Array:
  """Pools the time axis of `x` with learned temporal layers.

  Args:
    x: [..., window, ...] with the window's frames at `axis` (e.g. [B, S, window, h, w, c], axis=2).
    layers: from `init_parametric_pooling` (or trained): [window, 1] for PP1, [window, window] then
      [window, 1] for PP2.
    axis: the time axis.
    final_relu: ReLU on the output (the CaffeNet reference); off when BatchNorm follows (ResNeXt).

  Returns:
    float32 with the time axis removed. A ReLU follows every layer but the last, and the last too with
    `final_relu`. Differentiable in `x` and in the parameters.
  """
  axis, window = checks.check_time_axis(x, axis, "x")
  layers = [layers[name] for name in sorted(layers, key=lambda name: int(name.removeprefix("layer")))]
  if not layers:
    raise ValueError("layers is empty; expected the 1 (PP1) or 2 (PP2) temporal layers")
  if layers[0]["kernel"].shape[0] != window:
    raise ValueError(f"x has {window} frames at axis {axis} but the first temporal layer expects "
                     f"{layers[0]['kernel'].shape[0]} (parametric pooling needs a fixed window)")
  if layers[-1]["kernel"].shape[-1] != 1:
    raise ValueError(f"the last temporal layer has {layers[-1]['kernel'].shape[-1]} outputs; expected 1")
  h = jnp.moveaxis(checks.as_float32(x, "x"), axis, -1)  # [..., window]: a fully-connected layer over time
  for i, layer in enumerate(layers):
    h = h @ layer["kernel"].astype(jnp.float32) + layer["bias"].astype(jnp.float32)
    if i < len(layers) - 1 or final_relu:
      h = jax.nn.relu(h)
  return h[..., 0]
