"""Backbones by name, as configs, `arp_jax.weights` and the command line name them."""

from arp_jax.models.caffenet import CaffeNet
from arp_jax.models.resnext import ResNeXt50_32x4d, ResNeXt101_32x4d, ResNeXtTiny

# Name -> constructor; keyword arguments (num_classes, in_channels, dropout_rate, dtype) pass through.
ARCHS = {
    "caffenet": CaffeNet,
    "resnext50_32x4d": ResNeXt50_32x4d,
    "resnext101_32x4d": ResNeXt101_32x4d,
    "resnext_tiny": ResNeXtTiny,
}
