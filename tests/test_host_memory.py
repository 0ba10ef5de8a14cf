"""arp_jax.host_memory: the command line's malloc settings, measured in fresh processes (the test process
keeps its own allocator)."""

import os
import platform
import subprocess
import sys

import pytest

from arp_jax import host_memory

# A fresh process allocates 64 MiB, writes a byte in each page, frees it, allocates and writes it again,
# and prints the minor page faults of the second round (a page fault per page that came back from the
# system). bytearray's memory comes from malloc, not from NumPy's allocator.
PROBE = """
import resource
from arp_jax import host_memory
applied = host_memory.keep_freed_memory()
size = 64 << 20
def touch():
  block = bytearray(size)
  block[::4096] = b"\\x01" * (size // 4096)
  return block
first = touch(); del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt settings are glibc's")


def _probe(**env) -> tuple[bool, int]:
  out = subprocess.run([sys.executable, "-c", PROBE],
                       env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.split()
  return out[0] == "True", int(out[1])


@glibc_only
def test_freed_memory_is_reused_without_page_faults():
  applied, faults = _probe()
  assert applied
  # 64 MiB are 16,384 pages: kept by malloc, the second round faults (almost) none of them in again.
  assert faults < 1000, faults


@glibc_only
def test_system_setting_leaves_glibc_defaults():
  applied, faults = _probe(ARP_JAX_MALLOC="system")
  assert not applied
  # glibc maps a 64 MiB block for itself and unmaps it at free (above its largest mmap threshold, 32 MiB):
  # its pages come back from the system, faulted in again (or as a few huge pages where the kernel gives
  # them to every mapping, which this count cannot tell apart).
  if faults < 1000:
    pytest.skip(f"{faults} faults: the kernel backs the mapping with huge pages")
  assert faults > 10_000, faults


def test_without_glibc_or_with_the_opt_out_nothing_is_changed(monkeypatch):
  monkeypatch.setenv(host_memory.ENV, "system")
  assert host_memory.keep_freed_memory() is False
  monkeypatch.delenv(host_memory.ENV)
  monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
  assert host_memory.keep_freed_memory() is False
