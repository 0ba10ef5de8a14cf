"""The data-parallel train step on 8 CPU devices equals the same step on one device.

Runs in a subprocess: the 8 host devices must be requested (XLA_FLAGS) before JAX starts, and the test
session has already started JAX with one.
"""

import json
import os
import subprocess
import sys
import textwrap

from paths import SUPPORT

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from arp_jax import optim, train_step as ts
    sys.path.insert(0, sys.argv[1])
    from tiny_model import Tiny, batches as make_batches

    assert jax.device_count() == 8, jax.devices()
    batches = make_batches(3)
    model = Tiny()
    variables = model.init(jax.random.key(0), batches[0]["frames"], num_windows=batches[0]["windows"])
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
  tests = os.fspath(SUPPORT)
  result = subprocess.run([sys.executable, "-c", SCRIPT, tests], capture_output=True, text=True, env=env,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  eight, one = out["8"], out["1"]
  assert eight["step"] == one["step"] == 3 and eight["replicated"]
  assert eight["losses"][0] != eight["losses"][2]  # it trains
  import numpy as np
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
  for a, b in zip(eight["params"] + eight["stats"], one["params"] + one["stats"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
