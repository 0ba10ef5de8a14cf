"""The accelerator check of issue 18: the library's own ops on one device, against the device's copy
bandwidth and against PyTorch on the same device, in one run (under 8 minutes): one JSON, one table.

    python benchmarks/device_check.py --out $OUT/device_check.json   # once, on a lent GPU
    python benchmarks/device_check.py --quick --out /tmp/check.json   # tiny shapes, any CPU (CI runs it)
    python benchmarks/device_check.py --sections train torch          # rerun a subset

Needs jax, flax, optax, numpy (and torch, torchvision for the PyTorch rows), run from the repository root
without `pip install`; nothing else (no TFDS, Grain, ml-collections, PyAV, OpenCV: the test runs it with
those blocked). Each section (benchmarks/device_check_sections.py) runs in a process of its own: its peak
memory is its own, a failure or a hang costs that section only (rows so far are kept), JAX and PyTorch
never share the device's memory. Sections run one after another within `BUDGETS` (seconds, compilation
included; what one leaves passes on); one out of budget skips its remaining rows, and is killed 15 s past
it. The command exits 1 if a section failed or a row raised (the JSON and the table are written anyway).

  arp    the copy bandwidth (jitted x + 1 over 1 GiB float32: 2 x bytes / time); ARP (`arp_jax.pool`,
         axis 1) over [B, 10, 224, 224, 3] uint8 and float32, B = 128 (neither a 50 MB L2 cache nor the
         dispatch of each call decides the time): frames/s and the fraction of the copy bandwidth,
         (B*10*224*224*3*itemsize read + B*224*224*3*4 written) / time / bandwidth (target >= 0.7); then
         multiple dynamic images (window 10, stride 6) over 1,000 frames of 240x320x3, the same formula
         with the video read once and the S windows' float32 images written.
  rp     exact rank pooling (`arp_jax.rank_pool`, C = 1, epsilon = 0.1) on 64 windows of 10 frames of
         224x224x3 (drifting pixels, flattened) and on [256, 10, 2048] features: sequences/s, and its time
         over ARP's on the same input.
  tvl1   `arp_jax.flow.tvl1` (defaults) on 64 pairs of 240x320 RGB in one call: pairs/s. A pair is a
         smooth random texture and a copy shifted by a random subpixel (u, v) within +-3 px (no decoder
         there); the mean end-point error against that shift is kept as a sanity check.
  train  `arp_jax.train_step.make_train_step` on a one-device `data_mesh`: DynamicImageNetwork
         ("resnext50_32x4d", 101 classes, dropout 0, ARP) on 32 videos of one window of 10 frames at 224
         (`frames [32, 1, 10, 224, 224, 3]` float32), SGD momentum 0.9; pool_at "stem" (the dynamic image)
         and "res3" (a dynamic map: the input of stage res3, after torchvision's layer1), each with dtype
         float32 and "bfloat16". Clips/s (32 / step time; one dynamic image each) and images/s (the
         input frames, 320 / step time).
  torch  the same steps as a PyTorch user writes them: torchvision's resnext50_32x4d (101 classes) in
         channels_last, SGD momentum 0.9, cross-entropy; the stages before the pooling depth run on the
         320 frames, ARP is a float32 weighted sum over the 10 (the same coefficients and x 0.1 scale),
         the rest runs on the 32 pooled maps. bfloat16 rows under `torch.autocast(device, torch.bfloat16)`,
         float32 rows without; TF32 allowed (torch.backends.cudnn.allow_tf32 and cuda.matmul.allow_tf32),
         as JAX's default precision uses it for float32 on GPU; cudnn.benchmark on. Eager rows, then
         `torch.compile` of the forward (default mode) while the budget lasts. On our train rows:
         ours / PyTorch = PyTorch's best step time (eager or compiled, named) / ours (target >= 1.0).

--quick: ARP on [2, 10, 32, 32, 3], MDI over 60 frames of 24x32, RP on 8 windows of 32x32x3 and on
[8, 10, 64], TV-L1 on 2 pairs of 48x64 with 2 scales, train steps on 2 clips of 10 frames of 32x32 with a
smaller ResNeXt of the same class on both sides (stages (1, 1, 1, 1), 4 groups of width 16; PyTorch's
from tests/support/torch_resnext.py, torchvision's layout), PyTorch eager only; compiled with LLVM's
optimisations off and two sections at a time, as compilation is most of its time: its figures are a smoke
test, not measurements. Where torchvision does not import, tests/support/torch_resnext.py stands in (the
JSON's "torch_model" says which).

Memory of a row: "compiled_bytes", the program's argument + output + temporary - aliased (donated) bytes
(`memory_analysis()`, any backend); "device_peak_bytes", for JAX the allocator's peak in the section's
process so far (`memory_stats()["peak_bytes_in_use"]`: cumulative over the section's rows), for PyTorch
`max_memory_allocated()` after a reset (the row's own); on a CPU, PyTorch rows give the process's peak
resident memory. Times: medians after a warm-up; `compile_seconds` apart (PyTorch: the first step over a
steady one); short kernels timed over back-to-back calls, so that dispatch overlaps the device's work.
A measurement, never a test: figures go to benchmarks/README.md with their date and device.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.metadata
import json
import os
from pathlib import Path
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback

REPO = Path(__file__).resolve().parent.parent
# arp_jax from the working tree (no `pip install` on the device); torch_resnext, the PyTorch fallback.
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

import device_check_sections  # pylint: disable=wrong-import-position  (benchmarks/)

# jax's backend, flax and torch load inside the sections: the parent process never holds the device.
SECTIONS = tuple(device_check_sections.SECTIONS)
BUDGETS = {"arp": 35, "rp": 45, "tvl1": 60, "train": 170, "torch": 140}  # seconds, 450 in all
SHAPES = {
    False: dict(batch=128, size=224, video=1000, video_size=(240, 320), copy_bytes=1 << 30, rp_windows=64,
                rp_size=224, features=(256, 10, 2048), pairs=(64, 240, 320), tvl1={}, train_batch=32,
                train_size=224, calls=20, repeats=5, steps=3, step_repeats=3),
    True: dict(batch=2, size=32, video=60, video_size=(24, 32), copy_bytes=32 << 20, rp_windows=8,
               rp_size=32, features=(8, 10, 64), pairs=(2, 48, 64), tvl1={"scales": 2}, train_batch=2,
               train_size=32, calls=2, repeats=2, steps=1, step_repeats=2),
}
QUICK_XLA_FLAGS = "--xla_backend_optimization_level=0"
RATIO_LABELS = {"of_copy_bandwidth": "of copy bw", "rp_over_arp": "RP / ARP",
                "ours_over_pytorch": "ours / PyTorch"}


# ---- Processes, JSON and table ----

def cpu_seconds() -> float:
  """CPU time of this process, all threads: on a loaded machine, about its wall time alone."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def run_section(args) -> int:
  """In the section's own process: its rows while the budget lasts, `--child-out` rewritten after each
  (a killed section keeps its rows). A row that raises is recorded, and the next one runs."""
  deadline = time.monotonic() + args.budget
  result = {"info": {}, "rows": []}

  def note(**info):
    result["info"].update(info, cpu_seconds=cpu_seconds(), modules=sorted(
        {name.split(".")[0] for name, module in sys.modules.items() if module and not name.startswith("_")}))
    Path(args.child_out).write_text(json.dumps(result))

  shapes = dict(SHAPES[args.quick], quick=args.quick, torch_compile=not args.no_torch_compile)
  longest = 0.0
  for name, make_row in device_check_sections.SECTIONS[args.child](shapes, note):
    start, cpu = time.monotonic(), cpu_seconds()
    if start + longest > deadline:  # the longest row so far would not fit
      result["rows"].append({"name": name, "skipped": "out of the section's budget"})
    else:
      try:
        row = make_row()
      except Exception as error:  # pylint: disable=broad-except
        traceback.print_exc()
        row = {"error": f"{type(error).__name__}: {error}"[:500]}
      longest = max(longest, time.monotonic() - start)
      result["rows"].append(dict(name=name, **row, row_seconds=time.monotonic() - start,
                                 row_cpu_seconds=cpu_seconds() - cpu))
    note()
  note()
  return 0


def run_child(name: str, budget: float, args, env: dict, scratch: str) -> dict:
  """Section `name` in its own process, killed 15 s past `budget`: its result and status."""
  child_out = Path(scratch) / f"{name}.json"
  command = [sys.executable, __file__, "--child", name, "--child-out", str(child_out), "--budget",
             str(budget)] + ["--quick"] * args.quick + ["--no-torch-compile"] * args.no_torch_compile
  # JAX stays off the device in PyTorch's process (it only needs arp_jax's coefficients there).
  env = dict(env, JAX_PLATFORMS="cpu") if name == "torch" else env
  start = time.monotonic()
  try:
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=budget + 15)
    status, log = ("ok" if process.returncode == 0 else f"exit {process.returncode}"), process.stderr
  except subprocess.TimeoutExpired as expired:
    status, log = f"killed after {budget + 15:.0f} s", expired.stderr or ""
    log = log.decode(errors="replace") if isinstance(log, bytes) else log
  seconds = time.monotonic() - start
  sys.stderr.write(log[-4000:])
  result = json.loads(child_out.read_text()) if child_out.exists() else {"info": {}, "rows": []}
  print(f"{name}: {seconds:.1f} s of {budget:.0f} ({status})", flush=True)
  return dict(result, status=status, seconds=seconds, budget_seconds=budget)


def compare_with_pytorch(sections: dict) -> None:
  """Adds ours / PyTorch to each of our train rows: PyTorch's best step time (eager or torch.compile) at
  the same pooling depth and dtype over ours."""
  theirs = [r for r in sections.get("torch", {}).get("rows", []) if "seconds" in r]
  for row in sections.get("train", {}).get("rows", []):
    same = [r for r in theirs if (r["pool_at"], r["dtype"]) == (row.get("pool_at"), row.get("dtype"))]
    if "seconds" in row and same:
      best = min(same, key=lambda r: r["seconds"])
      row.update(ratios={"ours_over_pytorch": best["seconds"] / row["seconds"]}, pytorch_baseline=best["name"],
                 targets={"ours_over_pytorch": 1.0})


def table(sections: dict) -> str:
  lines = [f"{'section':<7} {'measurement':<40} {'ms':>10} {'throughput':>22} {'ratio (target)':>28} "
           f"{'compiled MB':>11} {'peak MB':>8}"]
  for section, result in sections.items():
    for row in result["rows"] or [{"name": result["info"].get("skipped", result["status"])}]:
      rate = next(iter(row.get("rates", {}).items()), None)
      rate = f"{rate[1]:,.1f} {rate[0].replace('_per_s', '/s')}" if rate else ""
      ratio = ", ".join(f"{RATIO_LABELS[k]} {v:.2f}" + (f" (>= {row['targets'][k]})" if k in row.get(
          "targets", {}) else "") for k, v in row.get("ratios", {}).items())
      memory = row.get("memory", {})
      peak = memory.get("device_peak_bytes") or memory.get("process_peak_rss_bytes")
      megabytes = [f"{x / 2**20:.0f}" if x else "" for x in (memory.get("compiled_bytes"), peak)]
      ms = f"{row['seconds'] * 1e3:.3f}" if "seconds" in row else ("skipped" if "skipped" in row else "error")
      lines.append(f"{section:<7} {row['name'][:40]:<40} {ms:>10} {rate:>22} {ratio:>28} {megabytes[0]:>11} "
                   f"{megabytes[1]:>8}")
  return "\n".join(lines)


def versions() -> dict:
  out = {"python": platform.python_version()}
  for package in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "torchvision"):
    try:
      out[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      out[package] = None
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="device_check.json", help="the JSON written (default: %(default)s)")
  parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run on any CPU")
  parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
  parser.add_argument("--no-torch-compile", action="store_true", help="PyTorch eager rows only")
  parser.add_argument("--child", choices=SECTIONS, help=argparse.SUPPRESS)
  parser.add_argument("--child-out", help=argparse.SUPPRESS)
  parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    return run_section(args)
  start, argv = time.monotonic(), sys.argv[1:] if argv is None else argv
  report = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python", "benchmarks/device_check.py", *argv]),
            "quick": args.quick, "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
            "versions": versions(), "shapes": SHAPES[args.quick]}
  # A rerun on the same machine finds its compiled programs again (compile_seconds then says so).
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.environ.get(
      "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "arp_jax_device_check_xla_cache")))
  names = [n for n in SECTIONS if n in args.sections]
  with tempfile.TemporaryDirectory() as scratch:
    if args.quick:  # mostly compilation: LLVM's optimisations off (the same programs), both cores busy
      env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {QUICK_XLA_FLAGS}".strip()
      longest_first = sorted(names, key=lambda n: -BUDGETS[n])
      with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = dict(zip(longest_first, pool.map(lambda n: run_child(n, BUDGETS[n], args, env, scratch),
                                                longest_first)))
      sections = {n: done[n] for n in names}
    else:  # one at a time on the one device; what a section leaves of its budget passes to the next
      sections, carried = {}, 0.0
      for name in names:
        sections[name] = run_child(name, BUDGETS[name] + carried, args, env, scratch)
        carried = max(0.0, sections[name]["budget_seconds"] - sections[name]["seconds"])
  compare_with_pytorch(sections)
  report.update(sections=sections, total_seconds=time.monotonic() - start)
  Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
  print(table(sections))
  print(f"total {report['total_seconds']:.0f} s; JSON: {args.out}")
  return 1 if any(s["status"] != "ok" or any("error" in r for r in s["rows"]) for s in sections.values()) else 0


if __name__ == "__main__":
  sys.exit(main())
