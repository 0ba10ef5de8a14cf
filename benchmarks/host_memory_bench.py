"""The command line's malloc settings (`arp_jax.host_memory`) against glibc's defaults (the baseline).

    python benchmarks/host_memory_bench.py [--streams di dof] [--steps 300] [--rounds 2]
                                           [--data-dir runs/synthetic_four_stream/data]

Runs `arp-jax train` on a stream of `experiments/synthetic_four_stream.py` for --steps steps, once with
the command line's settings and once with ARP_JAX_MALLOC=system (glibc's defaults), alternating for
--rounds rounds so that a machine whose speed drifts with the hour weighs on both alike. Each run is a
fresh process in a fresh workdir; its wall time, user and kernel CPU time, minor page faults and peak
resident size come from the kernel's accounting of the child (`os.wait4`). Prints one row per run, then
per stream the median ratios tuned / glibc. The dataset is prepared (`arp-jax synthetic-data`) in
--data-dir unless its current version is there. A benchmark: the figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

from arp_jax import host_memory

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"tuned": {}, "glibc": {host_memory.ENV: "system"}}


def run_once(stream: str, steps: int, data_dir: Path, env: dict) -> dict:
  """One `arp-jax train` run in a temporary workdir: wall s, user s, sys s, minor faults, peak RSS MB."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, "-m", "arp_jax.cli", "train",
               "--config", f"{ROOT / 'experiments' / 'synthetic_four_stream.py'}:stream={stream}",
               "--workdir", workdir, f"--config.dataset.data_dir={data_dir}", f"--config.max_steps={steps}"]
    errors = Path(workdir) / "stderr.txt"  # a file, not a pipe: a full pipe would block the child
    with errors.open("w") as stderr:
      start = time.perf_counter()
      child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=stderr)
      _, status, usage = os.wait4(child.pid, 0)
      wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
      raise RuntimeError(f"arp-jax train failed:\n{errors.read_text()}")
  return {"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "minflt": usage.ru_minflt,
          "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--streams", nargs="+", default=["di", "dof"])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--data-dir", type=Path, default=ROOT / "runs" / "synthetic_four_stream" / "data")
  args = parser.parse_args(argv)
  data_dir = args.data_dir.absolute()
  # The command finds the dataset's current version when it is there (2 s) and prepares it otherwise: an
  # older version left in --data-dir is not taken for it.
  subprocess.run([sys.executable, "-m", "arp_jax.cli", "synthetic-data", "--data-dir", str(data_dir)],
                 cwd=ROOT, check=True, stdout=sys.stderr)
  print(f"{'stream':<6} {'round':>5} {'malloc':<6} {'wall s':>7} {'user s':>7} {'sys s':>6} "
        f"{'minor faults':>12} {'peak RSS MB':>11}")
  figures = {}
  for stream in args.streams:
    for round_ in range(args.rounds):
      # Alternate which setting goes first, so neither always runs on a warmer (or busier) machine.
      order = list(SETTINGS) if round_ % 2 == 0 else list(SETTINGS)[::-1]
      for name in order:
        row = run_once(stream, args.steps, data_dir, SETTINGS[name])
        figures.setdefault((stream, name), []).append(row)
        print(f"{stream:<6} {round_:>5} {name:<6} {row['wall_s']:>7.1f} {row['user_s']:>7.1f} "
              f"{row['sys_s']:>6.1f} {row['minflt']:>12,} {row['peak_rss_mb']:>11.0f}", flush=True)
  print(f"\nmedian ratios tuned / glibc over {args.rounds} rounds of {args.steps} steps (incl. start-up "
        "and compilation)")
  for stream in args.streams:
    ratio = {key: np.median([r[key] for r in figures[(stream, "tuned")]]) /
             np.median([r[key] for r in figures[(stream, "glibc")]])
             for key in ("wall_s", "sys_s", "minflt", "peak_rss_mb")}
    print(f"{stream:<6} wall x{ratio['wall_s']:.2f}  sys x{ratio['sys_s']:.2f}  minor faults "
          f"x{ratio['minflt']:.2f}  peak RSS x{ratio['peak_rss_mb']:.2f}")


if __name__ == "__main__":
  main()
