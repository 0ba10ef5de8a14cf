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

A checkpoint damaged later (a file lost or truncated) does not stop the run: restoring falls back to the
newest checkpoint that restores, and says on stderr which one it skipped and why. Training
(`restore_or`) then moves the skipped ones to <directory>.damaged/<step>, kept for inspection: left in
place, the run's next saves would reuse their step numbers and Orbax's keep-N cleanup would delete them.
Evaluation (`restore_variables`) only reads.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp

from arp_jax import checks


def quiet_logs() -> None:
  """Orbax logs every step of every save at INFO (absl logging): a command line shows only its warnings;
  the metrics and the progress bar say what matters. Also dropped: Orbax's warning that a save waited
  over a second for the one before (advice to checkpoint less often), which a loaded machine prints for
  smoke runs that checkpoint every few steps; a run's steps per second show the cost of its saves."""
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  absl_logging.set_verbosity(absl_logging.WARNING)
  absl_logger = logging.getLogger("absl")
  if _waited_for_previous_save not in absl_logger.filters:
    absl_logger.addFilter(_waited_for_previous_save)


def _waited_for_previous_save(record) -> bool:
  """False for Orbax's "Waiting for previous save to complete took ... seconds" warning."""
  return not str(record.msg).startswith("Waiting for previous save to complete")


def _silence_aborted_reads() -> None:
  """When a restore fails, Orbax closes its event loop while TensorStore's threads still read the
  checkpoint's other arrays: each then fails to call back ("Event loop is closed", a traceback apiece on
  stderr, during the restore and after it) and asyncio logs every task whose error nobody read. They echo
  the one error already reported: drop those two (only those). Installed before the first restore, since
  the first echoes come before its error."""
  if not getattr(sys.unraisablehook, "drops_aborted_reads", False):
    previous = sys.unraisablehook

    def hook(unraisable):
      if not (unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed"):
        previous(unraisable)

    hook.drops_aborted_reads = True
    sys.unraisablehook = hook
  asyncio_logger = logging.getLogger("asyncio")
  if _unread_orbax_task not in asyncio_logger.filters:
    asyncio_logger.addFilter(_unread_orbax_task)


def _unread_orbax_task(record) -> bool:
  """False for asyncio's log of an Orbax task whose error nobody read (its message names the coroutine)."""
  return not ("exception was never retrieved" in str(record.msg) and "orbax" in str(record.msg))


class Manager:
  """Saves and restores (train state, data iterator) under `directory`."""

  def __init__(self, directory, keep: int = 3, every: int = 1000, create: bool = True):
    """`create`: make `directory` if it does not exist (False for a reader such as evaluation, which must
    not leave an empty folder behind). Raises ValueError for keep < 1 or every < 1 (TypeError: not an
    int)."""
    keep, every = checks.check_int(keep, "keep"), checks.check_int(every, "every")
    self.directory = Path(os.fspath(directory)).absolute()
    self.every = every
    # The period is applied here: Orbax's own save_interval_steps also saves the first step it is given.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create)
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

  def _restore_newest(self, args):
    """(restored items, step, skipped steps) of the newest checkpoint that restores with `args`; (None,
    None, []) when there is none.

    Raises:
      RuntimeError: there are checkpoints but none restores (the newest one's error is the cause).
    """
    skipped, first_error = [], None
    _silence_aborted_reads()
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        return self._manager.restore(step, args=args), step, skipped
      except Exception as error:  # pylint: disable=broad-except  any failure to read makes it unusable
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        print(f"checkpoint {step} in {self.directory} does not restore ({reason[:300]}); skipped",
              file=sys.stderr)
        skipped.append(step)
        first_error = first_error or error
    if skipped:
      raise RuntimeError(f"no checkpoint in {self.directory} restores (steps {skipped}); see the lines "
                         "above") from first_error
    return None, None, skipped

  def restore_or(self, state, iterator=None):
    """(state, step) from the newest checkpoint that restores, the iterator moved to its saved position;
    or (state, 0) unchanged when there is none. `state` gives the structure, dtypes and shardings to
    restore into. Newer checkpoints that do not restore are moved to <directory>.damaged/.

    Raises:
      RuntimeError: there are checkpoints but none restores.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    items = dict(state=ocp.args.StandardRestore(abstract))
    if iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(iterator)
    restored, step, skipped = self._restore_newest(ocp.args.Composite(**items))
    if skipped and jax.process_index() == 0:
      self._set_aside(skipped)
    if restored is None:
      return state, 0
    return restored["state"], step

  def _set_aside(self, steps) -> None:
    """Moves the checkpoints of `steps` to <directory>.damaged/<step> (a new name if that exists)."""
    aside = self.directory.with_name(self.directory.name + ".damaged")
    aside.mkdir(exist_ok=True)
    for step in steps:
      target = aside / str(step)
      n = 1
      while target.exists():
        target, n = aside / f"{step}.{n}", n + 1
      os.replace(self.directory / str(step), target)
      print(f"checkpoint {step} moved to {target} (kept for inspection; the run continues from an older "
            "one)", file=sys.stderr)
    self._manager.reload()

  def restore_variables(self, variables):
    """({"params", "batch_stats"}, step) of the latest checkpoint's train state, without its optimiser
    state: what evaluation needs, at half the memory of restoring the whole state (SGD momentum is a
    second copy of the parameters). `variables` gives the structure, dtypes and shardings (arrays or
    `jax.ShapeDtypeStruct`s).

    Raises:
      FileNotFoundError: there is no checkpoint.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, dict(variables))
    # The state was saved whole (StandardSave); a partial PyTree restore reads only these arrays, into the
    # shardings given (without restore_args Orbax reads them from the checkpoint, and warns).
    restore = ocp.args.PyTreeRestore(item=abstract, partial_restore=True,
                                     restore_args=ocp.checkpoint_utils.construct_restore_args(abstract))
    restored, step, _ = self._restore_newest(ocp.args.Composite(state=restore))
    if restored is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    return restored["state"], step

  def close(self) -> None:
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
