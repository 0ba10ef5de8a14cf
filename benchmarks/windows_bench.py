"""The networks' windows as a reshape against the gather they were, inside the training gradient.

    python benchmarks/windows_bench.py [--repeats N]

`DynamicImageNetwork` pools [B * S, tau] clips whose windows tile them (`pooling.windows.gather_windows`
takes them by a reshape, `_tiled_windows`). The baseline is the general path those windows took before,
`_gathered_windows`: a gather of `frame_indices` (`jnp.take`, vmapped over the videos with their lengths),
which XLA:CPU lowers to a transposed copy of the whole input. Both are timed in the gradient of the
synthetic benchmark's streams that pool windows (mean image, DI, DOF:
`experiments/synthetic_four_stream.py`), on one batch of the train step's shape ([32, 1, 10, 64, 64, C]
and its window counts), medians after a warm-up, with the gradients checked equal. A measurement, never a
test.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np

from arp_jax import builders
from arp_jax.config import load_config_file
from arp_jax.input import CHANNELS
from arp_jax.pooling import windows
from timing import median_seconds  # benchmarks/timing.py

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "synthetic_four_stream.py"
STREAMS = ("mean", "di", "dof")


def gathered_windows(x, count: int, window: int, start: int, lengths):
  """The baseline: the tiled windows by the general path's gather (stride = window)."""
  gather = windows._gathered_windows  # pylint: disable=protected-access
  return gather(x, count, window, window, start, lengths)


def gradient(stream: str):
  """(jitted gradient of the summed squared logits w.r.t. the parameters, parameters, one batch)."""
  config = load_config_file(EXPERIMENT).get_config(f"stream={stream}")
  c = config.input
  network = builders.model(config.model, 12, CHANNELS[c.modality])
  variables = builders.initial_variables(config, network)
  frames = np.random.default_rng(0).normal(
      size=(c.batch_size, c.train_windows, c.window, c.size, c.size, CHANNELS[c.modality]))
  batch = (jnp.asarray(frames, jnp.float32), jnp.full((c.batch_size,), c.train_windows, jnp.int32))

  def loss(params, frames, counts):
    logits, _ = network.apply({**variables, "params": params}, frames, train=True, num_windows=counts,
                              mutable=["batch_stats"])
    return jnp.sum(logits ** 2)

  return jax.jit(jax.grad(loss)), variables["params"], batch


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=30, help="timed calls per variant (median)")
  args = parser.parse_args()
  print(f"{platform.processor() or platform.machine()}, {jax.device_count()} {jax.default_backend()} "
        f"device(s), jax {jax.__version__}")
  print(f"{'stream':<6} {'gather (baseline) ms':>21} {'reshape ms':>11} {'speed-up':>9}")
  tiled = windows._tiled_windows  # pylint: disable=protected-access
  for stream in STREAMS:
    seconds, grads = {}, {}
    for variant, take in (("gather", gathered_windows), ("reshape", tiled)):
      windows._tiled_windows = take  # pylint: disable=protected-access
      jax.clear_caches()  # the pooling is a jitted function of its own, traced once otherwise
      grad, params, batch = gradient(stream)  # the variant is read when the pooling is traced
      grads[variant] = grad(params, *batch)
      seconds[variant] = median_seconds(grad, params, *batch, repeats=args.repeats)
    windows._tiled_windows = tiled  # pylint: disable=protected-access
    same = jax.tree.all(jax.tree.map(lambda a, b: bool(np.allclose(a, b, rtol=1e-4, atol=1e-5)),
                                     grads["gather"], grads["reshape"]))
    print(f"{stream:<6} {1e3 * seconds['gather']:>21.1f} {1e3 * seconds['reshape']:>11.1f} "
          f"{seconds['gather'] / seconds['reshape']:>8.2f}x{'' if same else '  (gradients differ!)'}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
