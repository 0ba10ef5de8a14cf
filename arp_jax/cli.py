"""The `arp-jax` command line: one entry point, one subcommand per tool.

    arp-jax pool VIDEO_OR_FRAME_DIR -o OUT.png [--window 10 --stride 6]
    arp-jax build --dataset ucf101 --manual_dir ~/ucf101 --data_dir ~/tensorflow_datasets
    arp-jax train --config experiments/synthetic_four_stream.py:stream=di --workdir runs/di
    arp-jax --help                        # every subcommand, one line each
    arp-jax fuse --help                   # one tool's options

Each tool is a module with `add_arguments(parser)` and `run(args) -> int` (the exit status), listed in
`COMMANDS` by module path: the dispatcher imports only the module of the subcommand it runs, so `--help`
lists every tool without loading TFDS, Grain or Flax. Every tool module keeps `python -m <module>` working
by ending with `sys.exit(cli.main(["<subcommand>", *sys.argv[1:]]))`.

Errors follow argparse's convention everywhere: a user's mistake (a bad option, a missing file, a video too
short for the window) prints one line, `arp-jax <subcommand>: error: <what was wrong; what is expected>`,
on stderr and exits with status 2, without a traceback. A tool reports such a mistake by raising
`UsageError`, `ValueError` or `FileNotFoundError` from `run`; any other exception is a bug and keeps its
traceback. `--help` exits with 0.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
import importlib
import sys

from arp_jax import host_memory

# subcommand -> (module with `add_arguments` and `run`, one line for `arp-jax --help`). data_prep's tools
# are named by path only: the library never imports the data-preparation package.
COMMANDS = {
    "pool": ("arp_jax.tools.pool", "pool a video or frame folder into dynamic image(s) saved as PNG"),
    "figure": ("arp_jax.tools.figure",
               "render the paper's Fig. 1/9 panels for a video, or the ARP weights of Fig. 3, as PNG"),
    "convert": ("arp_jax.tools.convert",
                "convert pretrained weights (PyTorch or Caffe) to an Orbax checkpoint"),
    "build": ("data_prep.build", "prepare the UCF101/HMDB51 datasets (frames, flow, dynamic images) from videos"),
    "synthetic-data": ("data_prep.synthetic", "write the synthetic motion dataset (12 classes: shape x direction)"),
    "mini-data": ("data_prep.mini", "prepare the miniature UCF101/HMDB51 datasets of real clips"),
    "train": ("arp_jax.train", "train one stream from an experiment config"),
    "evaluate": ("arp_jax.evaluate", "evaluate a trained stream and write its per-video scores"),
    "fuse": ("arp_jax.fuse", "fuse the per-video scores of several streams (Table 8)"),
    "sweep": ("arp_jax.sweep", "run every point of a config file's sweep"),
    "ranking-study": ("arp_jax.ranking_study", "approximate against exact rank pooling on a dataset (Table 2)"),
    "four-stream": ("arp_jax.synthetic_benchmark",
                    "train, evaluate and fuse the paper's four streams on the synthetic dataset"),
}


class UsageError(Exception):
  """A user's mistake on the command line: `main` prints it as one line, `arp-jax <subcommand>: error:
  <message>`, and returns 2."""


class _Parser(argparse.ArgumentParser):
  """An ArgumentParser that raises UsageError instead of printing its usage and exiting, so that `main`
  reports every mistake the same way."""

  def error(self, message):
    raise UsageError(message)


@contextlib.contextmanager
def usage_errors(*types: type[Exception]) -> Iterator[None]:
  """Turns the exceptions `types` raised inside into UsageError (their first line): for a tool whose user
  mistakes surface as other errors too, e.g. OSError for a file that cannot be read."""
  try:
    yield
  except types as error:
    raise UsageError(_first_line(error)) from error


# argparse types shared by every tool ---------------------------------------------------------------------

def _int_at_least(text: str, low: int, kind: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
  if value < low:
    raise argparse.ArgumentTypeError(f"expected a {kind} integer, got {text!r}")
  return value


def positive_int(text: str) -> int:
  """argparse type of a count such as --window or --workers: an integer >= 1."""
  return _int_at_least(text, 1, "positive")


def non_negative_int(text: str) -> int:
  """argparse type of a 0-based index such as --start: an integer >= 0."""
  return _int_at_least(text, 0, "non-negative")


def positive_ints(text: str) -> tuple[int, ...]:
  """argparse type of comma-separated counts: `"5,10,20"` -> (5, 10, 20)."""
  try:
    return tuple(positive_int(part.strip()) for part in text.split(","))
  except argparse.ArgumentTypeError:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated positive integers such as 5,10,20, got {text!r}") from None


# The dispatcher -------------------------------------------------------------------------------------------

def build_parser(command: str | None = None) -> argparse.ArgumentParser:
  """The `arp-jax` parser: one subparser per entry of `COMMANDS`, with the options of `command` only (its
  module imported here); the others carry their one-line description, enough for `arp-jax --help`."""
  parser = _Parser(prog="arp-jax", description="Dynamic image networks (approximate rank pooling) in JAX.")
  subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
  for name, (module_path, summary) in COMMANDS.items():
    subparser = subcommands.add_parser(name, help=summary, description=summary)
    if name == command:
      module = importlib.import_module(module_path)
      module.add_arguments(subparser)
      subparser.set_defaults(run=module.run)
  return parser


def _first_line(error: BaseException) -> str:
  return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def main(argv: list[str] | None = None) -> int:
  """Entry point of `arp-jax`; `argv` defaults to `sys.argv[1:]`. Returns the exit status."""
  argv = sys.argv[1:] if argv is None else list(argv)
  command = argv[0] if argv and argv[0] in COMMANDS else None
  prog = f"arp-jax {command}" if command else "arp-jax"
  try:
    args = build_parser(command).parse_args(argv)
    host_memory.keep_freed_memory()  # before the tool allocates anything large
    return args.run(args)
  except SystemExit as exit_:
    # argparse exits by itself only for --help (errors go through `_Parser.error`).
    return exit_.code if isinstance(exit_.code, int) else 0
  except UsageError as error:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2
  except (ValueError, FileNotFoundError) as error:
    # The tools' own checks of their inputs: the message says what to change, a traceback would hide it.
    print(f"{prog}: error: {_first_line(error)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  # Through the imported module: this file runs as __main__, and the tools raise `arp_jax.cli.UsageError`.
  from arp_jax import cli  # pylint: disable=import-self
  sys.exit(cli.main())
