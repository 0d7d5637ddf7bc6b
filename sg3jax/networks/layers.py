"""Layers shared by the generator and the discriminator."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import ops


class FullyConnected(nn.Module):
  """The official FullyConnectedLayer: equalized learning rate.

  Parameters are stored scaled by 1 / lr_multiplier and multiplied back at
  run time (weight by lr_multiplier / sqrt(in_features), bias by
  lr_multiplier), so that Adam sees the official effective learning rates.
  `weight` is `[in_features, features]` (the official layout transposed).
  """
  features: int  # out_features
  activation: str = "linear"
  use_bias: bool = True
  lr_multiplier: float = 1.0
  weight_init: float = 1.0  # initial std of the effective weight
  bias_init: float | Sequence[float] = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[N, in_features]` -> `[N, features]`."""
    in_features = x.shape[-1]
    weight = self.param(
        "weight", lambda key: jax.random.normal(key, (
            in_features, self.features)) * (self.weight_init /
                                             self.lr_multiplier))
    w = weight.astype(x.dtype) * (self.lr_multiplier / np.sqrt(in_features))
    x = x @ w
    b = None
    if self.use_bias:
      bias = self.param("bias", lambda _: jnp.asarray(np.broadcast_to(
          np.asarray(self.bias_init, np.float32), (self.features,)) /
                                                    self.lr_multiplier))
      b = bias.astype(x.dtype) * self.lr_multiplier
    return ops.bias_act(x, b, act=self.activation)


def cross_device_mean(value: jax.Array, axis_name: str | None) -> jax.Array:
  """`value` averaged over the mesh axis `axis_name` (None: unchanged).

  Used for batch statistics inside `shard_map`: with equal per-device
  batches, the mean of per-device means is the global batch's mean.
  """
  return value if axis_name is None else jax.lax.pmean(value, axis_name)

