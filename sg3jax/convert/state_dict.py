"""Official state dicts <-> Flax variables, by name.

sg3jax modules carry the official module names, so an official tensor
`a.b.c` is the Flax variable at path (a, b, c) of some collection; only
the layouts of tensors named `weight` differ: conv weights OIHW <-> HWIO and
dense weights [out, in] <-> [in, out]. Buffers that sg3jax computes instead of storing (resampling
filters) are checked against what sg3jax computes.
"""

from collections.abc import Mapping

import flax
import numpy as np


def _is_weight(name: str) -> bool:
  return name.rsplit(".", 1)[-1] == "weight"


def to_flax_layout(name: str, array: np.ndarray) -> np.ndarray:
  """Weights: OIHW -> HWIO, [out, in] -> [in, out]; anything else as is."""
  if _is_weight(name) and array.ndim == 4:
    return array.transpose(2, 3, 1, 0)
  if _is_weight(name) and array.ndim == 2:
    return array.T
  return array


def to_official_layout(name: str, array: np.ndarray) -> np.ndarray:
  """The inverse of `to_flax_layout`."""
  if _is_weight(name) and array.ndim == 4:
    return array.transpose(3, 2, 0, 1)
  if _is_weight(name) and array.ndim == 2:
    return array.T
  return array


def _flatten(variables: Mapping) -> dict[str, tuple[str, tuple[str, ...]]]:
  """{official name: (collection, path)} for every leaf of `variables`."""
  names = {}
  for collection, tree in variables.items():
    for path in flax.traverse_util.flatten_dict(dict(tree)):
      names[".".join(path)] = (collection, path)
  return names


def variables_from_state_dict(
    abstract_variables: Mapping,
    state_dict: Mapping[str, np.ndarray],
    computed_buffers: Mapping[str, np.ndarray | None],
    *,
    what: str,
) -> dict:
  """Builds Flax variables from an official state dict.

  Args:
    abstract_variables: the module's variables as shapes (`jax.eval_shape`
      of its `init`), defining every expected name, shape and dtype.
    state_dict: official name -> array in the official layout.
    computed_buffers: official buffer names that sg3jax computes; a None
      value means official stores None there (the name must be absent).
    what: e.g. "generator", used in error messages.

  Returns:
    Variables with the structure of `abstract_variables`.

  Raises:
    ValueError: listing every unknown, missing or mis-shaped key, and every
      computed buffer that differs from the state dict.
  """
  expected = _flatten(abstract_variables)
  problems, flat = [], {}
  for name, array in state_dict.items():
    array = np.asarray(array)
    if name in computed_buffers:
      ours = computed_buffers[name]
      if ours is None or ours.shape != array.shape or not np.allclose(
          ours, array, rtol=1e-6, atol=1e-7):
        problems.append(f"buffer {name}: the state dict's value differs from "
                        "the one sg3jax designs for this configuration")
      continue
    if name not in expected:
      problems.append(f"unknown key {name} (shape {array.shape})")
      continue
    collection, path = expected[name]
    target = _lookup(abstract_variables[collection], path)
    value = to_flax_layout(name, array)
    if value.shape != tuple(target.shape):
      official_shape = to_official_layout(name, np.empty(target.shape)).shape
      problems.append(f"shape mismatch for {name}: expected {official_shape}, "
                      f"got {array.shape}")
      continue
    flat[(collection,) + path] = value.astype(target.dtype)
  missing = sorted(set(expected) - set(state_dict))
  missing += sorted(name for name, ours in computed_buffers.items()
                    if ours is not None and name not in state_dict)
  problems += [f"missing key {name}" for name in missing]
  if problems:
    raise ValueError(f"{what} state dict does not match the configuration:\n  "
                     + "\n  ".join(problems))
  return flax.traverse_util.unflatten_dict(flat)


def _lookup(tree: Mapping, path: tuple[str, ...]):
  for key in path:
    tree = tree[key]
  return tree


def state_dict_from_variables(variables: Mapping) -> dict[str, np.ndarray]:
  """Official names and layouts of every variable (buffers sg3jax computes
  are not included)."""
  return {
      name: to_official_layout(name, np.asarray(_lookup(variables[col], path)))
      for name, (col, path) in _flatten(variables).items()
  }
