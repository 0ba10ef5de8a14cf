"""The small model and batches of the data-parallel tests (tests/integration/test_train_step.py, tests/integration/test_distributed.py),
imported by their subprocess scripts (tests/ is put on sys.path)."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


class Tiny(nn.Module):
  """BatchNorm (global statistics matter), dropout and a window count, like the video model:
  [B, S, tau, H, W, C] with `num_windows` [B] -> logits [B, 5]."""

  @nn.compact
  def __call__(self, frames, train=False, num_windows=None):
    x = frames.astype(jnp.float32).mean(axis=(2, 3, 4))  # [B, S, C]
    if num_windows is not None:
      x = jnp.where(jnp.arange(x.shape[1])[None, :, None] < num_windows[:, None, None], x, 0.0)
    x = nn.Dense(16)(x.reshape(x.shape[0], -1))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.Dropout(0.5, deterministic=not train)(nn.relu(x))
    return nn.Dense(5)(x)


def batches(steps: int) -> list[dict]:
  """`steps` global batches of 16 videos of 4 windows of one 6 x 6 frame (the pipelines' layout), the same
  in every process (seed 0)."""
  rng = np.random.default_rng(0)
  return [dict(frames=rng.uniform(0, 255, (16, 4, 1, 6, 6, 3)).astype(np.float32),
               label=rng.integers(0, 5, 16).astype(np.int32),
               windows=rng.integers(1, 5, 16).astype(np.int32)) for _ in range(steps)]
