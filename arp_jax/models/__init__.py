"""Backbones (Flax linen), each runnable between named boundaries (`Model.BOUNDARIES`) so that a video
model can pool over time inside the network:

    model = ResNeXt50_32x4d(num_classes=101)
    maps = model.apply(variables, frames, stop="res4")       # every frame up to the insertion point
    logits = model.apply(variables, pooled, start="res4")    # the rest, on the temporally pooled maps

`ARCHS` names each backbone as `arp_jax.weights` and the command line do.
"""

from arp_jax.models.archs import ARCHS
from arp_jax.models.caffenet import CaffeNet
from arp_jax.models.resnext import Bottleneck, ResNeXt, ResNeXt50_32x4d, ResNeXt101_32x4d
from arp_jax.models.video import DynamicImageNetwork, TemporalPooling, param_labels

__all__ = ["ARCHS", "Bottleneck", "CaffeNet", "DynamicImageNetwork", "ResNeXt", "ResNeXt50_32x4d",
           "ResNeXt101_32x4d", "TemporalPooling", "param_labels"]
