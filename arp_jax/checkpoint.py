"""Periodic, resumable training checkpoints: the train state and the input iterator, saved together.

    manager = checkpoint.Manager(workdir / "checkpoints", keep=3, every=1000)
    state, step = manager.restore_or(state, data_iterator)  # the latest checkpoint in the workdir, if any
    ...
    manager.save(step, state, data_iterator)                 # only every `every` steps (or force=True)

An Orbax `CheckpointManager` keeps the newest `keep` checkpoints; each holds the `TrainState` (parameters,
BatchNorm statistics, optimiser state, step) and the Grain iterator's position, so a resumed run continues
with exactly the batches it would have seen. Saving is atomic (Orbax writes a temporary folder and
renames it), so a run killed while saving resumes from the previous checkpoint. Restoring reads the
arrays into the shardings of the `state` given (e.g. replicated over the mesh).
"""

from __future__ import annotations

import os
from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp


class Manager:
  """Saves and restores (train state, data iterator) under `directory`."""

  def __init__(self, directory, keep: int = 3, every: int = 1000):
    """Raises ValueError for keep < 1 or every < 1."""
    for name, value in (("keep", keep), ("every", every)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} is {value!r}; expected an int >= 1")
    self.directory = Path(os.fspath(directory)).absolute()
    self.every = every
    # The period is applied here: Orbax's own save_interval_steps also saves the first step it is given.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  @property
  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, iterator=None, force: bool = False) -> bool:
    """Saves at `step` when it is a multiple of `every` (or `force`); returns whether it saved."""
    if not force and step % self.every:
      return False
    items = dict(state=ocp.args.StandardSave(state))
    if iterator is not None:
      items["data"] = grain.checkpoint.CheckpointSave(iterator)
    saved = self._manager.save(step, args=ocp.args.Composite(**items), force=force)
    self._manager.wait_until_finished()
    return saved

  def restore_or(self, state, iterator=None):
    """(state, step) from the latest checkpoint, the iterator moved to its saved position; or (state, 0)
    unchanged when there is none. `state` gives the structure, dtypes and shardings to restore into."""
    step = self._manager.latest_step()
    if step is None:
      return state, 0
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    items = dict(state=ocp.args.StandardRestore(abstract))
    if iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"], step

  def restore_variables(self, variables):
    """({"params", "batch_stats"}, step) of the latest checkpoint's train state, without its optimiser
    state: what evaluation needs, at half the memory of restoring the whole state (SGD momentum is a
    second copy of the parameters). `variables` gives the structure, dtypes and shardings (arrays or
    `jax.ShapeDtypeStruct`s).

    Raises:
      FileNotFoundError: there is no checkpoint.
    """
    step = self._manager.latest_step()
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, dict(variables))
    # The state was saved whole (StandardSave); a partial PyTree restore reads only these arrays.
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(item=abstract, partial_restore=True)))
    return restored["state"], step

  def close(self) -> None:
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
