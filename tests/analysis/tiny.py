"""A tiny random StyleGAN3 generator (16x16, 8 channels) for the analyses.

Built once per process (jitted init) and saved once as an sg3jax
checkpoint, so that all analysis tests share its compilations.
"""

import atexit
import functools
import pathlib
import tempfile

import jax
import jax.numpy as jnp

from sg3jax.convert import generator_from_kwargs
from sg3jax.training import checkpoints

INIT_KWARGS = dict(
    z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
    mapping_kwargs={"num_layers": 1}, channel_base=64, channel_max=8,
    num_layers=4, num_critical=1, margin_size=2)
BATCH = 8  # every test renders in batches of 8: one compilation


@functools.cache
def generator():
  """(module, variables) of the tiny generator, seed 0."""
  module = generator_from_kwargs(INIT_KWARGS)
  variables = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 8)))
  return module, variables


@functools.cache
def checkpoint_dir() -> pathlib.Path:
  """The tiny generator saved as G_ema in a temporary checkpoint."""
  tmp = tempfile.TemporaryDirectory()
  atexit.register(tmp.cleanup)
  _, variables = generator()
  return checkpoints.save_networks(
      pathlib.Path(tmp.name) / "ckpt",
      {"G_ema": checkpoints.Network("Generator", INIT_KWARGS, variables)})
