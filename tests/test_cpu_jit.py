"""`cpu_tuned_jit`: compiler options at top level on the CPU, the plain jit when traced or when this jaxlib
does not know an option."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arp_jax.pooling import _cpu_jit


def test_options_apply_only_to_untraced_calls_on_the_cpu():
  seen = []
  spy = lambda arguments: seen.append(_cpu_jit._top_level_on_cpu(arguments))
  spy((np.ones(3),))
  spy((jnp.ones(3), "a static string"))
  jax.jit(lambda x: spy((x,)) or x)(np.ones(3))
  jax.vmap(lambda x: spy((x,)) or x)(np.ones(3))
  jax.grad(lambda x: spy((x,)) or x)(1.0)
  assert seen == [True, True, False, False, False]


def test_nested_calls_compile_with_the_outer_jit():
  # JAX refuses compiler options on a nested jit (ValueError); the wrapper must not pass them there.
  square = _cpu_jit.cpu_tuned_jit(lambda x: x * x, _cpu_jit.CLASSIC_EMITTERS)
  np.testing.assert_array_equal(square(np.arange(4.0)), [0.0, 1.0, 4.0, 9.0])
  np.testing.assert_array_equal(jax.jit(lambda x: square(x) + 1)(np.arange(4.0)), [1.0, 2.0, 5.0, 10.0])
  np.testing.assert_array_equal(jax.grad(lambda x: square(x))(3.0), 6.0)


def test_unknown_option_falls_back_to_the_plain_jit():
  square = _cpu_jit.cpu_tuned_jit(lambda x: x * x, {"xla_cpu_no_such_option_anywhere": True})
  for _ in range(2):
    np.testing.assert_array_equal(square(np.arange(3.0)), [0.0, 1.0, 4.0])


def test_other_errors_still_raise():
  shapes = _cpu_jit.cpu_tuned_jit(lambda x, y: x + y, _cpu_jit.CLASSIC_EMITTERS)
  with pytest.raises(TypeError, match="add got incompatible shapes"):
    shapes(np.ones(3), np.ones(4))
