"""`arp-jax figure (VIDEO_OR_FRAME_DIR | --weights) -o FIG.png`: the paper's figures (`arp_jax.figures`)."""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from arp_jax import cli
from arp_jax.flow import FLOW_METHODS
from arp_jax.tools.pool import check_png_output, read_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = ("With VIDEO_OR_FRAME_DIR: one row of four panels, RGB frame, dynamic image, optical "
                        "flow and dynamic optical flow (the layout of Fig. 1/9). With --weights: the ARP "
                        "weighting functions alpha_t of eq. (3) and eq. (5) against t (Fig. 3). Exactly one "
                        "of the two.")
  parser.add_argument("input", nargs="?", metavar="VIDEO_OR_FRAME_DIR", help="video file or folder of frame images")
  parser.add_argument("-o", "--output", required=True, metavar="FIG.png", help="PNG to write")
  parser.add_argument("--weights", action="store_true", help="plot the ARP weights (Fig. 3) instead of a video")
  parser.add_argument("--lengths", type=cli.positive_ints, metavar="T1,T2,...",
                      help="with --weights: video lengths to plot (default: 5,10,20, as in the paper)")
  parser.add_argument("--flow", choices=FLOW_METHODS,
                      help="optical flow method (default: farneback, fast); tvl1 is the paper's TV-L1 by the "
                           "JAX op (arp_jax.flow.tvl1), tvl1_opencv OpenCV's DualTVL1 (slow)")
  parser.add_argument("--max-frames", type=cli.positive_int, metavar="N",
                      help="use only the first N frames of the video (default: all)")


def run(args: argparse.Namespace) -> int:
  """`figures.video_figure` of a video, or `figures.weights_figure`, saved as PNG."""
  if (args.input is None) == (not args.weights):
    raise cli.UsageError("give exactly one of VIDEO_OR_FRAME_DIR and --weights")
  output = check_png_output(args.output)
  if args.weights and (args.flow is not None or args.max_frames is not None):
    raise cli.UsageError("--flow and --max-frames apply to a video, not to --weights")
  if not args.weights and args.lengths is not None:
    raise cli.UsageError("--lengths needs --weights")
  # Imported here: matplotlib is needed only once the arguments are known to be good.
  from arp_jax import figures  # pylint: disable=import-outside-toplevel

  with cli.usage_errors(OSError, TypeError):
    if args.weights:
      lengths = args.lengths or figures.PAPER_LENGTHS
      figures.save(figures.weights_figure(lengths), output)
      print(f"wrote {output} (ARP weights, eq. (3) and eq. (5), T = {', '.join(map(str, lengths))})")
      return 0
    frames = read_frames(args.input, args.max_frames, "arp-jax figure")
    flow_method = args.flow or "farneback"
    fig = figures.video_figure(frames, flow_method=flow_method, title=Path(args.input).name)
    figures.save(fig, output)
  print(f"wrote {output} ({len(frames)} frames of {args.input}; flow {flow_method})")
  return 0


if __name__ == "__main__":
  sys.exit(cli.main(["figure", *sys.argv[1:]]))
