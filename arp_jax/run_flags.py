"""The command line shared by `python -m arp_jax.train` and `python -m arp_jax.evaluate`.

    --config experiments/<file>.py[:args]   an ml-collections config file (`get_config(arg)`); any field can
                                            be overridden: --config.model.pool_at=res3, a list or tuple
                                            as a Python literal: --config.input.scales='(64, 56)'
    --workdir DIR                           the run's folder
    --distributed                           call jax.distributed.initialize() first (several hosts)

The flags are defined only when a command runs (not on import), so both modules can be imported together.
A user's mistake (a config file that does not exist, a bad `get_config` argument or field value, a
missing dataset or checkpoint: the ValueError and FileNotFoundError of the commands) ends the command with
one line on stderr and exit status 2; other exceptions are bugs and show their traceback.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
import os
import sys

from absl import app, flags, logging
import jax
import ml_collections
from ml_collections import config_flags

USAGE_ERROR = 2


class _ListParser(flags.ArgumentParser):
  """Parses a list field's override, a Python literal: '(0.05, 0.05, 0.005)' or '[64, 56]'. ml_collections
  parses tuples only; the configs hold lists (of learning rates, scales) as well."""

  def parse(self, argument):
    if isinstance(argument, (list, tuple)):
      return list(argument)
    try:
      value = ast.literal_eval(argument)
    except (ValueError, SyntaxError):
      value = None
    if not isinstance(value, (list, tuple)):
      raise ValueError(f"{argument!r} is not a list; expected a Python literal such as '(0.05, 0.005)'")
    return list(value)

  def flag_type(self):
    return "list"


def _fail(message: str) -> None:
  """Ends the command: one line on stderr, exit status 2."""
  program = getattr(sys.modules["__main__"].__spec__, "name", None) or os.path.basename(sys.argv[0])
  print(f"python -m {program}: error: {' '.join(message.split())}", file=sys.stderr)
  sys.exit(USAGE_ERROR)


def _root_cause(error: BaseException) -> BaseException:
  while error.__cause__ is not None or error.__context__ is not None:
    error = error.__cause__ or error.__context__
  return error


def _parse_flags(argv):
  """absl's flag parsing, with its errors (a config file that fails to load, a bad override) as one line
  and exit status 2 instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, OSError) as error:
    cause = _root_cause(error)
    if isinstance(cause, OSError):
      _fail(_missing_config_file() or str(cause))
    if "Error whilst parsing config file" in str(error):
      # get_config failed; ml_collections re-raised its error with the file's traceback in the message.
      _fail(str(cause).strip().splitlines()[-1])
    _fail(str(error).strip().splitlines()[0])


def _missing_config_file() -> str | None:
  """The error of a --config file that does not exist, or None."""
  args, spec = sys.argv[1:], ""
  for i, arg in enumerate(args):
    if arg.startswith(("--config=", "-config=")):
      spec = arg.split("=", 1)[1]
    elif arg in ("--config", "-config") and i + 1 < len(args):
      spec = args[i + 1]
  path = spec.split(":", 1)[0]
  if path and not os.path.isfile(path):
    return (f"--config {path}: no such file (expected a config file such as "
            "experiments/synthetic_four_stream.py)")
  return None


def run(command: Callable[[object, str], None], workdir_help: str) -> None:
  """Defines the flags, parses the command line and calls `command(config, workdir)`."""
  config_flags.register_flag_parser_for_type(list, _ListParser())
  config = config_flags.DEFINE_config_file(
      "config", None, "experiment config file, e.g. experiments/synthetic_four_stream.py:stream=di",
      lock_config=True)
  workdir = flags.DEFINE_string("workdir", None, workdir_help)
  distributed = flags.DEFINE_bool("distributed", False,
                                  "call jax.distributed.initialize() first (a run over several hosts)")

  def main(argv):
    if len(argv) > 1:
      _fail(f"unexpected arguments {argv[1:]}; expected only flags (--config, --workdir, --config.<field>)")
    if config.value is None or not workdir.value:
      _fail("--config and --workdir are required")
    if not isinstance(config.value, ml_collections.ConfigDict):  # the file did not load
      _fail(_missing_config_file() or f"--config {config_flags.get_config_filename(flags.FLAGS['config'])} "
            "did not load; expected a config file with get_config()")
    if not flags.FLAGS["verbosity"].present:
      # Orbax logs every step of every save at INFO; the metrics and the progress bar say what matters.
      logging.set_verbosity(logging.WARNING)
    if distributed.value:
      jax.distributed.initialize()
    try:
      command(config.value, workdir.value)
    except (ValueError, FileNotFoundError) as error:
      _fail(str(error))

  app.run(main, flags_parser=_parse_flags)
