"""Training checkpoints: Orbax CheckpointManager over a run directory.

`<workdir>/checkpoints/<batch_idx>/` holds four items:
  networks   G, D and G_ema variables (replicated arrays);
  optimizer  the G and D Adam states and the path-length mean;
  meta       JSON: counters (batch_idx, cur_nimg, cur_tick), the number of
             stats.jsonl lines written, the networks' class names and
             official init kwargs, and the full config;
  data       each process's data iterator position (grain);
beside them, SHA256SUMS: the SHA-256 of each of their files (`checksums`).
Saves are asynchronous; Orbax writes each step to a temporary directory
and renames it when complete, after process 0 has written the checksums
(hashing runs in Orbax's background thread, not in the training loop), so
a crash mid-save leaves the previous checkpoint as the latest one.

A checkpoint that cannot be read (a file whose checksum differs, truncated
or missing, garbled metadata) is skipped with a warning for the newest
readable one; a resumed run moves the skipped ones to
`<workdir>/unreadable_checkpoints/` (its new checkpoints take their step
numbers) and deletes nothing.
"""

import pathlib
import shutil
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts
from jax.experimental import multihost_utils

from sg3jax.convert import networks as convert_networks
from sg3jax.training.checkpoints import checksums

T = TypeVar("T")
UNREADABLE_DIR = "unreadable_checkpoints"


def _abstract(tree, sharding: jax.sharding.Sharding | None):
  """ShapeDtypeStructs of `tree` (placed with `sharding` when given)."""
  def leaf(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
  return jax.tree.map(leaf, tree)


class _CheckpointManager(ocp.CheckpointManager):
  """Orbax's manager, leaving the preemption sync point to the loop.

  (Orbax asks it in `save`, and again from its finalize thread with the
  step then saved; such a late call would set back the step that JAX's
  preemption protocol reads, which could then agree on a step already
  passed.)
  """

  def reached_preemption(self, step: int) -> bool:
    del step
    return False


class RunCheckpoints:
  """Save/restore of a training run (see the module docstring)."""

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3):
    self.directory = pathlib.Path(workdir).absolute() / "checkpoints"
    self._saving_step = None
    self._manager = _CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=True,
            create=True, cleanup_tmp_directories=True,
            # Never skip a requested save because the previous one is
            # still being written: wait for it instead.
            enable_should_save_is_saving_in_progress_check=False,
            # A step is written to `<step>` + TMP_DIR_SUFFIX, then renamed;
            # the callback runs on process 0 between the two.
            temporary_path_class=ocp.path.atomicity.AtomicRenameTemporaryPath,
            async_options=ocp.AsyncOptions(
                post_finalization_callback=self._write_checksums)))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def _step_path(self, step: int) -> pathlib.Path:
    """The directory of checkpoint `step` (existing or to be written)."""
    return self.directory / ocp.path.step.standard_name_format().build_name(
        step)

  def _write_checksums(self) -> None:
    """Writes SHA256SUMS into the temporary directory of the step being
    saved, once Orbax has written all of its files, before the rename."""
    temporary = ocp.path.atomicity.AtomicRenameTemporaryPath.from_final(
        self._step_path(self._saving_step))
    checksums.write(temporary.get())

  def save(self, step: int, *, networks: Mapping, optimizer: Mapping,
           meta: Mapping[str, Any], data_iterator) -> None:
    """Starts an asynchronous save of checkpoint `step`."""
    # (Orbax's save would wait for the previous one too; waiting first
    # leaves the step that `_write_checksums` reads to the previous save
    # until it is committed.)
    self._manager.wait_until_finished()
    self._saving_step = step
    saved = self._manager.save(step, args=ocp.args.Composite(
        networks=ocp.args.StandardSave(dict(networks)),
        optimizer=ocp.args.StandardSave(dict(optimizer)),
        meta=ocp.args.JsonSave(convert_networks.to_json_value(dict(meta))),
        data=grain.checkpoint.CheckpointSave(data_iterator)))
    if not saved:
      raise RuntimeError(f"{self.directory}: Orbax declined to save step "
                         f"{step} (latest: {self.latest_step()})")

  def read_meta(self, step: int) -> dict:
    return self._read(step, meta=ocp.args.JsonRestore()).meta

  def restore(self, step: int, *, networks: Mapping, optimizer: Mapping,
              data_iterator, sharding: jax.sharding.Sharding
              ) -> tuple[dict, dict, dict]:
    """(networks, optimizer, meta) of `step`; the iterator is rewound.

    `networks` and `optimizer` are trees of the expected structure (arrays
    or ShapeDtypeStructs); the restored arrays get `sharding`.
    """
    restored = self._read(
        step,
        networks=ocp.args.StandardRestore(_abstract(networks, sharding)),
        optimizer=ocp.args.StandardRestore(_abstract(optimizer, sharding)),
        meta=ocp.args.JsonRestore(),
        data=grain.checkpoint.CheckpointRestore(data_iterator))
    return restored.networks, restored.optimizer, restored.meta

  def restore_latest(self, *, networks: Mapping, optimizer: Mapping,
                     data_iterator, sharding: jax.sharding.Sharding
                     ) -> tuple[int, tuple[dict, dict, dict]] | None:
    """(step, `restore(step, ...)`) of the newest readable checkpoint, or
    None in a run without checkpoints.

    Newer unreadable ones are skipped with a warning and moved to
    `<workdir>/unreadable_checkpoints/`. ValueError, listing each step's
    problem, when no checkpoint is readable (nothing is moved then).
    """
    found = self.newest_readable(lambda step: self.restore(
        step, networks=networks, optimizer=optimizer,
        data_iterator=data_iterator, sharding=sharding))
    if found is None:
      return None
    step, restored, skipped = found
    self._set_aside(skipped)
    return step, restored

  def newest_readable(self, read: Callable[[int], T]
                      ) -> tuple[int, T, list[int]] | None:
    """(step, read(step), newer unreadable steps) for the newest step that
    `read` reads without error on every process; None without checkpoints.

    Each unreadable step gets a warning naming it and its problem.
    """
    problems = {}
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        result, problem = read(step), None
      except Exception as e:  # pylint: disable=broad-exception-caught
        result, problem = None, _describe(e)
      failed = _processes_failing(problem is None)
      if not failed:
        return step, result, sorted(problems)
      problem = problem or f"unreadable on process(es) {failed}"
      warnings.warn(f"{self.directory}: skipping checkpoint {step}, "
                    f"unreadable: {problem}", RuntimeWarning, stacklevel=2)
      problems[step] = problem
    if problems:
      raise ValueError(f"{self.directory}: no readable checkpoint: " +
                       "; ".join(f"step {step}: {problem}"
                                 for step, problem in problems.items()))
    return None

  def restore_networks(self, step: int, abstract: Mapping) -> dict:
    """Only the networks of `step`, on this process's first device.

    (For generation and metrics, whatever the topology that saved them.)
    """
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return self._read(step, networks=ocp.args.StandardRestore(
        _abstract(dict(abstract), local))).networks

  def _read(self, step: int, **items: ocp.args.CheckpointArgs):
    """Restores `items` of `step` with no barrier between processes (a
    process that fails to read must not leave the others waiting)."""
    path = ocp.path.step.standard_name_format().find_step(
        self.directory, step).path
    checksums.verify(path, items)
    for name in items:
      _check_array_store(pathlib.Path(path) / name)
    handler = ocp.CompositeCheckpointHandler()
    try:
      return handler.restore(path, ocp.args.Composite(**items))
    finally:
      handler.close()

  def _set_aside(self, steps: list[int]) -> None:
    """Moves checkpoints `steps` to <workdir>/unreadable_checkpoints/."""
    if not steps:
      return
    if jax.process_index() == 0:
      aside = self.directory.parent / UNREADABLE_DIR
      aside.mkdir(exist_ok=True)
      for step in steps:
        source = ocp.path.step.standard_name_format().find_step(
            self.directory, step).path
        target, copy = aside / str(step), 1
        while target.exists():
          target, copy = aside / f"{step}.{copy}", copy + 1
        shutil.move(source, target)
        warnings.warn(f"moved unreadable checkpoint {step} to {target}",
                      RuntimeWarning, stacklevel=2)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"sg3jax set aside {steps}")
    self._manager.reload()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def _check_array_store(item: pathlib.Path) -> None:
  """Reads every value of an item's OCDBT array store (Orbax's format for
  arrays), one at a time; raises on a missing or damaged index or file.

  (Orbax reads all arrays at once and abandons the others after a first
  failure; each abandoned read then prints "Event loop is closed" from
  TensorStore's threads. Reading them in turn first fails cleanly.)
  """
  if not any(item.glob("ocdbt.process_*")):
    return  # not an OCDBT array store
  store = ts.KvStore.open({"driver": "ocdbt",
                           "base": f"file://{item.absolute()}/"}).result()
  keys = store.list().result()
  if not keys:
    raise FileNotFoundError(f"{item}: the array store lists no arrays "
                            "(manifest.ocdbt missing?)")
  for key in keys:
    try:
      store.read(key).result()
    except ValueError as e:
      raise ValueError(f"{item}: {key.decode()}: {e}") from None


def _describe(error: BaseException) -> str:
  """One line for a read error: its root cause (Orbax wraps TensorStore's
  errors, which name the file), without TensorStore's spec dump."""
  while error.__cause__ or (error.__context__ and
                            not error.__suppress_context__):
    error = error.__cause__ or error.__context__
  text = str(error).strip().split("\n")[0].split(" [tensorstore_spec")[0]
  return f"{type(error).__name__}: {text[:400]}"


def _processes_failing(ok: bool) -> list[int]:
  """The indices of the processes whose `ok` is False."""
  if jax.process_count() == 1:
    return [] if ok else [0]
  oks = multihost_utils.process_allgather(np.int32(ok))
  return [i for i, process_ok in enumerate(oks) if not process_ok]


def is_run_directory(path: str | pathlib.Path) -> bool:
  return (pathlib.Path(path) / "checkpoints").is_dir()


def load_run_networks(workdir: str | pathlib.Path, step: int | None = None
                      ) -> tuple[int, dict[str, tuple[Any, dict]]]:
  """(step, {"G", "D", "G_ema": (module, variables)}) of a run's checkpoint.

  `step` defaults to the newest readable checkpoint (newer unreadable ones
  are skipped with a warning, and left in place).
  """
  ckpts = RunCheckpoints(workdir)

  def read(step):
    meta = ckpts.read_meta(step)
    modules, abstract = convert_networks.build_modules(meta["networks"])
    variables = ckpts.restore_networks(step, abstract)
    return {name: (modules[name], variables[name]) for name in modules}

  try:
    if step is not None:
      return step, read(step)
    found = ckpts.newest_readable(read)
    if found is None:
      raise ValueError(f"{workdir}: no checkpoint in {ckpts.directory}")
    return found[:2]
  finally:
    ckpts.close()
