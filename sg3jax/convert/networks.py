"""Official network classes and init kwargs -> sg3jax modules, and the
kwargs as JSON (what the network and training checkpoints store)."""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import numpy as np

from sg3jax.convert import discriminator
from sg3jax.convert import generator


def to_json_value(value: Any) -> Any:
  """Init kwargs as plain JSON (NumPy scalars/arrays -> Python values)."""
  if isinstance(value, Mapping):
    return {str(k): to_json_value(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json_value(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return value


def build_module(class_name: str, init_kwargs: Mapping
                 ) -> tuple[nn.Module, dict]:
  """(module, its abstract variables) for an official class and kwargs."""
  if class_name in generator.GENERATOR_CLASSES:
    module = generator.generator_from_kwargs(init_kwargs,
                                             class_name=class_name)
    return module, generator.abstract_variables(module)
  if class_name == "Discriminator":
    module = discriminator.discriminator_from_kwargs(init_kwargs)
    return module, discriminator.abstract_variables(module)
  expected = sorted(generator.GENERATOR_CLASSES) + ["Discriminator"]
  raise ValueError(f"class_name: expected one of {expected}, got "
                   f"{class_name!r}")


def build_modules(meta: Mapping[str, Mapping]
                  ) -> tuple[dict[str, nn.Module], dict[str, dict]]:
  """({name: module}, {name: abstract variables}) of saved networks'
  metadata {name: {"class_name", "init_kwargs"}}."""
  modules, abstract = {}, {}
  for name, entry in meta.items():
    modules[name], abstract[name] = build_module(entry["class_name"],
                                                 entry["init_kwargs"])
  return modules, abstract
