"""The small model and batches of the data-parallel tests (tests/test_train_step.py, tests/test_distributed.py),
imported by their subprocess scripts (tests/ is put on sys.path)."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


class Tiny(nn.Module):
  """BatchNorm (global statistics matter), dropout and lengths, like the video model: [B, T, H, W, C] ->
  logits [B, 5]."""

  @nn.compact
  def __call__(self, frames, train=False, lengths=None):
    x = frames.astype(jnp.float32).mean(axis=(2, 3))  # [B, T, C]
    if lengths is not None:
      x = jnp.where(jnp.arange(x.shape[1])[None, :, None] < lengths[:, None, None], x, 0.0)
    x = nn.Dense(16)(x.reshape(x.shape[0], -1))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.Dropout(0.5, deterministic=not train)(nn.relu(x))
    return nn.Dense(5)(x)


def batches(steps: int) -> list[dict]:
  """`steps` global batches of 16 clips of 4 frames of 6 x 6, the same in every process (seed 0)."""
  rng = np.random.default_rng(0)
  return [dict(frames=rng.uniform(0, 255, (16, 4, 6, 6, 3)).astype(np.float32),
               label=rng.integers(0, 5, 16).astype(np.int32),
               length=rng.integers(1, 5, 16).astype(np.int32)) for _ in range(steps)]
