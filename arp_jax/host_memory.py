"""The host's memory allocator, tuned once per process by the command line (`arp_jax.cli`).

A train step allocates and frees the same large host buffers every time: XLA:CPU's buffers of the step, the
input pipeline's batch (32 windows of 10 frames of 64 x 64 x 3 float32 are 16 MB). glibc's malloc serves a
block above its mmap threshold (128 KiB, rising with what is freed, at most 32 MiB) with pages mapped for
it and unmapped at free, and gives the top of its heap back to the system beyond a trim threshold; each
step then faults the same pages in again, zeroed by the kernel. On the 2-core machine B (README.md) a
training run of the synthetic DI stream took 7.9-8.2 M minor page faults and 22-26 s of kernel time in 600
steps; with `keep_freed_memory` 0.5-2.7 M and 3-9 s, and its steps 12-17 % faster (61 against 70-75 ms); the
main job, five streams in one process, took 0.92x the wall time (benchmarks/README.md). The price is a
resident size that stays at the process's peak (1.55-1.61 GB against 1.42 GB there): memory a run needed
once is kept for the next step instead of returned.

A library call does not change the process's allocator (a notebook that imports arp_jax keeps its own);
the command line does, for the jobs it runs. `ARP_JAX_MALLOC=system` leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt(3) parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory at the top of the heap kept rather than returned to the system.
_TRIM_THRESHOLD = 1 << 30
ENV = "ARP_JAX_MALLOC"


def keep_freed_memory() -> bool:
  """Makes glibc's malloc serve every block from its heaps (no per-block mappings) and keep up to 1 GiB of
  freed memory at their tops. Returns whether it did: False without glibc (macOS, musl) or with
  ARP_JAX_MALLOC=system."""
  if os.environ.get(ENV, "") == "system" or platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(None)  # the process's own C library
  if not hasattr(libc, "mallopt"):
    return False
  # mallopt returns 1 on success; the two settings are independent, both are applied.
  return bool(libc.mallopt(_M_MMAP_MAX, 0)) & bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
