"""`arp-jax convert --arch ARCH IN OUT_DIR`: pretrained weights to an Orbax checkpoint (`weights.convert`)."""

from __future__ import annotations

import argparse
import sys

from arp_jax import cli, models, weights


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = ("Convert a torchvision-layout ResNeXt state dict (.pth, .pt, .safetensors) or a NumPy "
                        "dump of the Caffe CaffeNet (.npz) into arp_jax variables saved with Orbax.")
  parser.add_argument("--arch", required=True, choices=tuple(models.ARCHS),
                      help="backbone of the checkpoint")
  parser.add_argument("input", metavar="IN", help="pretrained weights file")
  parser.add_argument("output", metavar="OUT_DIR", help="checkpoint directory to create")
  parser.add_argument("--num-classes", type=cli.positive_int, metavar="N",
                      help="a fresh classifier with N classes (default: keep the checkpoint's)")
  parser.add_argument("--in-channels", type=int, choices=(2, 3), default=3,
                      help="3 for RGB, 2 for an optical-flow network (conv1 built from RGB conv1)")
  parser.add_argument("--flow-init", choices=weights.FLOW_INITS, default="first",
                      help="flow conv1 from RGB conv1: its first two input channels (reference) or "
                           "their mean (TSN)")


def run(args: argparse.Namespace) -> int:
  # An existing output (FileExistsError) or an unreadable input are the user's to fix.
  with cli.usage_errors(OSError, TypeError):
    out = weights.convert(args.arch, args.input, args.output, num_classes=args.num_classes,
                          in_channels=args.in_channels, flow_init=args.flow_init)
  print(f"wrote {out} ({args.arch}, in_channels={args.in_channels}"
        + (f", {args.num_classes} classes" if args.num_classes else "") + ")")
  return 0


if __name__ == "__main__":
  sys.exit(cli.main(["convert", *sys.argv[1:]]))
