"""Official StyleGAN3 / StyleGAN2 generator state dicts -> (module, vars)."""

from collections.abc import Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.convert import state_dict as sd
from sg3jax.networks import Generator
from sg3jax.networks import StyleGAN2Generator
from sg3jax.networks import stylegan2
from sg3jax.networks import synthesis_network
from sg3jax.networks import SynthesisLayer
from sg3jax.resolution import parse_resolution

_TOP_LEVEL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
# sg3jax class names (as network checkpoints record them) -> modules.
GENERATOR_CLASSES = {"Generator": Generator,
                     "StyleGAN2Generator": StyleGAN2Generator}


def official_generator_class(state_dict: Mapping[str, np.ndarray]) -> str:
  """"StyleGAN2Generator" for an official `networks_stylegan2.Generator`
  state dict (it has a learned 4x4 constant), else "Generator" (StyleGAN3).

  Official pickles name both classes `Generator`; the module source that
  tells them apart is never read, the parameters are."""
  return ("StyleGAN2Generator" if "synthesis.b4.const" in state_dict
          else "Generator")


def generator_from_kwargs(init_kwargs: Mapping, *,
                          class_name: str = "Generator",
                          **overrides) -> Generator:
  """The generator for official init kwargs (`G.init_kwargs`).

  Everything but z/c/w dims, resolution, channels and `mapping_kwargs` is a
  synthesis kwarg, as in the official constructor. `class_name` is a key
  of `GENERATOR_CLASSES`. `overrides` set further synthesis fields (e.g.
  `filtered_lrelu_impl="xla"`).
  """
  if class_name not in GENERATOR_CLASSES:
    raise ValueError(f"generator class: expected one of "
                     f"{sorted(GENERATOR_CLASSES)}, got {class_name!r}")
  kwargs = dict(init_kwargs)
  missing = [k for k in _TOP_LEVEL if k not in kwargs]
  if missing:
    raise ValueError(f"generator init kwargs: missing {missing}")
  top = {k: int(kwargs.pop(k)) for k in _TOP_LEVEL if k != "img_resolution"}
  # An int (square, official) or a JSON list (H, W) -> a tuple.
  top["img_resolution"] = parse_resolution(kwargs.pop("img_resolution"),
                                           what="img_resolution")
  mapping_kwargs = dict(kwargs.pop("mapping_kwargs", {}) or {})
  synthesis_kwargs = {**kwargs, **overrides}
  generator = GENERATOR_CLASSES[class_name](**top,
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
  """Official resampling-filter buffers, as sg3jax designs them."""
  if isinstance(generator, StyleGAN2Generator):
    return _stylegan2_buffers(generator)
  buffers = {}
  for name, kwargs in synthesis_network(generator).layer_kwargs().items():
    up, down = SynthesisLayer(**kwargs).lowpass_filters()
    buffers[f"synthesis.{name}.up_filter"] = up
    buffers[f"synthesis.{name}.down_filter"] = down
  return buffers


def _stylegan2_buffers(generator: StyleGAN2Generator
                       ) -> dict[str, np.ndarray]:
  """The official `resample_filter` buffers of a StyleGAN2 synthesis."""
  f = stylegan2.resample_filter()
  buffers = {}
  for name, kwargs in synthesis_network(generator).block_kwargs().items():
    layers = ["", "conv1."] + (["conv0."] if kwargs["in_channels"] else [])
    if kwargs["in_channels"] and kwargs["architecture"] == "resnet":
      layers.append("skip.")
    buffers.update({f"synthesis.{name}.{layer}resample_filter": f
                    for layer in layers})
  return buffers


def generator_from_state_dict(state_dict: Mapping[str, np.ndarray],
                              init_kwargs: Mapping, **overrides
                              ) -> tuple[Generator, dict]:
  """(module, variables) from an official `G.state_dict()` and init kwargs.

  StyleGAN3 and StyleGAN2 generators both convert (see
  `official_generator_class`). `module.apply(variables, z, c,
  truncation_psi=..., truncation_cutoff=...)` then renders NHWC images as
  the official generator does.
  """
  generator = generator_from_kwargs(
      init_kwargs, class_name=official_generator_class(state_dict),
      **overrides)
  variables = sd.variables_from_state_dict(
      abstract_variables(generator), state_dict, _computed_buffers(generator), what="generator")
  return generator, jax.tree.map(jnp.asarray, variables)
