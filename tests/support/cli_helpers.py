"""Running `arp-jax` in-process and checking what a user sees."""

import numpy as np
from PIL import Image

from arp_jax import cli


def png(path) -> np.ndarray:
  """The pixels of a PNG file (and a check that it is one)."""
  with Image.open(path) as image:
    assert image.format == "PNG"
    return np.asarray(image)


def run(argv, capsys):
  """`arp-jax ARGV` through `cli.main`: (exit status, stdout, stderr)."""
  status = cli.main([str(a) for a in argv])
  out, err = capsys.readouterr()
  return status, out, err


def assert_usage_error(status, err, *fragments):
  """A user mistake: exit status 2 and one line on stderr, no traceback, holding every fragment."""
  assert status == 2
  assert len(err.strip().splitlines()) == 1, err
  assert "Traceback" not in err
  for fragment in fragments:
    assert fragment in err
