"""Configs of short training runs on the tiny synthetic dataset (`runlocal`)."""

import os
from pathlib import Path

from arp_jax.config import load_config_file
from paths import EXPERIMENTS

CONFIG_FILE = EXPERIMENTS / "synthetic_four_stream.py"
synthetic_four_stream = load_config_file(CONFIG_FILE)


def stream_config(stream: str, data_dir: Path, **overrides):
  """The runlocal config of a synthetic stream reading `data_dir`, with dotted-field overrides."""
  config = synthetic_four_stream.get_config(f"stream={stream},runlocal")
  config.dataset.data_dir = os.fspath(data_dir)
  for key, value in overrides.items():
    node = config
    *parents, last = key.split(".")
    for parent in parents:
      node = node[parent]
    node[last] = value
  return config
