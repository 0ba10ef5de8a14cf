"""Formulations for XLA:CPU, chosen by `arp_jax.platforms.by_platform` and used nowhere else.

Each module holds the CPU formulation of one operator whose plain form (the reference, in the
platform-neutral package) XLA:CPU runs or differentiates slowly; both compute the same result. Their code
runs under `jax.named_scope(SCOPE)`, so the op names of a lowered or exported program show whether it
carries any of it (tests/test_export.py).

  conv.py          ResNeXt's convolutions: grouped 3x3 differentiated by shifted slices, 1x1 as matmuls.
  rank_pooling.py  exact rank pooling's Gram matrix and weights in two fused passes over the frames.
  tvl1.py          TV-L1 flow of a batch solved one pair at a time.
"""

# The named scope of every CPU formulation, in the op names of a lowered program (distinct from the
# package's path, which locations also show).
SCOPE = "xla_cpu_formulation"
