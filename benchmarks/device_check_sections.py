"""The sections of benchmarks/device_check.py (what each measures, and how: its docstring).

Each section is a generator of (row name, function): the function measures the row and returns it as a
dict (`seconds`, `rates`, `ratios`, `memory`, shapes...); `s` holds the run's shapes (`device_check.SHAPES`)
and `note(**info)` records facts of the section's process (device, model used). Importing this module
starts no backend (the parent process never holds the device); flax, optax and torch are imported by the
sections that use them.
"""

from __future__ import annotations

import functools
import math
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import arp_jax
from arp_jax import flow
from timing import median_seconds  # benchmarks/timing.py

TRAIN_ROWS = [(pool_at, dtype) for pool_at in ("stem", "res3") for dtype in ("float32", "bfloat16")]
# --quick's ResNeXt, the same class as ResNeXt-50 on both sides (torch_resnext: groups = cardinality).
QUICK_RESNEXT = dict(stage_sizes=(1, 1, 1, 1), cardinality=4, base_width=16)
CLASSES, WINDOW, LEARNING_RATE, MOMENTUM = 101, 10, 0.01, 0.9


# ---- JAX rows ----

def jax_memory(compiled) -> dict:
  analysis = compiled.memory_analysis()
  stats = jax.devices()[0].memory_stats() or {}
  return {"compiled_bytes": None if analysis is None else (
              analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
              - analysis.alias_size_in_bytes),
          "device_peak_bytes": stats.get("peak_bytes_in_use")}


def back_to_back(fn, calls: int):
  """`fn` called `calls` times in a row, returning the last result: on an accelerator the calls queue up
  (dispatch overlaps the call before), and waiting for the last waits for all."""
  def calls_of(*args):
    for _ in range(calls):
      out = fn(*args)  # the previous output is dropped: its buffers go back to the allocator
    return out
  return calls_of


def jax_row(jitted, *args, calls: int, repeats: int, **fields) -> tuple[dict, object]:
  """(row, compiled): `jitted` compiled ahead of time for `args` (the program timed: no second
  compilation), seconds per call over `calls` back-to-back calls, median of `repeats`."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  compile_seconds = time.perf_counter() - start
  seconds = median_seconds(back_to_back(compiled, calls), *args, repeats=repeats) / calls
  return dict(fields, seconds=seconds, compile_seconds=compile_seconds, memory=jax_memory(compiled)), compiled


def note_jax_device(note) -> None:
  device = jax.devices()[0]
  note(device=device.device_kind, platform=device.platform,
       matmul_precision=str(jax.config.jax_default_matmul_precision))  # None: TF32 for float32 on GPU


def arp_section(s: dict, note):
  note_jax_device(note)
  measured = {}

  def copy_row():
    big = jnp.zeros(s["copy_bytes"] // 4, jnp.float32)
    # x + 1 rather than a copy, which jit may forward without running anything.
    row, _ = jax_row(jax.jit(lambda x: x + 1), big, calls=s["calls"], repeats=s["repeats"],
                     shape=list(big.shape), dtype="float32")
    measured["bandwidth"] = 2 * big.nbytes / row["seconds"]
    return dict(row, rates={"GB_per_s": measured["bandwidth"] / 1e9})

  yield "copy bandwidth (x + 1)", copy_row
  rng = np.random.default_rng(0)
  B, size, T, (H, W) = s["batch"], s["size"], s["video"], s["video_size"]
  clips = jax.device_put(rng.integers(0, 256, (B, WINDOW, size, size, 3), np.uint8))
  video = jax.device_put(rng.integers(0, 256, (T, H, W, 3), np.uint8))
  cases = (("ARP", clips, B * WINDOW, (B, size, size, 3), dict(axis=1)),
           ("MDI 10/6", video, T, (arp_jax.num_windows(T, 10, 6), H, W, 3), dict(window=10, stride=6)))
  for name, frames, count, pooled_shape, options in cases:
    for dtype in ("uint8", "float32"):
      def row(frames=frames.astype(dtype), count=count, pooled_shape=pooled_shape, options=options):
        out, _ = jax_row(jax.jit(functools.partial(arp_jax.pool, **options)), frames, calls=s["calls"],
                         repeats=s["repeats"], shape=list(frames.shape), dtype=str(frames.dtype))
        moved = frames.nbytes + math.prod(pooled_shape) * 4  # frames read once, float32 images written
        ratios = {"of_copy_bandwidth": moved / out["seconds"] / measured["bandwidth"]} if measured else {}
        return dict(out, rates={"frames_per_s": count / out["seconds"]}, ratios=ratios,
                    targets={"of_copy_bandwidth": 0.7})
      yield f"{name} {dtype} {'x'.join(map(str, frames.shape))}", row


def drifting(rng, shape, start: float, step: float) -> np.ndarray:
  """Non-negative float32 sequences [N, T, D] from `start`, drifting by N(0, step) steps along T, as
  frames and features do: each SVR problem of rank pooling is then a real one."""
  return np.maximum(start + np.cumsum(rng.normal(0, step, shape).astype(np.float32), axis=1), 0)


def rp_section(s: dict, note):
  rng = np.random.default_rng(2)
  size = s["rp_size"]
  inputs = {f"{s['rp_windows']} windows of 10 frames {size}x{size}x3":
                drifting(rng, (s["rp_windows"], 10, size * size * 3), 128, 4),
            "features {}x{}x{}".format(*s["features"]): drifting(rng, s["features"], 1, 0.3)}
  for name, features in inputs.items():
    def row(features=jax.device_put(features)):
      rp, _ = jax_row(jax.jit(functools.partial(arp_jax.rank_pool, C=1.0, epsilon=0.1)), features,
                      calls=max(1, s["calls"] // 4), repeats=s["repeats"], shape=list(features.shape),
                      dtype="float32")
      arp, _ = jax_row(jax.jit(functools.partial(arp_jax.pool, axis=1)), features, calls=s["calls"],
                       repeats=s["repeats"])
      return dict(rp, rates={"sequences_per_s": len(features) / rp["seconds"]}, arp_seconds=arp["seconds"],
                  ratios={"rp_over_arp": rp["seconds"] / arp["seconds"]})
    yield f"rank_pool {name}", row


def shifted_textures(rng, count: int, height: int, width: int):
  """(frame0, frame1, flows): uint8 RGB [count, H, W, 3] twice and float [count, 2]. frame0 is white noise
  low-passed by a Gaussian of 0.05 cycles/px (structures of a few pixels); frame1 the same moved by
  (u, v) by a phase ramp of its spectrum (a circular subpixel shift): frame1(x + u, y + v) = frame0(x, y),
  the flow as `tvl1` defines it."""
  spectrum = np.fft.rfft2(rng.normal(size=(count, height, width)))
  fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
  spectrum *= np.exp(-(fx**2 + fy**2) / (2 * 0.05**2))
  flows = rng.uniform(-3, 3, (count, 2))
  ramp = np.exp(-2j * np.pi * (fx * flows[:, :1, None] + fy * flows[:, 1:, None]))
  grey = [np.fft.irfft2(x, (height, width)) for x in (spectrum, spectrum * ramp)]
  low, high = grey[0].min(axis=(1, 2), keepdims=True), grey[0].max(axis=(1, 2), keepdims=True)
  rgb = [np.repeat(np.clip(255 * (g - low) / (high - low), 0, 255).round().astype(np.uint8)[..., None], 3, -1)
         for g in grey]
  return rgb[0], rgb[1], flows


def tvl1_section(s: dict, note):
  count, height, width = s["pairs"]
  frame0, frame1, flows = shifted_textures(np.random.default_rng(4), count, height, width)

  def row():
    args = jax.device_put((frame0, frame1))
    out, compiled = jax_row(jax.jit(functools.partial(flow.tvl1, **s["tvl1"])), *args, calls=1,
                            repeats=s["repeats"], shape=list(frame0.shape), dtype="uint8", options=s["tvl1"])
    margin = height // 8  # the circular shift wraps content across the borders
    error = np.asarray(compiled(*args))[:, margin:-margin, margin:-margin] - flows[:, None, None, :]
    return dict(out, rates={"pairs_per_s": count / out["seconds"]},
                mean_epe_px=float(np.sqrt((error**2).sum(-1)).mean()))

  yield f"TV-L1 {count} pairs {height}x{width}", row


# ---- The DI train step, ours and PyTorch's, on the same batch ----

def train_batch(s: dict) -> dict:
  """B videos of one window of 10 frames, `frames [B, 1, 10, size, size, 3]`, as the input pipelines give."""
  rng = np.random.default_rng(3)
  B, size = s["train_batch"], s["train_size"]
  return {"frames": rng.standard_normal((B, 1, WINDOW, size, size, 3), np.float32),
          "windows": np.ones(B, np.int32), "label": rng.integers(0, CLASSES, B).astype(np.int32)}


def train_fields(s: dict, framework: str, pool_at: str, dtype: str, seconds: float) -> dict:
  B, size = s["train_batch"], s["train_size"]
  return dict(framework=framework, pool_at=pool_at, dtype=dtype, shape=[B, 1, WINDOW, size, size, 3],
              seconds=seconds, rates={"clips_per_s": B / seconds, "images_per_s": B * WINDOW / seconds})


def train_section(s: dict, note):
  import optax
  from arp_jax import train_step
  from arp_jax.models import DynamicImageNetwork, ResNeXt
  backbone = functools.partial(ResNeXt, **QUICK_RESNEXT) if s["quick"] else "resnext50_32x4d"
  note_jax_device(note)
  note(backbone=f"ResNeXt({QUICK_RESNEXT})" if s["quick"] else backbone)
  mesh = train_step.data_mesh(jax.devices()[:1])
  batch = train_step.global_batch(train_batch(s), mesh)
  tx = optax.sgd(LEARNING_RATE, momentum=MOMENTUM)
  make = functools.partial(DynamicImageNetwork, backbone=backbone, num_classes=CLASSES, dropout_rate=0.0)
  # The state depends on neither the depth, the dtype nor the frame size: made once (on 64x64 frames, in
  # one program rather than an operation per leaf), replicated on the mesh, passed from row to row.
  first = make()
  frames = jnp.zeros((1, 1, WINDOW, 64, 64, 3))
  init = jax.jit(lambda key: train_step.create_state(first, tx, first.init(key, frames)),
                 out_shardings=jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  state = [None]
  for pool_at, dtype in TRAIN_ROWS:
    def row(model=make(pool_at=pool_at, dtype=dtype), pool_at=pool_at, dtype=dtype):
      if state[0] is None or any(x.is_deleted() for x in jax.tree.leaves(state[0])):  # donated by a failure
        state[0] = init(jax.random.key(0, impl="rbg"))
      state[0] = state[0].replace(apply_fn=model.apply)
      key = jax.random.key(1)
      start = time.perf_counter()
      compiled = train_step.make_train_step(model, mesh).lower(state[0], batch, key).compile()
      compile_seconds = time.perf_counter() - start

      def steps(count):  # the state is donated: each step takes the one before's
        for _ in range(count):
          state[0], metrics = compiled(state[0], batch, key)
        return metrics["loss"]

      seconds = median_seconds(steps, s["steps"], repeats=s["step_repeats"]) / s["steps"]
      return dict(train_fields(s, "jax", pool_at, dtype, seconds), compile_seconds=compile_seconds,
                  memory=jax_memory(compiled), loss=float(steps(1)))
    yield f"DI train step {pool_at} {dtype}", row


def torch_network(s: dict):
  """(a fresh ResNeXt in torchvision's layout, where it comes from)."""
  import torch_resnext
  if s["quick"]:
    return (torch_resnext.ResNeXt(QUICK_RESNEXT["stage_sizes"], groups=QUICK_RESNEXT["cardinality"],
                                  base_width=QUICK_RESNEXT["base_width"], num_classes=CLASSES),
            f"tests/support/torch_resnext.py {QUICK_RESNEXT}")
  try:
    import torchvision
    return torchvision.models.resnext50_32x4d(num_classes=CLASSES), "torchvision.models.resnext50_32x4d"
  except Exception:  # pylint: disable=broad-except  (absent, or built for another torch)
    return torch_resnext.ResNeXt(num_classes=CLASSES), "tests/support/torch_resnext.py"


def torch_forward(torch, net, depth: int, weights):
  """The DI network's forward in PyTorch, clips [B, T, C, H, W] (channels-last strides) -> logits [B, K]:
  the stages before `depth` (0: none, 1: the stem, 2: the stem and layer1, ...) on the B*T frames, ARP as
  the float32 weighted sum over T with `weights` [1, T, 1, 1, 1] (as `DynamicImageNetwork` pools in
  float32), the rest of the network on the B pooled maps."""
  stages = [torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), net.layer1, net.layer2,
            net.layer3, net.layer4]
  before, after = torch.nn.Sequential(*stages[:depth]), torch.nn.Sequential(*stages[depth:])

  def forward(clips):
    maps = before(clips.flatten(0, 1)).unflatten(0, clips.shape[:2])
    pooled = (maps.float() * weights).sum(1).contiguous(memory_format=torch.channels_last)
    return net.fc(torch.flatten(net.avgpool(after(pooled)), 1))

  return forward


def torch_section(s: dict, note):
  try:
    import torch
  except ImportError:
    note(skipped="torch is not installed")
    return
  from arp_jax.models.video import depth_of, reference_scaling
  cuda = torch.cuda.is_available()
  device = "cuda" if cuda else "cpu"
  torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
  torch.backends.cudnn.benchmark = True
  if s["quick"]:
    torch.set_num_threads(1)  # --quick runs it beside a JAX section: one core each
  try_compile = cuda and s["torch_compile"]
  note(device=torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
       torch_model=torch_network(s)[1], tf32=True, cudnn_benchmark=True, channels_last=True,
       torch_compile="tried: the rows say" if try_compile else "not tried: " + (
           "--no-torch-compile" if cuda else "no CUDA device (eager only on the CPU)"))
  local = train_batch(s)
  # [B, 1, T, H, W, C] -> [B, T, C, H, W] with channels-last strides, no copy: what channels_last wants.
  clips = torch.from_numpy(local["frames"][:, 0]).to(device).permute(0, 1, 4, 2, 3)
  labels = torch.from_numpy(local["label"]).long().to(device)
  compile_errors = []
  for compiled in (False, True) if try_compile else (False,):
    for pool_at, dtype in TRAIN_ROWS:
      if compile_errors:  # the first failure of torch.compile stands for the others
        return
      def row(pool_at=pool_at, dtype=dtype, compiled=compiled):
        net = torch_network(s)[0].to(device, memory_format=torch.channels_last).train()
        depth = depth_of("resnext50_32x4d", pool_at)
        scale = {"x0.1": 0.1, "none": 1.0}[reference_scaling("resnext50_32x4d", depth, "arp")]
        weights = torch.from_numpy(arp_jax.arp_weights(WINDOW) * scale).to(device).view(1, -1, 1, 1, 1)
        forward = torch_forward(torch, net, depth, weights)
        forward = torch.compile(forward) if compiled else forward
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)

        def step():
          optimizer.zero_grad(set_to_none=True)
          with torch.autocast(device, torch.bfloat16, enabled=dtype == "bfloat16"):
            loss = torch.nn.functional.cross_entropy(forward(clips), labels)
          loss.backward()
          optimizer.step()
          if cuda:
            torch.cuda.synchronize()
          return loss.detach()

        if cuda:
          torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
          step()  # compiles (torch.compile), searches convolution algorithms (cudnn.benchmark)
        except Exception as error:
          if compiled:
            compile_errors.append(error)
            note(torch_compile=f"failed ({type(error).__name__}: {str(error)[:200]}): eager rows only")
          raise
        first = time.perf_counter() - start
        seconds = median_seconds(back_to_back(step, s["steps"]), repeats=s["step_repeats"]) / s["steps"]
        memory = ({"device_peak_bytes": torch.cuda.max_memory_allocated()} if cuda else
                  {"process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
        return dict(train_fields(s, "torch", pool_at, dtype, seconds), memory=memory, torch_compile=compiled,
                    compile_seconds=first - seconds, loss=float(step()))
      yield f"PyTorch {'torch.compile' if compiled else 'eager'} {pool_at} {dtype}", row


# Name -> section: a generator of (row name, a function that measures the row and returns it).
SECTIONS = {"arp": arp_section, "rp": rp_section, "tvl1": tvl1_section, "train": train_section,
            "torch": torch_section}
