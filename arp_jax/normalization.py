"""Input conventions: how pretrained weights expect their input pixels prepared, as data.

A network fine-tuned from pretrained weights must be fed what those weights were trained on. A
convention is a per-channel affine map of 0..255 values x (frames, 8-bit dynamic images, flow codes):

    out = (x * scale - mean) / std        # in the convention's own units, as its authors state it
        = (x - offset) * gain             # offset = mean / scale, gain = scale / std: what `normalize` does

    name           channels  scale   mean (R, G, B)               std (R, G, B)          weights
    "reference"    R, G, B   1       123.675, 116.28, 103.53      1, 1, 1                scratch, reference
    "torchvision"  R, G, B   1/255   0.485, 0.456, 0.406          0.229, 0.224, 0.225    torchvision, timm
    "caffe"        R, G, B   1       122.679, 116.669, 104.007    1, 1, 1                BVLC CaffeNet

"reference" is what the reference feeds its own converted ResNeXt weights and what training from scratch
uses (ImageNet's mean in 0..255, no division); `weights.from_torch` records "torchvision" (torchvision's
and timm's ImageNet weights), `weights.from_caffe_npz` "caffe" (BVLC's per-channel mean of
ilsvrc_2012_mean, 0..255; Caffe's own order is B, G, R, and the converter turns conv1 to R, G, B, so every
convention here takes RGB).

Flow (2 channels u, v, codes 0..255 with 128 = no motion, REFERENCE.md "Data"): the mean is 128 (times
`scale`) for both channels, and the std is that of the RGB channels the flow conv1 was built from
(`weights._adapt_input_channels`): flow_init "first" keeps conv1's first two input channels, R and G, so
u is divided by R's std and v by G's; "mean" averages conv1 over R, G and B, so both by the mean of the
three stds. Under "reference" and "caffe" (std 1) both variants are the codes minus 128.

Dynamic images. The ARP weights sum to zero, so a dynamic image of normalised frames is that of the
0..255 frames times `gain`: the offset cancels, and under "torchvision" the dynamic image is the 0..255
one divided by 255 * std per channel. Hence:
  * ResNeXt's x0.1 on ARP outputs (`models.video.reference_scaling`) is linear: it keeps the same ratio to
    the frames' scale under every convention, and holds as it is.
  * CaffeNet's dynamic image at conv1 is L2-normalised to 6000 and clipped to +-128, absolute sizes set
    for 0..255 inputs (the range of frames minus the mean): right for "reference" and "caffe" (gain 1);
    with "torchvision" input it would be about 57 times (255 * std) the frames' scale and the clip would
    not be the frames' range. No CaffeNet weights expect "torchvision", and
    `arp_jax.builders.input_convention` refuses that combination.
  * Offline dynamic images stored as 8-bit images (`values="image"`, min-max scaled to 0..255, as the
    paper feeds them) are normalised exactly as frames (offset and gain); their restored float values
    (`values="restored"`, weighted sums of 0..255 frames) get the gain only (`zero_sum=True`).
  * Flow: the same with the flow convention; 128 cancels in a dynamic optical flow image.

For `arp_jax.pool` users:

    x = arp_jax.normalize(frames, "torchvision")   # uint8 [T, H, W, 3] -> float32, torchvision's input
    di = arp_jax.pool(x)                            # = pool(frames) / (255 * std), channel by channel
"""

from __future__ import annotations

import dataclasses

import numpy as np

CONVENTIONS = ("reference", "torchvision", "caffe")
FLOW_INITS = ("first", "mean")
CHANNELS = {"rgb": "RGB", "flow": "uv"}
# ImageNet's mean in 0..255, R, G, B (torchvision's (0.485, 0.456, 0.406) x 255): the reference's.
RGB_MEAN = (123.675, 116.28, 103.53)
# Flow codes are centred on 128 (no motion).
FLOW_MEAN = 128.0
# (scale, mean R, G, B, std R, G, B) of each RGB convention.
_RGB = {
    "reference": (1.0, RGB_MEAN, (1.0, 1.0, 1.0)),
    "torchvision": (1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # BVLC's ilsvrc_2012_mean per channel (Caffe states it B, G, R: 104.007, 116.669, 122.679).
    "caffe": (1.0, (122.67891434, 116.66876762, 104.00698793), (1.0, 1.0, 1.0)),
}


@dataclasses.dataclass(frozen=True)
class Convention:
  """An input convention: out = (x * scale - mean) / std per channel of 0..255 values x.

  Attributes:
    name: one of `CONVENTIONS` (the weights' family).
    channels: "RGB" (frames, R, G, B) or "uv" (optical flow codes).
    scale: applied to the 0..255 values first (1 or 1/255).
    mean, std: one per channel, in scaled units.
    flow_init: for "uv", how the 2-channel conv1 was made from the RGB one ("first" or "mean"); None for
      "RGB".
  """
  name: str
  channels: str
  scale: float
  mean: tuple[float, ...]
  std: tuple[float, ...]
  flow_init: str | None = None

  def __post_init__(self):
    if self.channels not in CHANNELS.values():
      raise ValueError(f"channels is {self.channels!r}; expected one of {tuple(CHANNELS.values())}")
    n = len(self.channels)
    if len(self.mean) != n or len(self.std) != n or min(self.std) <= 0 or self.scale <= 0:
      raise ValueError(f"a {self.channels} convention needs {n} means and {n} positive stds and a positive "
                       f"scale; got scale {self.scale}, mean {self.mean}, std {self.std}")
    if (self.flow_init is None) != (self.channels == "RGB") or self.flow_init not in (None, *FLOW_INITS):
      raise ValueError(f"flow_init is {self.flow_init!r}; expected None for RGB, one of {FLOW_INITS} for "
                       "flow")

  @property
  def modality(self) -> str:
    """"rgb" or "flow", as the input pipeline names them."""
    return "rgb" if self.channels == "RGB" else "flow"

  @property
  def offset(self) -> np.ndarray:
    """float32 [C]: what is subtracted from 0..255 values (mean / scale)."""
    return np.asarray([m / self.scale for m in self.mean], np.float32)

  @property
  def gain(self) -> np.ndarray:
    """float32 [C]: the factor after the subtraction (scale / std); 1 for 0..255 conventions."""
    return np.asarray([self.scale / s for s in self.std], np.float32)

  def to_dict(self) -> dict:
    """JSON-able fields (the record `arp_jax.weights.save` writes beside a checkpoint)."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, record) -> "Convention":
    """The convention of `to_dict`'s record. ValueError for a record that is not one."""
    fields = {field.name for field in dataclasses.fields(cls)}
    if not isinstance(record, dict) or not {"name", "channels", "scale", "mean", "std"} <= set(record) \
        or not set(record) <= fields:
      raise ValueError(f"{record!r} is not an input convention record; expected the keys {sorted(fields)}")
    return cls(**{**record, "mean": tuple(record["mean"]), "std": tuple(record["std"])})


def convention(name: str, modality: str = "rgb", flow_init: str = "first") -> Convention:
  """The named convention for RGB frames or optical flow (see the module docstring's table).

  Args:
    name: one of `CONVENTIONS`.
    modality: "rgb" or "flow".
    flow_init: for flow, how the 2-channel conv1 was made from the RGB one: "first" (its R and G input
      channels) or "mean" (their average); ignored for RGB.

  Raises:
    ValueError: an unknown name, modality or flow_init.
  """
  if name not in CONVENTIONS:
    raise ValueError(f"convention is {name!r}; expected one of {CONVENTIONS}")
  if modality not in CHANNELS:
    raise ValueError(f"modality is {modality!r}; expected one of {tuple(CHANNELS)}")
  scale, mean, std = _RGB[name]
  if modality == "rgb":
    return Convention(name, "RGB", scale, mean, std)
  if flow_init not in FLOW_INITS:
    raise ValueError(f"flow_init is {flow_init!r}; expected one of {FLOW_INITS}")
  flow_std = std[:2] if flow_init == "first" else (sum(std) / 3,) * 2
  return Convention(name, "uv", scale, (FLOW_MEAN * scale,) * 2, flow_std, flow_init)


def resolve(convention_or_name, modality: str) -> Convention:
  """A `Convention` for `modality` from a name (flow: flow_init "first") or a `Convention` of it.

  Raises:
    ValueError: an unknown name, or a convention for the other modality.
  """
  if isinstance(convention_or_name, Convention):
    if convention_or_name.modality != modality:
      raise ValueError(f"the input convention is for {convention_or_name.modality} "
                       f"({convention_or_name.channels}); expected one for {modality}")
    return convention_or_name
  return convention(convention_or_name, modality)


def normalize(frames, convention: str | Convention = "reference", zero_sum: bool = False,
              out: np.ndarray | None = None) -> np.ndarray:
  """Frames (or images, or flow codes) in 0..255 prepared as a convention says: (x - offset) * gain.

  Args:
    frames: [..., C] uint8 or float values in 0..255: C = 3 (RGB) or 2 (flow u, v). NumPy or anything
      `np.asarray` takes.
    convention: a `Convention`, or a name of `CONVENTIONS` (the modality from C; flow_init "first").
    zero_sum: `frames` are weighted sums of 0..255 values whose weights sum to zero (restored dynamic
      images): the offset cancels, only the gain applies.
    out: optional float32 array of the result's shape to write into.

  Returns:
    float32 [..., C] (`out` when given). Under "reference", for uint8 or float32 frames, the result is
    exactly `np.float32(frames) - np.float32(mean)` (what the pipelines computed before conventions).

  Raises:
    ValueError: C matches neither RGB nor flow, or not the given convention.
  """
  frames = np.asarray(frames)
  channels = frames.shape[-1] if frames.ndim else 0
  modality = {3: "rgb", 2: "flow"}.get(channels)
  if modality is None:
    raise ValueError(f"frames has shape {frames.shape}; expected [..., 3] (RGB) or [..., 2] (flow u, v)")
  convention = resolve(convention, modality)
  if out is None:
    out = np.empty(frames.shape, np.float32)
  offset, gain = convention.offset, convention.gain
  result = out
  if frames.ndim >= 2 and out.flags.c_contiguous:
    # Rows of W x C values with the [C] vectors tiled W times: NumPy's inner loop then runs over a row
    # instead of C = 3 values (6x faster on 64 x 64 RGB frames); same values, same order of operations.
    rows = frames.shape[:-2] + (frames.shape[-2] * channels,)
    frames, out = frames.reshape(rows), out.reshape(rows)
    offset, gain = np.tile(offset, rows[-1] // channels), np.tile(gain, rows[-1] // channels)
  if zero_sum:
    np.multiply(frames, gain, out=out)
  else:
    np.subtract(frames, offset, out=out)
    if np.any(gain != 1):  # a gain of 1 (0..255 conventions) would be a second pass for nothing
      np.multiply(out, gain, out=out)
  return result
