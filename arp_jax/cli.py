"""The `arp-jax` command line: `arp-jax pool VIDEO_OR_FRAME_DIR -o OUT.png [options]`,
`arp-jax convert --arch ARCH IN OUT_DIR` and `arp-jax figure (VIDEO_OR_FRAME_DIR | --weights) -o FIG.png`.

One function per subcommand (`pool_command`, ...), each taking the parsed arguments and returning an exit
status. Expected failures (a missing file, a bad argument, a video too short for the window) print one
line to stderr and give status 2, without a traceback; anything else is a bug and keeps its traceback.
A truncated video file is not a failure here: `pool` and `figure` warn on one stderr line and go on with
the frames it holds (the dataset build, in contrast, skips it).

Run as `arp-jax ...` once installed, or `python -m arp_jax.cli ...` from the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import arp_jax
from arp_jax import display
from arp_jax import weights
from arp_jax.pooling.windows import TAILS
from data_prep import video
from data_prep.flow import FLOW_METHODS


class UsageError(Exception):
  """A bad command line; `main` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
  """ArgumentParser that raises instead of printing the usage and exiting, so `main` can return 2."""

  def error(self, message):
    raise UsageError(f"{self.prog}: error: {message}")


def _int_at_least(text: str, low: int, kind: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
  if value < low:
    raise argparse.ArgumentTypeError(f"expected a {kind} integer, got {text!r}")
  return value


def _positive_int(text: str) -> int:
  """A count such as --window or --stride: 1 or more."""
  return _int_at_least(text, 1, "positive")


def _non_negative_int(text: str) -> int:
  """A 0-based index such as --start."""
  return _int_at_least(text, 0, "non-negative")


def build_parser() -> argparse.ArgumentParser:
  """The `arp-jax` parser with one subparser per subcommand."""
  parser = _Parser(prog="arp-jax", description="Dynamic image networks (approximate rank pooling) in JAX.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

  pool = commands.add_parser(
      "pool", help="pool a video or frame folder into dynamic image(s) saved as PNG",
      description="Pool the frames of a video (or a folder of frame images) into one image, or one per "
                  "window with --window, min-max scaled to 0..255 for display.")
  pool.add_argument("input", metavar="VIDEO_OR_FRAME_DIR", help="video file or folder of frame images")
  pool.add_argument("-o", "--output", required=True, metavar="OUT.png",
                    help="PNG to write; with --window also OUT_000.png, OUT_001.png, ... one per window")
  pool.add_argument("--method", choices=arp_jax.METHODS, default="arp", help="pooling operator (default: arp)")
  pool.add_argument("--window", type=_positive_int, metavar="TAU", help="frames per window (default: whole video)")
  pool.add_argument("--stride", type=_positive_int, metavar="S", help="frames between window starts")
  pool.add_argument("--start", type=_non_negative_int, default=0, metavar="K",
                    help="0-based frame where the first window starts (default: 0)")
  pool.add_argument("--tail", choices=TAILS, default="pad",
                    help="last short window: pad by repeating the last frame, or drop it (default: pad)")
  pool.set_defaults(run=pool_command)

  convert = commands.add_parser(
      "convert", help="convert pretrained weights (PyTorch or Caffe) to an Orbax checkpoint",
      description="Convert a torchvision-layout ResNeXt state dict (.pth, .pt, .safetensors) or a NumPy "
                  "dump of the Caffe CaffeNet (.npz) into arp_jax variables saved with Orbax.")
  convert.add_argument("--arch", required=True, choices=tuple(weights.models.ARCHS),
                       help="backbone of the checkpoint")
  convert.add_argument("input", metavar="IN", help="pretrained weights file")
  convert.add_argument("output", metavar="OUT_DIR", help="checkpoint directory to create")
  convert.add_argument("--num-classes", type=_positive_int, metavar="N",
                       help="a fresh classifier with N classes (default: keep the checkpoint's)")
  convert.add_argument("--in-channels", type=int, choices=(2, 3), default=3,
                       help="3 for RGB, 2 for an optical-flow network (conv1 built from RGB conv1)")
  convert.add_argument("--flow-init", choices=weights.FLOW_INITS, default="first",
                       help="flow conv1 from RGB conv1: its first two input channels (reference) or "
                            "their mean (TSN)")
  convert.set_defaults(run=convert_command)

  figure = commands.add_parser(
      "figure", help="render the paper's Fig. 1/9 panels for a video, or the ARP weights of Fig. 3, as PNG",
      description="With VIDEO_OR_FRAME_DIR: one row of four panels, RGB frame, dynamic image, optical flow "
                  "and dynamic optical flow (the layout of Fig. 1/9). With --weights: the ARP weighting "
                  "functions alpha_t of eq. (3) and eq. (5) against t (Fig. 3). Exactly one of the two.")
  figure.add_argument("input", nargs="?", metavar="VIDEO_OR_FRAME_DIR",
                      help="video file or folder of frame images")
  figure.add_argument("-o", "--output", required=True, metavar="FIG.png", help="PNG to write")
  figure.add_argument("--weights", action="store_true",
                      help="plot the ARP weights (Fig. 3) instead of a video")
  figure.add_argument("--lengths", type=_lengths, metavar="T1,T2,...",
                      help="with --weights: video lengths to plot (default: 5,10,20, as in the paper)")
  figure.add_argument("--flow", choices=FLOW_METHODS,
                      help="optical flow method (default: farneback, fast; the paper's is tvl1, slow)")
  figure.add_argument("--max-frames", type=_positive_int, metavar="N",
                      help="use only the first N frames of the video (default: all)")
  figure.set_defaults(run=figure_command)
  return parser


def _lengths(text: str) -> tuple[int, ...]:
  """`"5,10,20"` -> (5, 10, 20): comma-separated positive ints."""
  try:
    return tuple(_positive_int(part.strip()) for part in text.split(","))
  except argparse.ArgumentTypeError:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated positive integers such as 5,10,20, got {text!r}") from None


def _save_png(path: Path, image) -> None:
  """Writes `uint8 [H, W, 3]` (RGB) or `[H, W, 1]` (grey) as PNG."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"cannot save an image of shape {image.shape} as PNG; expected [H, W, 3] or [H, W, 1]")
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format="PNG")


def _window_paths(output: Path, count: int) -> list[Path]:
  """OUT_000.png, OUT_001.png, ... next to `output` (more digits past 1000 windows, so names still sort)."""
  digits = max(3, len(str(count - 1)))
  return [output.with_name(f"{output.stem}_{i:0{digits}d}{output.suffix}") for i in range(count)]


def pool_command(args: argparse.Namespace) -> int:
  """`arp-jax pool`: read, pool, scale each result to uint8 with `display.to_image`, write PNGs."""
  output = Path(args.output)
  if output.suffix.lower() != ".png":
    raise UsageError(f"arp-jax pool: error: --output must end in .png, got {args.output!r}")
  # Checked before decoding and pooling, which take the time.
  if not output.parent.is_dir():
    raise UsageError(f"arp-jax pool: error: the folder of --output does not exist: {str(output.parent)!r}")
  if args.window is None and args.stride is not None:
    raise UsageError("arp-jax pool: error: --stride needs --window")
  frames = _read_frames(args.input, None, "arp-jax pool")
  pooled = arp_jax.pool(frames, method=args.method, window=args.window, stride=args.stride,
                        start=args.start, tail=args.tail)
  if args.window is None:
    images = display.to_image(pooled)[None]
    paths = [output]
  else:
    # Each window is scaled on its own: a shared min-max would let one busy window wash out the others.
    images = np.stack([np.asarray(display.to_image(window)) for window in pooled])
    paths = _window_paths(output, len(images))
  for path, image in zip(paths, images):
    _save_png(path, image)
    print(f"wrote {path}")
  if args.window is not None:
    _save_png(output, display.grid(images))
    print(f"wrote {output} (grid of {len(images)} windows)")
  print(f"read {len(frames)} frames from {args.input}; method {args.method}; "
        f"{len(images)} dynamic image(s)")
  return 0


def convert_command(args: argparse.Namespace) -> int:
  """`arp-jax convert`: `arp_jax.weights.convert` with the parsed arguments."""
  out = weights.convert(args.arch, args.input, args.output, num_classes=args.num_classes,
                        in_channels=args.in_channels, flow_init=args.flow_init)
  print(f"wrote {out} ({args.arch}, in_channels={args.in_channels}"
        + (f", {args.num_classes} classes" if args.num_classes else "") + ")")
  return 0


def _read_frames(path, max_frames: int | None, command: str) -> np.ndarray:
  """`uint8 [T, H, W, 3]`: every frame of a video or frame folder, or only the first `max_frames`.

  A video is decoded only as far as needed; a frame folder is read whole, then cut. A truncated video
  gives the frames it holds, with a one-line warning from `command` on stderr.
  """
  path = Path(path)
  if path.is_dir():
    frames = video.read_frame_dir(path)
    return frames if max_frames is None else frames[:max_frames]
  decoded = video.decode(path, max_frames=max_frames, strict=False)
  if decoded.truncated:
    print(f"{command}: warning: {decoded.truncated}; going on with its {len(decoded.frames)} frames",
          file=sys.stderr)
  return decoded.frames


def figure_command(args: argparse.Namespace) -> int:
  """`arp-jax figure`: `figures.video_figure` of a video, or `figures.weights_figure`, saved as PNG."""
  output = Path(args.output)
  if (args.input is None) == (not args.weights):
    raise UsageError("arp-jax figure: error: give exactly one of VIDEO_OR_FRAME_DIR and --weights")
  if output.suffix.lower() != ".png":
    raise UsageError(f"arp-jax figure: error: --output must end in .png, got {args.output!r}")
  if not output.parent.is_dir():
    raise UsageError(f"arp-jax figure: error: the folder of --output does not exist: {str(output.parent)!r}")
  if args.weights and (args.flow is not None or args.max_frames is not None):
    raise UsageError("arp-jax figure: error: --flow and --max-frames apply to a video, not to --weights")
  if not args.weights and args.lengths is not None:
    raise UsageError("arp-jax figure: error: --lengths needs --weights")
  # Imported here: matplotlib is only needed by this subcommand.
  from arp_jax import figures

  if args.weights:
    lengths = args.lengths or figures.PAPER_LENGTHS
    figures.save(figures.weights_figure(lengths), output)
    print(f"wrote {output} (ARP weights, eq. (3) and eq. (5), T = {', '.join(map(str, lengths))})")
    return 0
  frames = _read_frames(args.input, args.max_frames, "arp-jax figure")
  flow_method = args.flow or "farneback"
  fig = figures.video_figure(frames, flow_method=flow_method, title=Path(args.input).name)
  figures.save(fig, output)
  print(f"wrote {output} ({len(frames)} frames of {args.input}; flow {flow_method})")
  return 0


def main(argv: list[str] | None = None) -> int:
  """Entry point of `arp-jax`; `argv` defaults to `sys.argv[1:]`. Returns the exit status."""
  parser = build_parser()
  try:
    args = parser.parse_args(argv)
    return args.run(args)
  except SystemExit as exit_:
    # argparse exits by itself only for --help (errors go through `_Parser.error`).
    return exit_.code if isinstance(exit_.code, int) else 0
  except UsageError as error:
    print(error, file=sys.stderr)
    return 2
  except (OSError, ValueError, TypeError) as error:
    # Missing files, undecodable videos and arguments `pool` rejects (e.g. a window longer than the video
    # with --tail drop): the message is enough, a traceback would only hide it.
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"arp-jax: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
