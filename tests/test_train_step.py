"""The data-parallel train step on 8 CPU devices equals the same step on one device.

Runs in a subprocess: the 8 host devices must be requested (XLA_FLAGS) before JAX starts, and the test
session has already started JAX with one.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import flax.linen as nn
    import jax, jax.numpy as jnp, numpy as np
    from arp_jax import optim, train_step as ts

    class Tiny(nn.Module):  # BatchNorm (global statistics matter), dropout, and lengths like the video model
      @nn.compact
      def __call__(self, frames, train=False, lengths=None):
        x = frames.astype(jnp.float32).mean(axis=(2, 3))  # [B, T, C]
        if lengths is not None:
          x = jnp.where(jnp.arange(x.shape[1])[None, :, None] < lengths[:, None, None], x, 0.0)
        x = nn.Dense(16)(x.reshape(x.shape[0], -1))
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.Dropout(0.5, deterministic=not train)(nn.relu(x))
        return nn.Dense(5)(x)

    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    batches = [dict(frames=rng.uniform(0, 255, (16, 4, 6, 6, 3)).astype(np.float32),
                    label=rng.integers(0, 5, 16).astype(np.int32),
                    length=rng.integers(1, 5, 16).astype(np.int32)) for _ in range(3)]
    model = Tiny()
    variables = model.init(jax.random.key(0), batches[0]["frames"], lengths=batches[0]["length"])
    tx = optim.sgd(optim.epoch_schedule([0.1, 0.01], 2))
    out = {}
    for devices in (8, 1):
      mesh = ts.data_mesh(jax.devices()[:devices])
      state = ts.replicate(ts.create_state(model, tx, variables), mesh)
      step = ts.make_train_step(model, mesh)
      losses = []
      for i, batch in enumerate(batches):
        state, metrics = step(state, ts.global_batch(batch, mesh), jax.random.key(i))
        losses.append(float(metrics["loss"]))
      out[devices] = dict(losses=losses, params=[np.asarray(p).tolist() for p in jax.tree.leaves(state.params)],
                          stats=[np.asarray(p).tolist() for p in jax.tree.leaves(state.batch_stats)],
                          step=int(state.step), replicated=state.params["Dense_0"]["kernel"].sharding.is_fully_replicated)
    print(json.dumps(out))
""")


def test_eight_devices_equal_one():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  eight, one = out["8"], out["1"]
  assert eight["step"] == one["step"] == 3 and eight["replicated"]
  assert eight["losses"][0] != eight["losses"][2]  # it trains
  import numpy as np
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
  for a, b in zip(eight["params"] + eight["stats"], one["params"] + one["stats"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
