"""Training checkpoints: Orbax CheckpointManager over a run directory.

`<workdir>/checkpoints/<batch_idx>/` holds four items:
  networks   G, D and G_ema variables (replicated arrays);
  optimizer  the G and D Adam states and the path-length mean;
  meta       JSON: counters (batch_idx, cur_nimg, cur_tick), the number of
             stats.jsonl lines written, the networks' class names and
             official init kwargs, and the full config;
  data       each process's data iterator position (grain).
Saves are asynchronous; Orbax writes each step to a temporary directory
and renames it when complete, so a crash mid-save leaves the previous
checkpoint as the latest one.
"""

import pathlib
from collections.abc import Mapping
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from sg3jax.convert import networks as convert_networks


def _abstract(tree, sharding: jax.sharding.Sharding | None):
  """ShapeDtypeStructs of `tree` (placed with `sharding` when given)."""
  def leaf(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
  return jax.tree.map(leaf, tree)


class RunCheckpoints:
  """Save/restore of a training run (see the module docstring)."""

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3):
    self.directory = pathlib.Path(workdir).absolute() / "checkpoints"
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=True,
            create=True, cleanup_tmp_directories=True,
            # Never skip a requested save because the previous one is
            # still being written: wait for it instead.
            enable_should_save_is_saving_in_progress_check=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, *, networks: Mapping, optimizer: Mapping,
           meta: Mapping[str, Any], data_iterator) -> None:
    """Starts an asynchronous save of checkpoint `step`."""
    saved = self._manager.save(step, args=ocp.args.Composite(
        networks=ocp.args.StandardSave(dict(networks)),
        optimizer=ocp.args.StandardSave(dict(optimizer)),
        meta=ocp.args.JsonSave(convert_networks.to_json_value(dict(meta))),
        data=grain.checkpoint.CheckpointSave(data_iterator)))
    if not saved:
      raise RuntimeError(f"{self.directory}: Orbax declined to save step "
                         f"{step} (latest: {self.latest_step()})")

  def read_meta(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore())).meta

  def restore(self, step: int, *, networks: Mapping, optimizer: Mapping,
              data_iterator, sharding: jax.sharding.Sharding
              ) -> tuple[dict, dict, dict]:
    """(networks, optimizer, meta) of `step`; the iterator is rewound.

    `networks` and `optimizer` are trees of the expected structure (arrays
    or ShapeDtypeStructs); the restored arrays get `sharding`.
    """
    restored = self._manager.restore(step, args=ocp.args.Composite(
        networks=ocp.args.StandardRestore(_abstract(networks, sharding)),
        optimizer=ocp.args.StandardRestore(_abstract(optimizer, sharding)),
        meta=ocp.args.JsonRestore(),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored.networks, restored.optimizer, restored.meta

  def restore_networks(self, step: int, abstract: Mapping) -> dict:
    """Only the networks of `step`, on this process's first device.

    (For generation and metrics, whatever the topology that saved them.)
    """
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return self._manager.restore(step, args=ocp.args.Composite(
        networks=ocp.args.StandardRestore(_abstract(dict(abstract), local))
    )).networks

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def is_run_directory(path: str | pathlib.Path) -> bool:
  return (pathlib.Path(path) / "checkpoints").is_dir()


def load_run_networks(workdir: str | pathlib.Path, step: int | None = None
                      ) -> dict[str, tuple[Any, dict]]:
  """{"G", "D", "G_ema": (module, variables)} of a run's checkpoint.

  `step` defaults to the latest checkpoint.
  """
  ckpts = RunCheckpoints(workdir)
  try:
    step = ckpts.latest_step() if step is None else step
    if step is None:
      raise ValueError(f"{workdir}: no checkpoint in {ckpts.directory}")
    meta = ckpts.read_meta(step)
    modules, abstract = {}, {}
    for name, entry in meta["networks"].items():
      modules[name], abstract[name] = convert_networks.build_module(
          entry["class_name"], entry["init_kwargs"])
    variables = ckpts.restore_networks(step, abstract)
  finally:
    ckpts.close()
  return {name: (modules[name], variables[name]) for name in modules}
