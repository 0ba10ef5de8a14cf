"""Training checkpoints (arp_jax.checkpoint): state and data iterator saved together and resumed."""

import grain
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from arp_jax import checkpoint
from arp_jax.train_step import TrainState


def _state(value: float) -> TrainState:
  params = {"dense": {"kernel": jnp.full((3, 2), value), "bias": jnp.zeros(2)}}
  return TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.1, momentum=0.9),
                           batch_stats={"bn": {"mean": jnp.full((2,), value)}})


def _iterator():
  return iter(grain.MapDataset.range(100).shuffle(seed=3).batch(4).to_iter_dataset())


def test_resume_gives_the_saved_state_and_the_same_batches(tmp_path):
  state, data = _state(1.5), _iterator()
  for _ in range(3):
    next(data)
  state = state.replace(step=jnp.asarray(7))
  with checkpoint.Manager(tmp_path / "ckpt", keep=2, every=5) as manager:
    assert manager.restore_or(_state(0.0))[1] == 0  # nothing saved yet
    assert not manager.save(7, state, data)  # 7 is not a multiple of every=5
    assert manager.save(7, state, data, force=True)
    expected = [next(data) for _ in range(2)]

  fresh_data = _iterator()
  with checkpoint.Manager(tmp_path / "ckpt", keep=2, every=5) as manager:
    restored, step = manager.restore_or(_state(0.0), fresh_data)
  assert step == 7 and int(restored.step) == 7
  np.testing.assert_array_equal(restored.params["dense"]["kernel"], np.full((3, 2), 1.5))
  np.testing.assert_array_equal(restored.batch_stats["bn"]["mean"], np.full((2,), 1.5))
  for batch in expected:
    np.testing.assert_array_equal(next(fresh_data), batch)


def test_keeps_the_newest_and_starts_from_scratch_without_checkpoints(tmp_path):
  with checkpoint.Manager(tmp_path, keep=2, every=1) as manager:
    state, step = manager.restore_or(_state(2.0))
    assert step == 0 and float(state.params["dense"]["kernel"][0, 0]) == 2.0
    for s in (1, 2, 3):
      manager.save(s, _state(float(s)))
    assert manager.latest_step == 3
  assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [2, 3]
  with pytest.raises(ValueError, match="keep"):
    checkpoint.Manager(tmp_path, keep=0)


def test_restore_variables_reads_parameters_and_statistics_only(tmp_path):
  with checkpoint.Manager(tmp_path / "ckpt") as manager:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
      manager.restore_variables({"params": {}, "batch_stats": {}})
    manager.save(4, _state(2.5), force=True)
  template = _state(0.0)
  with checkpoint.Manager(tmp_path / "ckpt") as manager:
    variables, step = manager.restore_variables({"params": template.params, "batch_stats": template.batch_stats})
  assert step == 4 and set(variables) == {"params", "batch_stats"}  # no optimiser state read
  np.testing.assert_array_equal(variables["params"]["dense"]["kernel"], np.full((3, 2), 2.5))
  np.testing.assert_array_equal(variables["batch_stats"]["bn"]["mean"], np.full((2,), 2.5))


def test_restore_variables_gives_orbax_the_shardings_so_it_does_not_warn(tmp_path):
  import warnings  # pylint: disable=import-outside-toplevel
  with checkpoint.Manager(tmp_path / "ckpt") as manager:
    manager.save(4, _state(2.5), force=True)
  template = _state(0.0)
  with checkpoint.Manager(tmp_path / "ckpt") as manager, warnings.catch_warnings():
    warnings.filterwarnings("error", message="Sharding info not provided")
    _, step = manager.restore_variables({"params": template.params, "batch_stats": template.batch_stats})
  assert step == 4


def test_when_no_checkpoint_restores_it_is_an_error_and_nothing_is_moved(tmp_path, capfd):
  with checkpoint.Manager(tmp_path / "ckpt", every=1) as manager:
    for s in (1, 2):
      manager.save(s, _state(float(s)))
  for s in (1, 2):
    (tmp_path / "ckpt" / str(s) / "state" / "_METADATA").unlink()
  with checkpoint.Manager(tmp_path / "ckpt") as manager:
    with pytest.raises(RuntimeError, match=r"no checkpoint in \S+ restores \(steps \[2, 1\]\)"):
      manager.restore_or(_state(0.0))
  assert capfd.readouterr().err.count("does not restore") == 2
  assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["1", "2"]
  assert not (tmp_path / "ckpt.damaged").exists()


def test_quiet_logs_drops_orbax_advice_on_waiting_saves_only(caplog):
  # A loaded machine makes a smoke run's save (every 2 steps) wait over a second for the one before;
  # Orbax's advice then broke the main job's clean output. Other warnings stay.
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  checkpoint.quiet_logs()
  with caplog.at_level("WARNING"):
    absl_logging.warning("Waiting for previous save to complete took %f seconds. If this number is high, "
                         "consider checkpointing less frequently.", 1.16)
    absl_logging.warning("a save failed")
  assert [record.getMessage() for record in caplog.records] == ["a save failed"]
