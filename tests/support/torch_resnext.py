"""A PyTorch ResNeXt in torchvision's layout, built from torch.nn layers, for the parity tests of
`arp_jax.weights.from_torch` (torchvision itself is not a dependency).

Its state_dict keys are torchvision's (`conv1.weight`, `layer1.0.downsample.1.running_var`, `fc.bias`),
written from the architecture: stem conv 7x7/2, BatchNorm, ReLU, max-pool 3/2 pad 1; bottlenecks
1x1 -> grouped 3x3 (stride) -> 1x1 (x4), BatchNorm after each, a 1x1 conv + BatchNorm shortcut in each
stage's first block; global average pooling; fc. `activations` returns the maps at the boundaries of
`arp_jax.models.ResNeXt`.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):

  def __init__(self, inplanes: int, planes: int, stride: int, groups: int, base_width: int):
    super().__init__()
    width = int(planes * base_width / 64) * groups
    self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU()
    self.downsample = None
    if stride != 1 or inplanes != planes * 4:
      self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(planes * 4))

  def forward(self, x, final_relu: bool = True):
    y = self.relu(self.bn1(self.conv1(x)))
    y = self.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    y = y + (x if self.downsample is None else self.downsample(x))
    return self.relu(y) if final_relu else y


class ResNeXt(nn.Module):

  def __init__(self, stage_sizes=(3, 4, 6, 3), groups: int = 32, base_width: int = 4,
               num_classes: int = 1000, in_channels: int = 3):
    super().__init__()
    self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU()
    self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
    inplanes = 64
    for stage, blocks in enumerate(stage_sizes):
      planes = 64 * 2**stage
      layer = []
      for block in range(blocks):
        layer.append(Bottleneck(inplanes, planes, 2 if stage > 0 and block == 0 else 1, groups, base_width))
        inplanes = planes * 4
      setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
    self.avgpool = nn.AdaptiveAvgPool2d(1)
    self.fc = nn.Linear(inplanes, num_classes)

  def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """NCHW input -> {"res2", "res3", "res4", "res5", "merge": NCHW maps; "logits": [B, classes]}, the
    maps at the boundaries of `arp_jax.models.ResNeXt` ("merge": the last residual sum before ReLU)."""
    out = {}
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    for stage, name in enumerate(("res2", "res3", "res4", "res5")):
      out[name] = x
      blocks = list(getattr(self, f"layer{stage + 1}"))
      for block in blocks[:-1]:
        x = block(x)
      x = blocks[-1](x, final_relu=stage < 3)
    out["merge"] = x
    out["logits"] = self.fc(torch.flatten(self.avgpool(self.relu(x)), 1))
    return out

  def forward(self, x):
    return self.activations(x)["logits"]


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
  """Random weights and BatchNorm statistics (positive variances), so that a converter that swaps scale
  and bias, mean and variance, or kernel axes cannot pass by accident. Returns `model` in eval mode."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = module.weight[0].numel()
        module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        if module.bias is not None:
          module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
      elif isinstance(module, nn.BatchNorm2d):
        n = module.num_features
        module.weight.copy_(0.5 + torch.rand(n, generator=generator))
        module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
        module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
        module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=generator))
  return model.eval()
