"""Official network pickles -> sg3jax modules, variables and checkpoints."""

import os
from typing import Any, BinaryIO

from sg3jax.convert.discriminator import discriminator_from_state_dict
from sg3jax.convert.generator import generator_from_state_dict
from sg3jax.convert.pickle_reader import PersistentRecord
from sg3jax.convert.pickle_reader import read_network_pickle

_NETWORKS = ("G", "D", "G_ema")


def _network(name: str, record: PersistentRecord, source: str):
  builders = {"Generator": generator_from_state_dict,
              "Discriminator": discriminator_from_state_dict}
  if record.class_name not in builders:
    raise ValueError(f"{source}: {name} is a {record.class_name}; sg3jax "
                     f"converts {sorted(builders)}")
  try:
    module, variables = builders[record.class_name](record.state_dict,
                                                    record.init_kwargs)
  except ValueError as e:
    raise ValueError(f"{source}: {name}: {e}") from None
  return module, variables


def augment_pipe_settings(record: PersistentRecord | None) -> dict | None:
  """ADA state of the pickle: `{'p': float, 'init_kwargs': {...}}`."""
  if record is None:
    return None
  p = record.state_dict.get("p")
  return {"p": None if p is None else float(p.reshape(-1)[0]),
          "init_kwargs": dict(record.init_kwargs)}


def load_official_pickle(path_or_fileobj: str | os.PathLike | BinaryIO
                         ) -> dict[str, Any]:
  """Reads an official `network-snapshot-*.pkl` / NGC `stylegan3-*.pkl`.

  Nothing in the file is executed and NVIDIA's code is not needed (see
  `pickle_reader`).

  Returns:
    `{'G', 'D', 'G_ema'}` -> `(module, variables)` (None where the file
    has None), `'augment_pipe'` -> `{'p', 'init_kwargs'}` or None,
    `'training_set_kwargs'` -> dict or None, and `'init_kwargs'` ->
    {name: (sg3jax class name, official init kwargs)} of the networks.
  """
  source = getattr(path_or_fileobj, "name", str(path_or_fileobj))
  data = read_network_pickle(path_or_fileobj)
  result = {name: None if data[name] is None else _network(
      name, data[name], source) for name in _NETWORKS}
  result["augment_pipe"] = augment_pipe_settings(data["augment_pipe"])
  result["training_set_kwargs"] = data["training_set_kwargs"]
  result["init_kwargs"] = {
      name: (type(result[name][0]).__name__, dict(data[name].init_kwargs))
      for name in _NETWORKS if data[name] is not None}
  return result
