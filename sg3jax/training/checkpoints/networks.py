"""Orbax checkpoints of networks: variables plus the init kwargs as JSON.

A network checkpoint directory holds, for each network name (e.g. "G",
"D", "G_ema"), its Flax variables and, in one JSON item, each network's
class and official init kwargs, so that the modules can be rebuilt without
any other file, and SHA256SUMS, the SHA-256 of each of their files
(`checksums`), verified before anything is read. Saving never touches an
existing checkpoint until the new one is complete (checksums included): it
is written beside the target and swapped in by rename.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import uuid
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from sg3jax import convert
from sg3jax.networks import Generator
from sg3jax.training.checkpoints import checksums
from sg3jax.training.checkpoints import run as run_checkpoints

ITEMS = ("variables", "networks", "extras")  # the Orbax items saved


@dataclasses.dataclass(frozen=True)
class Network:
  """A network as sg3jax stores it."""
  class_name: str  # "Generator", "StyleGAN2Generator" or "Discriminator"
  init_kwargs: Mapping[str, Any]  # official constructor kwargs
  variables: Mapping[str, Any]  # Flax variables


def save_networks(directory: str | pathlib.Path,
                  networks: Mapping[str, Network], *,
                  extras: Mapping[str, Any] | None = None,
                  overwrite: bool = False) -> pathlib.Path:
  """Writes `networks` (and JSON `extras`) to `directory`; returns it.

  With `overwrite`, an existing checkpoint is replaced only after the new
  one is fully written; a crash at any point leaves the old one intact.
  """
  directory = pathlib.Path(directory).absolute()
  if directory.exists() and not overwrite:
    raise ValueError(f"{directory}: already exists (pass overwrite=True to "
                     "replace it)")
  staging = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}")
  meta = {name: {"class_name": net.class_name,
                 "init_kwargs": convert.to_json_value(dict(net.init_kwargs))}
          for name, net in networks.items()}
  variables = {name: jax.tree.map(np.asarray, dict(net.variables))
               for name, net in networks.items()}
  try:
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
      checkpointer.save(staging, ocp.args.Composite(
          variables=ocp.args.StandardSave(variables),
          networks=ocp.args.JsonSave(meta),
          extras=ocp.args.JsonSave(convert.to_json_value(dict(extras or {})))))
    checksums.write(staging)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if directory.exists():
    retired = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex}")
    directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired)
  else:
    staging.rename(directory)
  return directory


def _json_item(directory: pathlib.Path, item: str) -> dict | None:
  """The JSON of a checkpoint item (unverified), None if absent."""
  path = directory / item / "metadata"
  return json.loads(path.read_text()) if path.exists() else None


def _verified(directory: str | pathlib.Path, items: tuple[str, ...]
              ) -> pathlib.Path:
  """`directory` as an absolute path, once it is known to be a network
  checkpoint whose files of `items` match their checksums."""
  directory = pathlib.Path(directory).absolute()
  if not (directory / "networks" / "metadata").exists():
    raise ValueError(f"{directory}: not an sg3jax network checkpoint (no "
                     "networks/metadata)")
  checksums.verify(directory, items)
  return directory


def read_network_meta(directory: str | pathlib.Path) -> dict[str, dict]:
  """{name: {"class_name", "init_kwargs"}} of a network checkpoint."""
  return _json_item(_verified(directory, ("networks",)), "networks")


def read_extras(directory: str | pathlib.Path) -> dict:
  """The JSON `extras` saved with the networks (e.g. ADA p)."""
  return _json_item(_verified(directory, ("extras",)), "extras") or {}


def load_networks(directory: str | pathlib.Path, *, step: int | None = None
                  ) -> dict[str, tuple[nn.Module, dict]]:
  """{name: (module, variables)} from `save_networks` output.

  A training run directory (`sg3jax train --workdir`) also works: the G,
  D and G_ema of its checkpoint `step` (default: the latest).
  """
  directory = pathlib.Path(directory).absolute()
  if run_checkpoints.is_run_directory(directory):
    return run_checkpoints.load_run_networks(directory, step)[1]
  if step is not None:
    raise ValueError(f"step: only a training run directory has steps; "
                     f"{directory} is not one")
  directory = _verified(directory, ITEMS)
  meta = _json_item(directory, "networks")
  modules, abstract = convert.build_modules(meta)
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
    restored = checkpointer.restore(directory, ocp.args.Composite(
        variables=ocp.args.StandardRestore(abstract)))
  return {name: (modules[name], restored.variables[name]) for name in meta}


def load_any_networks(path: str | pathlib.Path, *, step: int | None = None
                      ) -> dict[str, tuple[nn.Module, dict]]:
  """{name: (module, variables)} of the G, D and G_ema in `path`: an
  official `.pkl` (read safely, never executed; networks it holds as None
  are left out), an sg3jax network checkpoint or a training run directory
  (checkpoint `step`, default the latest).
  """
  path = pathlib.Path(path)
  if path.suffix != ".pkl":
    return load_networks(path, step=step)
  if step is not None:
    raise ValueError(f"step: only a training run directory has steps; "
                     f"{path} is a pickle")
  loaded = convert.load_official_pickle(path)
  return {name: loaded[name] for name in ("G", "D", "G_ema")
          if loaded[name] is not None}


def load_generator(path: str | pathlib.Path, *, step: int | None = None
                   ) -> tuple[nn.Module, dict]:
  """(module, variables) of G_ema, else G, for every `--network` flag
  (`path` and `step` as `load_any_networks` takes them)."""
  return generator_of(load_any_networks(path, step=step), path)


def generator_of(networks: Mapping[str, tuple[nn.Module, dict]],
                 path: str | pathlib.Path) -> tuple[nn.Module, dict]:
  """(module, variables) of G_ema, else G, among `networks` (as
  `load_any_networks` returns them) read from `path`."""
  name = "G_ema" if "G_ema" in networks else "G"
  if name not in networks:
    raise ValueError(f"network: expected a G or G_ema in {path}, got "
                     f"{sorted(networks)}")
  module, variables = networks[name]
  if not isinstance(module, Generator):
    raise ValueError(f"network: expected {name} to be a Generator, got "
                     f"{type(module).__name__}")
  return module, variables


def convert_official_pickle(pkl: str | os.PathLike, outdir: str | os.PathLike,
                            *, overwrite: bool = False) -> pathlib.Path:
  """Writes an official pickle as an sg3jax network checkpoint.

  `outdir` receives the Orbax checkpoint of G, D and G_ema (variables plus
  each network's class and init kwargs as JSON) and `official.json` with
  the ADA state and training-set kwargs.
  """
  loaded = convert.load_official_pickle(pkl)
  networks = {
      name: Network(loaded["init_kwargs"][name][0],
                    loaded["init_kwargs"][name][1], loaded[name][1])
      for name in ("G", "D", "G_ema") if loaded[name] is not None}
  extras = {"source": str(pkl), "augment_pipe": loaded["augment_pipe"],
            "training_set_kwargs": loaded["training_set_kwargs"]}
  return save_networks(outdir, networks, extras=extras, overwrite=overwrite)
