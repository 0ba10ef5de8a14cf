"""Backbone and video-model speed, as ratios against baselines measured in the same run.

    python benchmarks/model_bench.py [--batch 8] [--size 224] [--quick]

1. One training step (forward + backward, SGD update) of ResNeXt-50 32x4d on [batch, size, size, 3],
   jitted, against the same network in PyTorch on the CPU (the torch.nn model of
   tests/support/torch_resnext.py, `pip install torch==2.13.0`), both float32, same threads.
2. The cost of each insertion depth of the dynamic image network (one 10-frame clip, window 10, ARP)
   relative to a plain image forward of the same 10 frames through the backbone.

Medians of repeated calls after a warm-up (compilation excluded). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arp_jax.models import DynamicImageNetwork, ResNeXt, ResNeXt50_32x4d
from timing import median_seconds  # benchmarks/timing.py

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # torch_resnext


def bench_train_step(batch: int, size: int, repeats: int) -> None:
  print(f"\n1. ResNeXt-50 training step (forward + backward + SGD) on [{batch}, {size}, {size}, 3] float32")
  rng = np.random.default_rng(0)
  images = rng.normal(size=(batch, size, size, 3)).astype(np.float32)
  labels = rng.integers(0, 1000, batch)
  model = ResNeXt50_32x4d()
  variables = model.init(jax.random.key(0, impl="rbg"), jnp.zeros((1, size, size, 3)))
  tx = optax.sgd(0.01, momentum=0.9)
  state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

  @jax.jit
  def step(state, images, labels):
    params, batch_stats, opt_state = state

    def loss_fn(params):
      logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images, train=True,
                                    mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grad_updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, grad_updates), updates["batch_stats"], opt_state), loss

  jax_images, jax_labels = jnp.asarray(images), jnp.asarray(labels)
  jax_time = median_seconds(lambda s: step(s, jax_images, jax_labels)[1], state, repeats=repeats)
  print(f"  arp_jax (jax.jit)            {jax_time * 1e3:8.0f} ms/step  {batch / jax_time:6.2f} images/s")
  try:
    import torch
    import torch_resnext
  except ImportError:
    print("  (torch not installed: `pip install torch==2.13.0` adds the PyTorch baseline)")
    return
  torch.manual_seed(0)
  net = torch_resnext.ResNeXt().train()
  optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  y = torch.from_numpy(labels)

  def torch_step():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()

  torch_time = median_seconds(torch_step, repeats=repeats)
  print(f"  PyTorch {torch.__version__} eager (CPU, {torch.get_num_threads()} threads) "
        f"{torch_time * 1e3:8.0f} ms/step  {batch / torch_time:6.2f} images/s")
  print(f"  arp_jax takes {jax_time / torch_time:.2f} x PyTorch's time "
        f"({torch_time / jax_time:.2f} x as fast)")


def bench_insertion_depths(size: int, repeats: int) -> None:
  print(f"\n2. Insertion depth cost: one clip of 10 frames at {size}x{size}, window 10, ARP, relative to a "
        "plain forward of the 10 frames")
  clip = jnp.asarray(np.random.default_rng(1).normal(size=(1, 10, size, size, 3)), jnp.float32)
  backbone = ResNeXt50_32x4d(num_classes=101)
  variables = backbone.init(jax.random.key(0, impl="rbg"), clip[0, :1])
  plain = jax.jit(lambda v, x: backbone.apply(v, x))
  plain_time = median_seconds(plain, variables, clip[0], repeats=repeats)
  print(f"  plain image forward, 10 frames {plain_time * 1e3:8.0f} ms  1.00")
  wrapped = {k: {"backbone": v} for k, v in variables.items()}
  for pool_at in ResNeXt.BOUNDARIES[:ResNeXt.BOUNDARIES.index("merge")]:
    model = DynamicImageNetwork(backbone="resnext50_32x4d", num_classes=101, window=10, stride=10,
                                pool_at=pool_at, pooling="arp")
    forward = jax.jit(model.apply)
    seconds = median_seconds(forward, wrapped, clip, repeats=repeats)
    print(f"  pool at {pool_at:<6}                 {seconds * 1e3:8.0f} ms  {seconds / plain_time:4.2f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--quick", action="store_true", help="2 repeats (a smoke run)")
  args = parser.parse_args()
  repeats = 2 if args.quick else 5
  print(f"{os.cpu_count()} CPUs; jax {jax.__version__} on {jax.devices()[0].platform}")
  bench_train_step(args.batch, args.size, repeats)
  bench_insertion_depths(args.size, repeats)


if __name__ == "__main__":
  main()
