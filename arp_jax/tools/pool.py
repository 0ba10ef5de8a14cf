"""`arp-jax pool VIDEO_OR_FRAME_DIR -o OUT.png [--window TAU --stride S]`: dynamic images as PNG files.

The frames of a video (or a folder of frame images) are pooled into one image, or one per window, and each
is min-max scaled to 0..255 with `display.to_image`. A truncated video file is not a failure here: the tool
warns on one stderr line and goes on with the frames it holds (the dataset build, in contrast, skips it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import numpy as np
from PIL import Image

import arp_jax
from arp_jax import cli, display, video
from arp_jax.pooling.windows import TAILS


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.description = ("Pool the frames of a video (or a folder of frame images) into one image, or one "
                        "per window with --window, min-max scaled to 0..255 for display.")
  parser.add_argument("input", metavar="VIDEO_OR_FRAME_DIR", help="video file or folder of frame images")
  parser.add_argument("-o", "--output", required=True, metavar="OUT.png",
                      help="PNG to write; with --window also OUT_000.png, OUT_001.png, ... one per window")
  parser.add_argument("--method", choices=arp_jax.METHODS, default="arp", help="pooling operator (default: arp)")
  parser.add_argument("--window", type=cli.positive_int, metavar="TAU",
                      help="frames per window (default: whole video)")
  parser.add_argument("--stride", type=cli.positive_int, metavar="S", help="frames between window starts")
  parser.add_argument("--start", type=cli.non_negative_int, default=0, metavar="K",
                      help="0-based frame where the first window starts (default: 0)")
  parser.add_argument("--tail", choices=TAILS, default="pad",
                      help="last short window: pad by repeating the last frame, or drop it (default: pad)")


def check_png_output(output: str) -> Path:
  """`output` as a Path, or UsageError unless it names a PNG in an existing folder: checked before the
  decoding and pooling, which take the time."""
  path = Path(output)
  if path.suffix.lower() != ".png":
    raise cli.UsageError(f"--output must end in .png, got {output!r}")
  if not path.parent.is_dir():
    raise cli.UsageError(f"the folder of --output does not exist: {str(path.parent)!r}")
  return path


def read_frames(path, max_frames: int | None, prog: str) -> np.ndarray:
  """`uint8 [T, H, W, 3]`: every frame of a video or frame folder, or only the first `max_frames`.

  A video is decoded only as far as needed; a frame folder is read whole, then cut. A truncated video
  gives the frames it holds, with a one-line warning from `prog` on stderr.
  """
  path = Path(path)
  if path.is_dir():
    frames = video.read_frame_dir(path)
    return frames if max_frames is None else frames[:max_frames]
  decoded = video.decode(path, max_frames=max_frames, strict=False)
  if decoded.truncated:
    print(f"{prog}: warning: {decoded.truncated}; going on with its {len(decoded.frames)} frames",
          file=sys.stderr)
  return decoded.frames


def save_png(path: Path, image) -> None:
  """Writes `uint8 [H, W, 3]` (RGB) or `[H, W, 1]` (grey) as PNG."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"cannot save an image of shape {image.shape} as PNG; expected [H, W, 3] or [H, W, 1]")
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format="PNG")


def _window_paths(output: Path, count: int) -> list[Path]:
  """OUT_000.png, OUT_001.png, ... next to `output` (more digits past 1000 windows, so names still sort)."""
  digits = max(3, len(str(count - 1)))
  return [output.with_name(f"{output.stem}_{i:0{digits}d}{output.suffix}") for i in range(count)]


def run(args: argparse.Namespace) -> int:
  """Read, pool, scale each result to uint8 with `display.to_image`, write PNGs."""
  output = check_png_output(args.output)
  if args.window is None and args.stride is not None:
    raise cli.UsageError("--stride needs --window")
  # Unreadable files and arguments `pool` rejects (e.g. a window longer than the video with --tail drop).
  with cli.usage_errors(OSError, TypeError):
    frames = read_frames(args.input, None, "arp-jax pool")
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
      save_png(path, image)
      print(f"wrote {path}")
    if args.window is not None:
      save_png(output, display.grid(images))
      print(f"wrote {output} (grid of {len(images)} windows)")
  print(f"read {len(frames)} frames from {args.input}; method {args.method}; "
        f"{len(images)} dynamic image(s)")
  return 0


if __name__ == "__main__":
  sys.exit(cli.main(["pool", *sys.argv[1:]]))
