"""Official StyleGAN2/3 discriminator state dicts -> (Discriminator, vars)."""

from collections.abc import Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.convert import state_dict as sd
from sg3jax.networks import stylegan2
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import short_side

_DICT_KWARGS = ("block_kwargs", "mapping_kwargs", "epilogue_kwargs")


def discriminator_from_kwargs(init_kwargs: Mapping, **overrides
                              ) -> stylegan2.Discriminator:
  """The Discriminator for official init kwargs (`D.init_kwargs`).

  `block_kwargs.freeze_layers` (official --freezed) does not change the
  network, only which weights training updates: the training loop reads it
  from its config (`D.freeze_layers`, see `stylegan2.frozen_layer_names`).
  """
  kwargs = {**dict(init_kwargs), **overrides}
  if "img_resolution" in kwargs:  # a JSON list (H, W) -> a tuple
    kwargs["img_resolution"] = parse_resolution(kwargs["img_resolution"],
                                                what="img_resolution")
  for key in _DICT_KWARGS:
    kwargs[key] = dict(kwargs.get(key) or {})
  kwargs["block_kwargs"].pop("freeze_layers", None)
  for key in _DICT_KWARGS:
    kwargs[key] = flax.core.FrozenDict(kwargs[key])
  try:
    module = stylegan2.Discriminator(**kwargs)
    abstract_variables(module)
  except TypeError as e:
    raise ValueError(f"discriminator init kwargs not understood: {e}") from None
  return module


def abstract_variables(module: stylegan2.Discriminator) -> dict:
  """The discriminator's variables as shapes and dtypes (nothing computed)."""
  img = jnp.zeros((1, *image_shape(module.img_resolution),
                   module.img_channels))
  return jax.eval_shape(lambda: module.init(jax.random.key(0), img,
                                            jnp.zeros((1, module.c_dim))))


def _computed_buffers(module: stylegan2.Discriminator
                      ) -> dict[str, np.ndarray]:
  """The official `resample_filter` buffers, which sg3jax computes."""
  f = stylegan2.resample_filter()
  names = []
  for res in module.block_resolutions:
    names.append(f"b{res}.resample_filter")
    layers = ["conv0", "conv1"] + (["skip"] if module.architecture ==
                                   "resnet" else [])
    if res == short_side(module.img_resolution):
      layers.append("fromrgb")
    names += [f"b{res}.{layer}.resample_filter" for layer in layers]
  names.append("b4.conv.resample_filter")
  return {name: f for name in names}


def discriminator_from_state_dict(state_dict: Mapping[str, np.ndarray],
                                  init_kwargs: Mapping, **overrides
                                  ) -> tuple[stylegan2.Discriminator, dict]:
  """(module, variables) from an official `D.state_dict()` and init kwargs.

  `module.apply(variables, img_nhwc, c)` returns the official logits `[N, 1]`.
  """
  module = discriminator_from_kwargs(init_kwargs, **overrides)
  variables = sd.variables_from_state_dict(
      abstract_variables(module), state_dict, _computed_buffers(module), what="discriminator")
  return module, jax.tree.map(jnp.asarray, variables)
