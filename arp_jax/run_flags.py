"""The command line shared by `python -m arp_jax.train` and `python -m arp_jax.evaluate`.

    --config experiments/<file>.py[:args]   an ml-collections config file (`get_config(arg)`); any field can
                                            be overridden: --config.model.pool_at=res3
    --workdir DIR                           the run's folder
    --distributed                           call jax.distributed.initialize() first (several hosts)

The flags are defined only when a command runs (not on import), so both modules can be imported together.
"""

from __future__ import annotations

from collections.abc import Callable

from absl import app, flags, logging
import jax
from ml_collections import config_flags


def run(command: Callable[[object, str], None], workdir_help: str) -> None:
  """Defines the flags, parses the command line and calls `command(config, workdir)`."""
  config = config_flags.DEFINE_config_file(
      "config", None, "experiment config file, e.g. experiments/synthetic_four_stream.py:stream=di",
      lock_config=True)
  workdir = flags.DEFINE_string("workdir", None, workdir_help)
  distributed = flags.DEFINE_bool("distributed", False,
                                  "call jax.distributed.initialize() first (a run over several hosts)")

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if config.value is None or not workdir.value:
      raise app.UsageError("--config and --workdir are required")
    if not flags.FLAGS["verbosity"].present:
      # Orbax logs every step of every save at INFO; the metrics and the progress bar say what matters.
      logging.set_verbosity(logging.WARNING)
    if distributed.value:
      jax.distributed.initialize()
    command(config.value, workdir.value)

  app.run(main)
