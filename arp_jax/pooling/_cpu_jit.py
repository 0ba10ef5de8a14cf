"""`cpu_tuned_jit`: `jax.jit` that compiles top-level calls on the CPU with XLA compiler options.

Why exact rank pooling needs it: XLA:CPU's fusion emitters, the default, emit scalar code for a reduction
with several outputs and for a fusion that reads a dynamic slice; its classic emitters vectorise both. The
Gram matrix of `rank_pool` is one reduction with T(T+1)/2 outputs: for 64 windows of 10 x 224 x 224 x 3
frames it takes 110-136 ms with the default emitters and 29-34 ms with the classic ones (2-core CPU).

JAX accepts compiler options only on the outermost jit (options on a jit traced inside another are a
ValueError), so they apply where the function is called at top level on arrays that live on the CPU. Called
under another `jax.jit` it is compiled with that jit's options, still correct; a caller who wants the
classic emitters there passes `compiler_options=CLASSIC_EMITTERS` to their own jit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import functools

import jax

# XLA:CPU's classic (LLVM IR) fusion emitters instead of the newer MLIR-based ones.
CLASSIC_EMITTERS = {"xla_cpu_use_fusion_emitters": False}


def _top_level_on_cpu(arguments) -> bool:
  """True when no argument is being traced and every array argument lives on the CPU (NumPy arrays and
  Python values go to the default device)."""
  leaves = jax.tree.leaves(arguments)
  if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
    return False
  arrays = [leaf for leaf in leaves if isinstance(leaf, jax.Array)]
  if not arrays:
    return jax.default_backend() == "cpu"
  return all(device.platform == "cpu" for array in arrays for device in array.devices())


def cpu_tuned_jit(fun: Callable, compiler_options: Mapping[str, object], **jit_kwargs) -> Callable:
  """`jax.jit(fun, **jit_kwargs)`, compiled with `compiler_options` when called at top level on the CPU.

  If this jaxlib does not know one of the options (XLA debug options may be renamed between releases),
  that call and every later one use the plain jit.
  """
  plain = jax.jit(fun, **jit_kwargs)
  tuned = jax.jit(fun, compiler_options=dict(compiler_options), **jit_kwargs)
  options_known = [True]

  @functools.wraps(fun)
  def call(*args, **kwargs):
    if options_known[0] and _top_level_on_cpu((args, kwargs)):
      try:
        return tuned(*args, **kwargs)
      except jax.errors.JaxRuntimeError as error:
        if "No such compile option" not in str(error):
          raise
        options_known[0] = False
    return plain(*args, **kwargs)

  return call
