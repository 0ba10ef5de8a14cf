"""TV-L1 flow of a batch on XLA:CPU: the pairs one after another, the same result as the batched op.

`arp_jax.flow.tvl1` maps its per-pair solver over the batch with `jax.vmap`, which suits accelerators: one
kernel launch per step covers every pair. On XLA:CPU the vmapped step streams the whole batch's fields
through memory at every primal-dual iteration (a dozen float32 fields per pair, several megabytes each at
320x240), while one pair's fields stay in the caches; and a vmapped `lax.while_loop` runs until the
batch's slowest pair has converged. Solving the pairs one at a time (`lax.map`) avoids both; XLA:CPU still
splits each step over the cores. Figures: benchmarks/README.md.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import lax

from arp_jax.xla_cpu import SCOPE


def pairs_one_at_a_time(grey0: jax.Array, grey1: jax.Array, *, pair_flow: Callable) -> jax.Array:
  """`jax.vmap(pair_flow)(grey0, grey1)` computed pair by pair: grey `[B, H, W]` twice -> `[B, H, W, 2]`."""
  with jax.named_scope(SCOPE):
    return lax.map(lambda pair: pair_flow(*pair), (grey0, grey1))
