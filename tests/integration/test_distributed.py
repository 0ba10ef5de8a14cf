"""Two processes under `jax.distributed` train and evaluate like one process with the same global batch.

Two worker processes (localhost coordinator, CPU collectives over gloo, 2 CPU devices each: a mesh of
4 devices on 2 hosts) each read their half of the global batch (process p: rows p * B/2 to (p + 1) * B/2,
the rows `global_batch` / `jax.make_array_from_process_local_data` give to process p's devices, which
come after those of processes < p in `data_mesh()`), and run 3 steps of `make_train_step`. A third
process runs the same 3 steps on the whole batch with one device. Parameters, BatchNorm statistics and
losses agree, so the cross-host reductions (gradients, loss, BatchNorm batch statistics) are those of
the global batch and the hosts' parts are assembled in the right order (dropout masks depend on a row's
position in the global batch).

Evaluation likewise (`test_two_processes_evaluate_like_one`): `evaluate.score_videos` on the same two
hosts, each reading only its half of the test videos, scores every video of the tiny synthetic dataset
exactly once, with the scores and labels of one process on one device; see that test's docstring.

Runs in subprocesses: `jax.distributed.initialize` must come before JAX starts its backends, once per
process, and the test session has already started JAX as a single process with one device.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from paths import REPO, SUPPORT

STEPS = 3
TIMEOUT_S = 300

SCRIPT = textwrap.dedent("""
    import json, os, sys, traceback
    import jax
    mode = sys.argv[1]
    if mode == "worker":
      # A worker that fails must exit at once: at exit jax.distributed.shutdown() waits for its peer, which
      # waits for it in a collective.
      sys.excepthook = lambda *exc: (traceback.print_exception(*exc), sys.stderr.flush(), os._exit(1))
      port, process_id = int(sys.argv[2]), int(sys.argv[3])
      # CPU collectives across processes: gloo is jax's default (jax_cpu_collectives_implementation,
      # jax/_src/config.py); set explicitly so the test does not depend on the default.
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
      jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                                 process_id=process_id, initialization_timeout=120)
    import numpy as np
    from jax.experimental import multihost_utils
    from arp_jax import optim, train_step as ts
    sys.path.insert(0, sys.argv[4])
    from tiny_model import Tiny, batches as make_batches

    batches = make_batches(%(steps)d)  # the same global batches in every process
    model = Tiny()
    variables = model.init(jax.random.key(0), batches[0]["frames"], num_windows=batches[0]["windows"])
    tx = optim.sgd(optim.epoch_schedule([0.1, 0.01], 2))

    if mode == "worker":
      assert jax.process_count() == 2 and jax.process_index() == process_id, (jax.process_count(), jax.process_index())
      assert jax.local_device_count() == 2 and jax.device_count() == 4, jax.devices()
      mesh = ts.data_mesh()
      assert [d.process_index for d in mesh.devices.flat] == [0, 0, 1, 1], mesh.devices
      half = 16 // 2
      parts = [{k: v[process_id * half:(process_id + 1) * half] for k, v in b.items()} for b in batches]
    else:
      assert jax.process_count() == 1
      mesh = ts.data_mesh(jax.devices()[:1])
      parts = batches
    state = ts.replicate(ts.create_state(model, tx, variables), mesh)
    step = ts.make_train_step(model, mesh)
    local = lambda x: np.asarray(x.addressable_data(0))  # replicated: every device holds the whole value
    losses, labels = [], []
    for i, part in enumerate(parts):
      batch = ts.global_batch(part, mesh)
      assert batch["frames"].shape == (16, 4, 1, 6, 6, 3), batch["frames"].shape
      labels.append(np.asarray(multihost_utils.process_allgather(batch["label"], tiled=True)).tolist())
      state, metrics = step(state, batch, jax.random.key(i))
      losses.append(float(local(metrics["loss"])))
    out = dict(process=jax.process_index(), losses=losses, labels=labels, step=int(local(state.step)),
               replicated=state.params["Dense_0"]["kernel"].sharding.is_fully_replicated,
               params=[local(p).tolist() for p in jax.tree.leaves(state.params)],
               stats=[local(p).tolist() for p in jax.tree.leaves(state.batch_stats)],
               expected_labels=[b["label"].tolist() for b in batches])
    print(json.dumps(out), flush=True)
    if mode == "worker":
      jax.distributed.shutdown()
""" % dict(steps=STEPS))


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _tail(path, n=3000) -> str:
  return path.read_text(errors="replace")[-n:]


def _run(tmp_path, script: str, *args: str) -> dict:
  """Runs `script` as two workers under `jax.distributed` (2 CPU devices each) and as one process with
  one device ("single"), all at once; returns the JSON of each one's last stdout line by name."""
  port = _free_port()
  base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
  commands = {f"worker{i}": ([sys.executable, "-c", script, "worker", str(port), str(i), *args],
                             dict(base, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2"))
              for i in range(2)}
  commands["single"] = ([sys.executable, "-c", script, "single", "0", "0", *args],
                        dict(base, JAX_PLATFORMS="cpu"))
  procs, logs = {}, {}
  try:
    for name, (argv, env) in commands.items():
      logs[name] = (tmp_path / f"{name}.out", tmp_path / f"{name}.err")
      with open(logs[name][0], "w") as out, open(logs[name][1], "w") as err:
        procs[name] = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
    deadline = time.monotonic() + TIMEOUT_S
    # Wait for all; stop early when one fails (its peer would otherwise wait on it in a collective).
    while (any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline
           and all(p.returncode in (None, 0) for p in procs.values())):
      time.sleep(0.1)
  finally:
    for p in procs.values():
      if p.poll() is None:
        p.kill()
        p.wait()
  codes = {name: p.returncode for name, p in procs.items()}
  assert all(code == 0 for code in codes.values()), (
      f"exit codes {codes} (killed after the first failure or {TIMEOUT_S} s)\n" +
      "\n".join(f"--- {name} stderr:\n{_tail(logs[name][1], 2000)}" for name in procs))
  results = {}
  for name in procs:
    lines = logs[name][0].read_text().strip().splitlines()
    assert lines, f"{name} printed nothing:\n{_tail(logs[name][1])}"
    results[name] = json.loads(lines[-1])
  return results


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
  results = _run(tmp_path, SCRIPT, os.fspath(SUPPORT))
  one, (w0, w1) = results["single"], (results["worker0"], results["worker1"])
  assert (w0["process"], w1["process"]) == (0, 1)
  # The hosts' halves form the global batch in order.
  assert w0["labels"] == w1["labels"] == one["labels"] == one["expected_labels"]
  assert w0["step"] == w1["step"] == one["step"] == STEPS and w0["replicated"] and w1["replicated"]
  assert one["losses"][0] != one["losses"][-1]  # it trains
  for worker in (w0, w1):
    np.testing.assert_allclose(worker["losses"], one["losses"], rtol=1e-5)
    assert len(worker["params"]) == len(one["params"]) and len(worker["stats"]) == len(one["stats"])
    for a, b in zip(worker["params"] + worker["stats"], one["params"] + one["stats"]):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # Both hosts hold the same replicated state.
  for a, b in zip(w0["params"] + w0["stats"], w1["params"] + w1["stats"]):
    np.testing.assert_array_equal(a, b)


EVAL_SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys, traceback
    import jax
    mode, port, process_id, root, data_dir = sys.argv[1:6]
    if mode == "worker":
      sys.excepthook = lambda *exc: (traceback.print_exception(*exc), sys.stderr.flush(), os._exit(1))
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
      jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                                 process_id=int(process_id), initialization_timeout=120)
    import numpy as np
    from arp_jax import builders, evaluate
    from arp_jax.train_step import data_mesh, replicate
    sys.path.insert(0, os.path.join(root, "experiments"))
    import synthetic_four_stream

    if mode == "worker":
      assert jax.process_count() == 2 and jax.process_index() == int(process_id), jax.process_index()
      assert jax.local_device_count() == 2 and jax.device_count() == 4, jax.devices()
    else:
      assert jax.process_count() == 1 and jax.device_count() == 1, jax.devices()
    mesh = data_mesh()

    # What this host's pipeline gave score_videos: the `index` and `valid` of each local batch.
    seen = []
    dataset = builders.input_pipeline
    def recording_dataset(*args, **kwargs):
      for batch in dataset(*args, **kwargs):
        seen.append(dict(index=batch["index"].tolist(), valid=batch["valid"].tolist()))
        yield batch
    builders.input_pipeline = recording_dataset

    # The pipeline reads the first `num_test` videos of the test split (11: the hosts' shares differ by one).
    source = builders.source
    num_test = 12
    class Head:  # a random-access source, as grain needs
      def __init__(self, inner, n):
        self.inner, self.n = inner, n
      def __len__(self):
        return self.n
      def __getitem__(self, i):
        if not 0 <= i < self.n:
          raise IndexError(i)
        return self.inner[i]
    builders.source = lambda *args, **kwargs: Head(source(*args, **kwargs), num_test)

    config = synthetic_four_stream.get_config("stream=di,runlocal")
    config.dataset.data_dir = data_dir
    assert config.eval.aggregate == "mean" and config.eval.batch_size == 8, config.eval
    network = builders.model(config.model, 12, 3)
    variables = builders.initial_variables(config, network)
    # Every host must start from the same values: `replicate` puts each host's own copy on its devices.
    digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in jax.tree.leaves(variables))).hexdigest()
    variables = replicate(variables, mesh)
    workdir = os.getcwd()  # unused: the data folder is config.dataset.data_dir
    out = dict(process=jax.process_index(), variables=digest, cases={})
    for aggregate, n in (("mean", 12), ("network", 11)):
      config.eval.aggregate, num_test = aggregate, n
      seen.clear()
      index, label, scores, names = evaluate.score_videos(config, workdir, network, variables, mesh, n)
      out["cases"][aggregate] = dict(index=index.tolist(), label=label.tolist(), scores=scores.tolist(),
                                     names=names, batches=list(seen))
    num_test = 12
    test = builders.source(config, workdir, train=False)
    out["expected_labels"] = [int(test[i]["label"]) for i in range(len(test))]
    out["expected_names"] = [bytes(test[i]["name"]).decode() for i in range(len(test))]
    print(json.dumps(out), flush=True)
    if mode == "worker":
      jax.distributed.shutdown()
""")


@pytest.mark.slow
def test_two_processes_evaluate_like_one(tmp_path):
  """`evaluate.score_videos` on 2 hosts x 2 devices scores each test video once, as 1 process on 1 device.

  The stream=di,runlocal config (a ResNeXt-tiny pooling windows of 10 frames by ARP, initialised from its
  seed in each process) on the tiny synthetic dataset, global eval batch 8, scored twice: the config's
  "mean" aggregate (each window scored alone) on the 12 test videos, then the "network" aggregate (the
  network merges the windows) on the first 11 (the hosts' shares differ by one video). It proves that:

  * every process builds the same initial variables (each host replicates its own copy);
  * each host reads only its share: host p the videos p, p + 2, ... (disjoint, covering the test set), in
    local batches of 8 / 2 = 4, the last one padded: 12 videos are 6 per host = 4 + (2 real + 2 padding);
    of 11, host 1 has 5 and is padded to host 0's 6 videos, so both run the same number of steps;
  * the padding is dropped and the gathered result (`process_allgather` of arrays that are not fully
    addressable) holds every video exactly once, in source order, with its label and name, the same on
    both hosts;
  * the scores equal those of the single process (batches of 8 on one device, the last one padded too):
    the sharded eval step computes per video what the unsharded one does.
  """
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  data_dir = tmp_path / "data"
  synthetic.build(data_dir, "tiny")
  root = os.fspath(REPO)
  results = _run(tmp_path, EVAL_SCRIPT, root, os.fspath(data_dir))

  one, (w0, w1) = results["single"], (results["worker0"], results["worker1"])
  assert (w0["process"], w1["process"], one["process"]) == (0, 1, 0)
  assert w0["variables"] == w1["variables"] == one["variables"]
  labels = one["expected_labels"]
  assert len(labels) == 12 and w0["expected_labels"] == w1["expected_labels"] == labels
  for aggregate, n in (("mean", 12), ("network", 11)):
    ref, r0, r1 = one["cases"][aggregate], w0["cases"][aggregate], w1["cases"][aggregate]
    # Every video once, in source order, with its label, on every host.
    for r in (ref, r0, r1):
      assert r["index"] == list(range(n)), (aggregate, r["index"])
      assert r["label"] == labels[:n], aggregate
      assert r["names"] == one["expected_names"][:n], aggregate  # gathered with the scores
      assert np.asarray(r["scores"]).shape == (n, 12) and np.isfinite(r["scores"]).all(), aggregate
    # Both hosts hold the same gathered scores, equal to the single process's.
    np.testing.assert_array_equal(r0["scores"], r1["scores"], err_msg=aggregate)
    np.testing.assert_allclose(r0["scores"], ref["scores"], rtol=1e-5, atol=1e-6, err_msg=aggregate)
    # The scores tell the videos apart: a mix-up of videos would not go unnoticed.
    scores = np.asarray(ref["scores"])
    gaps = np.abs(scores[:, None] - scores[None]).max(axis=-1) + np.eye(n)
    assert gaps.min() > 1e-4, (aggregate, gaps.min())

    # What each host's pipeline read: its share only, in local batches of 4, the last one padded.
    reals = []
    for p, r in enumerate((r0, r1)):
      batches = r["batches"]
      assert [len(b["index"]) for b in batches] == [4, 4], (aggregate, p, batches)
      real = [i for b in batches for i, v in zip(b["index"], b["valid"]) if v]
      assert real == list(range(p, n, 2)), (aggregate, p, batches)
      assert sum(not v for b in batches for v in b["valid"]) == 8 - len(real) > 0, (aggregate, p, batches)
      assert all(b["valid"] == sorted(b["valid"], reverse=True) for b in batches)  # padding last
      reals += real
    assert sorted(reals) == list(range(n))
    # The single process read everything, in batches of 8, the last one padded.
    assert [len(b["index"]) for b in ref["batches"]] == [8, 8], (aggregate, ref["batches"])
    assert [i for b in ref["batches"] for i, v in zip(b["index"], b["valid"]) if v] == list(range(n))
  # The aggregates are different computations.
  assert not np.allclose(one["cases"]["mean"]["scores"][:11], one["cases"]["network"]["scores"])
