"""The one place where a platform-specific formulation is chosen.

An operator that XLA:CPU runs badly in its plain form (rank pooling's Gram matrix, the backward pass of
ResNeXt's grouped convolutions) keeps that plain form as its reference, and names a second formulation for
the CPU with `by_platform`. The choice is staged out with `lax.platform_dependent`, not made in Python
with `jax.default_backend()`: it is resolved when the program is lowered for its actual platform, so a
program exported for "cuda" or "tpu" from a CPU host is the plain one, and a function gives the same
program whether it is called at top level or inside a caller's `jax.jit`.
"""

from __future__ import annotations

from collections.abc import Callable
import functools

from jax import lax


def by_platform(default: Callable, *, cpu: Callable) -> Callable:
  """A function that runs `cpu` on XLA:CPU and `default` on every other platform.

  Both must compute the same result from the same arguments. The returned function takes the operands
  (arrays or pytrees of arrays, `lax.platform_dependent`'s `*args`) positionally and static settings
  (shapes, strides, switches: Python values that must not be traced) by keyword; the keywords are bound
  to both formulations before the choice.

  Both formulations are traced (their output shapes must agree); only the chosen one is lowered.
  """

  def chosen(*operands, **static):
    return lax.platform_dependent(*operands, cpu=functools.partial(cpu, **static),
                                  default=functools.partial(default, **static))

  return chosen
