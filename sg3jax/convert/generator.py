"""Official StyleGAN3 generator state dicts -> (Generator, variables)."""

from collections.abc import Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.convert import state_dict as sd
from sg3jax.networks import Generator
from sg3jax.networks import SynthesisLayer
from sg3jax.networks import SynthesisNetwork

_TOP_LEVEL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


def generator_from_kwargs(init_kwargs: Mapping, **overrides) -> Generator:
  """The Generator for official init kwargs (`G.init_kwargs`).

  Everything but z/c/w dims, resolution, channels and `mapping_kwargs` is a
  synthesis kwarg, as in the official constructor. `overrides` set further
  synthesis fields (e.g. `filtered_lrelu_impl="xla"`).
  """
  kwargs = dict(init_kwargs)
  missing = [k for k in _TOP_LEVEL if k not in kwargs]
  if missing:
    raise ValueError(f"generator init kwargs: missing {missing}")
  top = {k: int(kwargs.pop(k)) for k in _TOP_LEVEL}
  mapping_kwargs = dict(kwargs.pop("mapping_kwargs", {}) or {})
  synthesis_kwargs = {**kwargs, **overrides}
  generator = Generator(**top,
                        mapping_kwargs=flax.core.FrozenDict(mapping_kwargs),
                        synthesis_kwargs=flax.core.FrozenDict(
                            synthesis_kwargs))
  try:
    abstract_variables(generator)
  except TypeError as e:
    raise ValueError(f"generator init kwargs not understood: {e}") from None
  return generator


def abstract_variables(generator: Generator) -> dict:
  """The generator's variables as shapes and dtypes (nothing computed)."""
  return jax.eval_shape(lambda: generator.init(
      jax.random.key(0), jnp.zeros((1, generator.z_dim)),
      jnp.zeros((1, generator.c_dim))))


def _computed_buffers(generator: Generator) -> dict[str, np.ndarray | None]:
  """Official `up_filter`/`down_filter` buffers, as sg3jax designs them."""
  synthesis = SynthesisNetwork(
      w_dim=generator.w_dim, img_resolution=generator.img_resolution,
      img_channels=generator.img_channels, **generator.synthesis_kwargs)
  buffers = {}
  for name, kwargs in synthesis.layer_kwargs().items():
    up, down = SynthesisLayer(**kwargs).lowpass_filters()
    buffers[f"synthesis.{name}.up_filter"] = up
    buffers[f"synthesis.{name}.down_filter"] = down
  return buffers


def generator_from_state_dict(state_dict: Mapping[str, np.ndarray],
                              init_kwargs: Mapping, **overrides
                              ) -> tuple[Generator, dict]:
  """(module, variables) from an official `G.state_dict()` and init kwargs.

  `module.apply(variables, z, c, truncation_psi=..., truncation_cutoff=...)`
  then renders NHWC images as the official generator does.
  """
  generator = generator_from_kwargs(init_kwargs, **overrides)
  variables = sd.variables_from_state_dict(
      abstract_variables(generator), state_dict, _computed_buffers(generator), what="generator")
  return generator, jax.tree.map(jnp.asarray, variables)
